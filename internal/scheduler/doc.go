// Package scheduler pulls tasks from ClearML queues in priority order, admits them against the
// per-queue and global limits before pulling, and launches each as a Job or Pod.
package scheduler
