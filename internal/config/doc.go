// Package config holds the glue's two kinds of configuration: process settings read from the
// environment (Settings) and the glue file the chart renders into a ConfigMap (File).
package config
