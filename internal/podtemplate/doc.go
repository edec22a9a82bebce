// Package podtemplate turns a queue's pod template (basePodTemplate merged with the queue's
// templateOverrides) and one ClearML task into the Kubernetes Job or Pod the glue creates.
package podtemplate
