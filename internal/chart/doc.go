// Package chart renders the clearml-agent Helm chart offline, with its values schema, as helm
// install would, and reads back the glue configuration the controller consumes from it.
package chart
