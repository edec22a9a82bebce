package demo

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestCount(t *testing.T) {
	for name, tc := range map[string]struct {
		rows     []Row
		want     Counts
		done     bool
		summary  string
		progress string
	}{
		"nothing launched yet": {
			rows:     []Row{{Status: "queued"}, {Status: "created"}},
			want:     Counts{Total: 2, Queued: 2},
			summary:  "launched 0, completed 0, failed 0 in 1.5s (2 not finished)",
			progress: "[   1s] 2 tasks: queued 2, running 0, completed 0, failed 0 (launched 0)",
		},
		"pulled but pod pending counts as queued and launched": {
			rows:     []Row{{Status: "queued", Job: "Active", Pod: "Pending (Unschedulable)"}, {Status: "in_progress", Job: "Active", Pod: "Running"}},
			want:     Counts{Total: 2, Queued: 1, Running: 1, Launched: 2},
			summary:  "launched 2, completed 0, failed 0 in 1.5s (2 not finished)",
			progress: "[   1s] 2 tasks: queued 1, running 1, completed 0, failed 0 (launched 2)",
		},
		"all finished, failed and stopped count as failed": {
			rows: []Row{{Status: "completed", Job: "Complete"}, {Status: "published", Job: "Complete"},
				{Status: "failed", Job: "Failed"}, {Status: "stopped", Job: "-"}},
			want:     Counts{Total: 4, Completed: 2, Failed: 2, Launched: 4},
			done:     true,
			summary:  "launched 4, completed 2, failed 2 in 1.5s",
			progress: "[   1s] 4 tasks: queued 0, running 0, completed 2, failed 2 (launched 4)",
		},
		"no tasks is done": {
			want:     Counts{},
			done:     true,
			summary:  "launched 0, completed 0, failed 0 in 1.5s",
			progress: "[   1s] 0 tasks: queued 0, running 0, completed 0, failed 0 (launched 0)",
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := Count(tc.rows)
			assert.DeepEqual(t, got, tc.want)
			assert.Equal(t, got.Done(), tc.done)
			assert.Equal(t, got.Summary(1500*time.Millisecond), tc.summary)
			assert.Equal(t, got.ProgressLine(1500*time.Millisecond), tc.progress)
		})
	}
}

func TestRenderTable(t *testing.T) {
	for name, tc := range map[string]struct {
		rows []Row
		want string
	}{
		"columns align, ids shortened, empty cells dashed": {
			rows: []Row{
				{ID: "0123456789abcdef", Name: "resnet50-cifar10", Queue: "1xGPU", Status: "in_progress", Job: "Active", Pod: "Running", Node: "gpu-0"},
				{ID: "fedcba9876543210", Name: "xgb", Queue: "cpu", Status: "queued"},
			},
			want: `
TASK              ID        QUEUE  CLEARML STATUS  JOB     POD      NODE
resnet50-cifar10  01234567  1xGPU  in_progress     Active  Running  gpu-0
xgb               fedcba98  cpu    queued          -       -        -
[  12s] 2 tasks: queued 1, running 1, completed 0, failed 0 (launched 1)
`,
		},
		"header only": {
			want: `
TASK  ID  QUEUE  CLEARML STATUS  JOB  POD  NODE
[  12s] 0 tasks: queued 0, running 0, completed 0, failed 0 (launched 0)
`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, RenderTable(tc.rows, 12*time.Second), strings.TrimPrefix(tc.want, "\n"))
		})
	}
}

func TestRedraw(t *testing.T) {
	for name, tc := range map[string]struct {
		prev int
		want string
	}{
		"first frame is written as is":            {prev: 0, want: "a\nb\n"},
		"later frames move up and clear the rest": {prev: 3, want: "\x1b[3A\r\x1b[Ja\nb\n"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, Redraw(tc.prev, "a\nb\n"), tc.want)
		})
	}
}

func TestDisplayPlainPrintsOnlyChanges(t *testing.T) {
	var out strings.Builder
	d := &display{out: &out, plainEvery: 0, start: time.Now()}
	rows := []Row{{Status: "queued"}}
	d.show(rows, false)
	d.show(rows, false) // unchanged: no line
	rows[0].Status = "completed"
	d.show(rows, false)
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Errorf("printed %d lines, want 2:\n%s", got, out.String())
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("plain output holds ANSI codes: %q", out.String())
	}
}

func TestSampleTasks(t *testing.T) {
	tasks := sampleTasks(25)
	if len(tasks) != 25 {
		t.Fatalf("got %d tasks, want 25", len(tasks))
	}
	names := map[string]bool{}
	queues := map[string]int{}
	for _, s := range tasks {
		if names[s.name] {
			t.Errorf("duplicate task name %q", s.name)
		}
		names[s.name] = true
		queues[s.queue]++
	}
	// The first 20 are spread 8/7/5; the next five repeat the first five samples.
	assert.DeepEqual(t, queues, map[string]int{"cpu": 10, "1xGPU": 9, "2xGPU": 6})
}
