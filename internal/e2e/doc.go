// Package e2e holds the end-to-end tests: the chart installed with Helm on a local control plane,
// the controller running as the chart's ServiceAccount, and the ClearML emulator.
package e2e
