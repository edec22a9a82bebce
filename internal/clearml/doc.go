// Package clearml is a typed client for the ClearML REST API used by the Kubernetes glue:
// one retrying POST transport, JWT session handling and the queues/tasks/workers/events calls.
package clearml
