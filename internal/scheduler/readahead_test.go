package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// images maps each Job's task to the image its pod runs (the task's container.image).
func (r *rig) images() map[string]string {
	r.t.Helper()
	out := map[string]string{}
	for _, j := range r.jobs() {
		out[j.Labels[podtemplate.LabelTaskID]] = j.Spec.Template.Spec.Containers[0].Image
	}
	return out
}

func TestReadAhead(t *testing.T) {
	t.Run("should read the tasks a cycle pops in a few calls, each Job from its own task", func(t *testing.T) {
		w := newWire(0)
		r := newRigOver(t, w, parallel(16))
		want := map[string]string{}
		for i := range 300 {
			image := fmt.Sprintf("python:3.%d", i)
			id := r.emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprint(i), Container: map[string]string{"image": image}})
			assert.NilError(t, r.emu.Enqueue(id, "work"))
			want[id] = image
		}
		r.cycleAndWait()
		assert.DeepEqual(t, r.images(), want)
		// 17 reads of 1, 1, 2, 2, 2, 4, 4, 6, ... 70 tasks (readAhead.popping), none after a pop.
		assert.Equal(t, w.count("tasks.get_all"), 17)
	})

	// Between the cycle's queues.get_all and its pop, someone acts on the task the read ahead read.
	for name, tc := range map[string]struct {
		meddle func(t *testing.T, c *clearml.Client, first, queue string)
		want   string // the first task's image in its Job ("": it has no Job)
	}{
		"should read again a task that left its queue and came back, edited": {
			meddle: func(t *testing.T, c *clearml.Client, first, _ string) {
				ctx := context.Background()
				assert.NilError(t, c.Call(ctx, "tasks.dequeue", map[string]any{"task": first}, nil))
				assert.NilError(t, c.Call(ctx, "tasks.edit", map[string]any{"task": first, "container": map[string]any{"image": "python:edited"}}, nil))
				assert.NilError(t, c.Call(ctx, "tasks.enqueue", map[string]any{"task": first, "queue_name": "work"}, nil))
			},
			want: "python:edited",
		},
		"should read the task it popped when another glue popped the one it read": {
			meddle: func(t *testing.T, c *clearml.Client, first, queue string) {
				next, err := c.QueuesGetNextTask(context.Background(), queue)
				assert.NilError(t, err)
				assert.Equal(t, next.Entry.Task, first)
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWire(0)
			r := newRigOver(t, w, parallel(1))
			other, err := clearml.New(clearml.Config{APIHost: r.emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey})
			assert.NilError(t, err)
			var ids []string
			for _, image := range []string{"python:first", "python:second"} {
				id := r.emu.CreateTask(emulator.TaskSpec{Name: image, Container: map[string]string{"image": image}})
				assert.NilError(t, r.emu.Enqueue(id, "work"))
				ids = append(ids, id)
			}
			first, second := ids[0], ids[1]
			read := make(chan struct{})
			var readOnce, meddled atomic.Bool
			w.answered = func(ep string) {
				if ep == "tasks.get_all" && !readOnce.Swap(true) {
					close(read)
				}
			}
			w.before = func(ep string) {
				if ep != "queues.get_next_task" || meddled.Swap(true) {
					return
				}
				select {
				case <-read:
				case <-time.After(10 * time.Second):
					t.Error("the cycle read nothing ahead of its first pop")
				}
				tc.meddle(t, other, first, r.emu.QueueID("work"))
			}
			r.cycleAndWait()
			images := r.images()
			assert.Equal(t, images[second], "python:second")
			assert.Equal(t, images[first], tc.want)
		})
	}
}
