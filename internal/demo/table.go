package demo

import (
	"fmt"
	"strings"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

// Row is what the progress table shows of one task. Job, Pod and Node keep their last seen value
// after the glue deletes the finished Job.
type Row struct {
	ID     string
	Name   string
	Queue  string
	Status string // ClearML status
	Job    string // Job state: Active, Complete, Failed; "" before the glue creates it
	Pod    string // pod phase, with the scheduling reason while Pending
	Node   string
}

// Finished reports whether the task reached a status it leaves only on user action.
func (r Row) Finished() bool {
	switch r.Status {
	case clearml.StatusCompleted, clearml.StatusPublished, clearml.StatusClosed, clearml.StatusFailed, clearml.StatusStopped:
		return true
	}
	return false
}

// Succeeded reports whether the task completed.
func (r Row) Succeeded() bool {
	switch r.Status {
	case clearml.StatusCompleted, clearml.StatusPublished, clearml.StatusClosed:
		return true
	}
	return false
}

// Counts are the tasks in each stage of their life.
type Counts struct {
	Total, Queued, Running, Completed, Failed int
	// Launched counts tasks the glue created a Job (or Pod) for.
	Launched int
}

// Count sums the rows up.
func Count(rows []Row) Counts {
	c := Counts{Total: len(rows)}
	for _, r := range rows {
		if r.Job != "" {
			c.Launched++
		}
		switch {
		case r.Succeeded():
			c.Completed++
		case r.Finished():
			c.Failed++
		case r.Status == clearml.StatusInProgress:
			c.Running++
		default:
			c.Queued++
		}
	}
	return c
}

// Done reports whether every task finished.
func (c Counts) Done() bool { return c.Completed+c.Failed == c.Total }

// Summary is the final line: "launched 20, completed 20, failed 0 in 31.2s".
func (c Counts) Summary(elapsed time.Duration) string {
	s := fmt.Sprintf("launched %d, completed %d, failed %d in %s", c.Launched, c.Completed, c.Failed, elapsed.Round(100*time.Millisecond))
	if left := c.Total - c.Completed - c.Failed; left > 0 {
		s += fmt.Sprintf(" (%d not finished)", left)
	}
	return s
}

// ProgressLine is one plain line for logs and pipes: "[  12s] 20 tasks: queued 4, running 6, ...".
func (c Counts) ProgressLine(elapsed time.Duration) string {
	return fmt.Sprintf("[%4ds] %d tasks: queued %d, running %d, completed %d, failed %d (launched %d)",
		int(elapsed.Seconds()), c.Total, c.Queued, c.Running, c.Completed, c.Failed, c.Launched)
}

var tableHeader = Row{Name: "TASK", ID: "ID", Queue: "QUEUE", Status: "CLEARML STATUS", Job: "JOB", Pod: "POD", Node: "NODE"}

// RenderTable lays the rows out in aligned columns with a header, one line per task, then the
// progress line. Empty cells show "-".
func RenderTable(rows []Row, elapsed time.Duration) string {
	cells := func(r Row, header bool) []string {
		id := r.ID
		if !header && len(id) > 8 {
			id = id[:8]
		}
		out := []string{r.Name, id, r.Queue, r.Status, r.Job, r.Pod, r.Node}
		for i, s := range out {
			if s == "" {
				out[i] = "-"
			}
		}
		return out
	}
	lines := [][]string{cells(tableHeader, true)}
	for _, r := range rows {
		lines = append(lines, cells(r, false))
	}
	widths := make([]int, len(lines[0]))
	for _, l := range lines {
		for i, s := range l {
			widths[i] = max(widths[i], len(s))
		}
	}
	var b strings.Builder
	for _, l := range lines {
		for i, s := range l {
			if i == len(l)-1 {
				b.WriteString(s)
				break
			}
			fmt.Fprintf(&b, "%-*s  ", widths[i], s)
		}
		b.WriteByte('\n')
	}
	b.WriteString(Count(rows).ProgressLine(elapsed))
	b.WriteByte('\n')
	return b.String()
}

// Redraw returns what rewrites a frame of prevLines lines in place on an ANSI terminal: cursor up
// to the frame's first line, clear to the end of the screen, then the new frame.
func Redraw(prevLines int, frame string) string {
	if prevLines == 0 {
		return frame
	}
	return fmt.Sprintf("\x1b[%dA\r\x1b[J", prevLines) + frame
}
