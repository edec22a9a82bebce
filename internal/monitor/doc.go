// Package monitor watches the glue's Jobs and Pods with informers and keeps ClearML truthful:
// pending reasons, image-pull failures, aborts, vanished or failed pods; it also counts live
// objects per queue for the scheduler's admission.
package monitor
