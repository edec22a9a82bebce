// Package process holds what concerns the controller process itself rather than the glue: the Go
// runtime's memory limit taken from the container's, its garbage collection target, and an
// opt-in profiling endpoint.
package process
