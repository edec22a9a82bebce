// Package emulator is an in-process ClearML API server for tests and demos: the envelope,
// auth, queues, the task state machine, workers and log events of clearml-api.md §7, plus hooks.
package emulator
