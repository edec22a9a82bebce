// Package emulator is an in-process ClearML API server for tests and demos: the envelope,
// auth, queues, the task state machine, paging, workers and log events the glue relies on
// (docs/clearml-protocol.md), plus hooks for tests.
package emulator
