// Package controller wires the glue together: it watches the glue's ConfigMap (hot reload),
// logs into ClearML, takes the leader Lease, and runs the monitor and the scheduler.
package controller
