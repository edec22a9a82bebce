// Package benchmarks measures the glue on the local control plane and the ClearML emulator:
// throughput beside the client-go limit, launch latency, idle API traffic and heap (`make bench`).
package benchmarks
