package process

import (
	"fmt"
	"strconv"
)

// MemoryLimitFraction is the share of the container's memory limit given to the Go runtime as its
// soft limit (what GOMEMLIMIT sets). The runtime counts its heap, stacks and metadata, not the
// binary's own pages mapped in (text and read-only data, about 35-40 MiB resident measured by
// BenchmarkRSS): the remaining fifth is for those, so the collector works harder before the pod
// reaches its limit instead of after.
const MemoryLimitFraction = 0.8

// Environment variables read by MemoryLimit.
const (
	// EnvContainerMemoryLimit carries the container's memory limit in bytes; the chart sets it
	// from the downward API (resourceFieldRef limits.memory).
	EnvContainerMemoryLimit = "GLUE_CONTAINER_MEMORY_LIMIT"
	// EnvGoMemLimit, when set, is the Go runtime's own setting; it wins.
	EnvGoMemLimit = "GOMEMLIMIT"
)

// MemoryLimit returns the Go runtime's soft memory limit for the container limit in
// GLUE_CONTAINER_MEMORY_LIMIT: MemoryLimitFraction of it, and ok. It is not ok (nothing to set)
// when GOMEMLIMIT is set, since the runtime applied that already, or when no container limit is
// given. Without a limit on the container, the downward API gives the node's allocatable memory,
// a limit that never binds.
func MemoryLimit(getenv func(string) string) (limit int64, ok bool, err error) {
	raw := getenv(EnvContainerMemoryLimit)
	if getenv(EnvGoMemLimit) != "" || raw == "" {
		return 0, false, nil
	}
	bytes, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || bytes <= 0 {
		return 0, false, fmt.Errorf("%s=%q: not a positive number of bytes (the chart sets it from the container's limits.memory)", EnvContainerMemoryLimit, raw)
	}
	return int64(float64(bytes) * MemoryLimitFraction), true, nil
}
