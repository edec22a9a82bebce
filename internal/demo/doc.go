// Package demo runs the whole product locally for `make demo`: a local control plane with CPU and
// GPU kwok nodes, the ClearML emulator process, the chart installed with Helm, the controller
// in-process as the chart's ServiceAccount, sample tasks, and a live progress table.
package demo
