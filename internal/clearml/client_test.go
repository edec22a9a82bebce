package clearml_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := map[string]struct {
		cfg     clearml.Config
		wantErr string
	}{
		"ok":                {cfg: clearml.Config{APIHost: "http://clearml:8008/", AccessKey: "k", SecretKey: "s"}},
		"https with prefix": {cfg: clearml.Config{APIHost: "https://example.com/clearml/api", AccessKey: "k", SecretKey: "s"}},
		"no scheme":         {cfg: clearml.Config{APIHost: "clearml:8008", AccessKey: "k", SecretKey: "s"}, wantErr: "not an http(s) URL"},
		"empty":             {cfg: clearml.Config{AccessKey: "k", SecretKey: "s"}, wantErr: "not an http(s) URL"},
		"user info":         {cfg: clearml.Config{APIHost: "http://u:p@clearml", AccessKey: "k", SecretKey: "s"}, wantErr: "must not contain user info"},
		"query":             {cfg: clearml.Config{APIHost: "http://clearml/?a=b", AccessKey: "k", SecretKey: "s"}, wantErr: "must not contain user info, a query"},
		"no key":            {cfg: clearml.Config{APIHost: "http://clearml", SecretKey: "s"}, wantErr: "AccessKey and SecretKey are required"},
		"no secret":         {cfg: clearml.Config{APIHost: "http://clearml", AccessKey: "k"}, wantErr: "AccessKey and SecretKey are required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := clearml.New(tc.cfg)
			if tc.wantErr == "" {
				assert.NilError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestLoginAndClaims(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	_, ok := c.Claims()
	assert.Assert(t, !ok, "no claims before login")
	assert.NilError(t, c.Login(context.Background()))
	claims, ok := c.Claims()
	assert.Assert(t, ok)
	assert.Equal(t, claims.APIVersion, "2.34")
	assert.Equal(t, claims.FeatureSet, "basic")
	assert.Equal(t, claims.ServerVersion, emulator.ServerVersion)
	assert.Equal(t, claims.Identity.UserName, "Emulator User")
	assert.Assert(t, claims.Identity.User != "" && claims.Identity.Company != "")
	lifetime := claims.Expires.Sub(claims.IssuedAt)
	assert.Equal(t, lifetime, emulator.DefaultTokenLifetime)
	assert.Equal(t, srv.Calls("auth.login"), 1)
}

func TestLoginBadCredentialsIsNotRetried(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv, func(cfg *clearml.Config) { cfg.SecretKey = "wrong" })
	err := c.Login(context.Background())
	assertAPIError(t, err, 401, 22)
	assert.ErrorContains(t, err, "clearml: auth.login: 401/22: Unauthorized (invalid credentials)")
	_, err = c.QueuesGetAll(context.Background(), clearml.QueuesGetAllRequest{})
	assertAPIError(t, err, 401, 22)
	assert.Equal(t, srv.Calls("auth.login"), 2, "one login per call, no retries")
	assert.Equal(t, srv.Calls("queues.get_all"), 0)
}

func TestServerInfoAndPing(t *testing.T) {
	srv, _ := newEmulator(t)
	ctx := context.Background()
	info, err := newClient(t, srv).ServerInfo(ctx)
	assert.NilError(t, err)
	assert.Equal(t, info.Version, emulator.ServerVersion)
	assert.Equal(t, info.APIVersion, "2.34")
	assert.Assert(t, info.UID != "")

	srv.ResetCalls()
	unauthenticated := newClient(t, srv, func(cfg *clearml.Config) { cfg.SecretKey = "wrong" })
	assert.NilError(t, unauthenticated.DebugPing(ctx))
	assert.Equal(t, srv.Calls("auth.login"), 0, "debug.ping needs no login")
	assert.Equal(t, srv.Calls("debug.ping"), 1)
}

// TestTransportShape checks what goes on the wire: POST to {base}/v2.31/service.action with a
// kept path prefix, JSON bodies, the worker header, and no cookie use.
func TestTransportShape(t *testing.T) {
	srv := emulator.New(emulator.Options{StripPrefix: "/clearml/api"})
	type seen struct{ Method, Path, ContentType, Worker, Auth, Cookie string }
	var mu sync.Mutex
	var calls []seen
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-ClearML-Worker"),
			strings.Fields(r.Header.Get("Authorization") + " -")[0], r.Header.Get("Cookie")})
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	c, err := clearml.New(clearml.Config{APIHost: ts.URL + "/clearml/api/", AccessKey: emulator.DefaultAccessKey,
		SecretKey: emulator.DefaultSecretKey, WorkerHeader: "glue-1"})
	assert.NilError(t, err)
	ctx := context.Background()
	_, err = c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
	_, err = c.EventsAddBatch(ctx, []clearml.Event{clearml.LogEvent(id, "INFO", "hello")})
	assert.NilError(t, err)
	_, err = c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, calls, []seen{
		{"POST", "/clearml/api/v2.31/auth.login", "application/json", "glue-1", "Basic", ""},
		{"POST", "/clearml/api/v2.31/queues.get_all", "application/json", "glue-1", "Bearer", ""},
		{"POST", "/clearml/api/v2.31/events.add_batch", "application/json-lines", "glue-1", "Bearer", ""},
		{"POST", "/clearml/api/v2.31/queues.get_all", "application/json", "glue-1", "Bearer", ""},
	})
}

func TestQueuesCreateAndGetAll(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	gpu, err := c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: " gpu-a100 ", Tags: []string{"gpu"}})
	assert.NilError(t, err)
	pending, err := c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: clearml.PendingQueueName, SystemTags: []string{clearml.PendingQueueTag}})
	assert.NilError(t, err)
	cpu, err := c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: "cpu"})
	assert.NilError(t, err)

	_, err = c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: "gpu-a100"})
	assertAPIError(t, err, 400, 801)
	_, err = c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: " ab "})
	assertAPIError(t, err, 400, 800)

	names := func(queues []clearml.Queue) []string {
		var out []string
		for _, q := range queues {
			out = append(out, q.Name)
		}
		return out
	}
	tests := map[string]struct {
		req  clearml.QueuesGetAllRequest
		want []string
	}{
		"hidden queue skipped":        {req: clearml.QueuesGetAllRequest{}, want: []string{"gpu-a100", "cpu"}},
		"search_hidden":               {req: clearml.QueuesGetAllRequest{SearchHidden: true}, want: []string{"gpu-a100", clearml.PendingQueueName, "cpu"}},
		"name shows hidden":           {req: clearml.QueuesGetAllRequest{Name: regexp.QuoteMeta(clearml.PendingQueueName)}, want: []string{clearml.PendingQueueName}},
		"name is an unanchored regex": {req: clearml.QueuesGetAllRequest{Name: "u"}, want: []string{"gpu-a100", clearml.PendingQueueName, "cpu"}},
		"name is case sensitive":      {req: clearml.QueuesGetAllRequest{Name: "GPU"}},
		"id list":                     {req: clearml.QueuesGetAllRequest{ID: []string{cpu, pending}}, want: []string{clearml.PendingQueueName, "cpu"}},
		"tags":                        {req: clearml.QueuesGetAllRequest{Tags: []string{"gpu"}}, want: []string{"gpu-a100"}},
		"excluded tag":                {req: clearml.QueuesGetAllRequest{Tags: []string{"-gpu"}}, want: []string{"cpu"}},
		"system tag":                  {req: clearml.QueuesGetAllRequest{SystemTags: []string{clearml.PendingQueueTag}, SearchHidden: true}, want: []string{clearml.PendingQueueName}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := c.QueuesGetAll(ctx, tc.req)
			assert.NilError(t, err)
			assert.DeepEqual(t, names(got), tc.want)
		})
	}

	t.Run("only_fields", func(t *testing.T) {
		got, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{Name: "^cpu$", OnlyFields: []string{"name"}})
		assert.NilError(t, err)
		assert.DeepEqual(t, got, []clearml.Queue{{ID: cpu, Name: "cpu"}})
	})
	t.Run("full queue", func(t *testing.T) {
		got, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{ID: []string{gpu}})
		assert.NilError(t, err)
		assert.Equal(t, len(got), 1)
		assert.Equal(t, got[0].Name, "gpu-a100", "the name is stripped")
		assert.DeepEqual(t, got[0].Tags, []string{"gpu"})
		assert.Assert(t, time.Since(got[0].Created.Time) < time.Minute)
	})
	t.Run("bad regex", func(t *testing.T) {
		_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{Name: "("})
		assertAPIError(t, err, 400, 21)
	})
}

func TestQueuesGetByIDAndDefault(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	qid := mustQueue(t, srv, "work")
	a, b := srv.CreateTask(emulator.TaskSpec{Name: "a"}), srv.CreateTask(emulator.TaskSpec{Name: "b"})
	assert.NilError(t, srv.Enqueue(a, "work"))
	assert.NilError(t, srv.Enqueue(b, "work"))

	q, err := c.QueuesGetByID(ctx, qid)
	assert.NilError(t, err)
	assert.Equal(t, q.Name, "work")
	assert.Equal(t, len(q.Entries), 2)
	assert.Equal(t, q.Entries[0].Task, a)
	assert.Assert(t, !q.Entries[0].Added.IsZero())

	_, err = c.QueuesGetByID(ctx, "nope")
	assertAPIError(t, err, 400, 701)
	var apiErr *clearml.APIError
	assert.Assert(t, errors.As(err, &apiErr))
	assert.Equal(t, apiErr.ErrorData["id"], "nope")

	_, err = c.QueuesGetDefault(ctx)
	assertAPIError(t, err, 400, 707)
	def := mustQueue(t, srv, "default", "default")
	ref, err := c.QueuesGetDefault(ctx)
	assert.NilError(t, err)
	assert.DeepEqual(t, ref, &clearml.QueueRef{ID: def, Name: "default"})
	mustQueue(t, srv, "default2", "default")
	_, err = c.QueuesGetDefault(ctx)
	assertAPIError(t, err, 400, 708)
}

// The server slices a queue's entries with max_task_entries (a MongoDB $slice: n > 0 the first
// n, n < 0 the last -n, 0 all) and counts them with queues.get_num_entries.
func TestQueueEntriesBoundedAndCounted(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	qid := mustQueue(t, srv, "work")
	var ids []string
	for i := range 5 {
		id := srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprint(i)})
		assert.NilError(t, srv.Enqueue(id, "work"))
		ids = append(ids, id)
	}
	for name, tc := range map[string]struct {
		max  int
		want []string
	}{
		"first n":         {max: 2, want: ids[:2]},
		"last n":          {max: -2, want: ids[3:]},
		"more than there": {max: 10, want: ids},
		"zero is all":     {max: 0, want: ids},
	} {
		t.Run(name, func(t *testing.T) {
			qs, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{ID: []string{qid}, OnlyFields: []string{"id", "entries"}, MaxTaskEntries: tc.max})
			assert.NilError(t, err)
			assert.Equal(t, len(qs), 1)
			var got []string
			for _, e := range qs[0].Entries {
				got = append(got, e.Task)
			}
			assert.DeepEqual(t, got, tc.want)
		})
	}

	n, err := c.QueuesGetNumEntries(ctx, qid)
	assert.NilError(t, err)
	assert.Equal(t, n, 5)
	_, err = c.QueuesGetNumEntries(ctx, "nope")
	assertAPIError(t, err, 400, 701)
}

func TestTasksGetAllQueuesListsIDAndQueueOnly(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv, func(cfg *clearml.Config) { cfg.PageSize = 2 }) // pages followed
	ctx := context.Background()
	work, other := mustQueue(t, srv, "work"), mustQueue(t, srv, "other")
	want := map[string]string{}
	for i := range 5 {
		id := srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprint(i)})
		q := []string{"work", "other"}[i%2]
		assert.NilError(t, srv.Enqueue(id, q))
		want[id] = srv.QueueID(q)
	}
	srv.CreateTask(emulator.TaskSpec{Name: "not queued"})
	got, err := c.TasksGetAllQueues(ctx, clearml.TasksGetAllRequest{Status: []string{clearml.StatusQueued}, ExecutionQueue: []string{work, other}})
	assert.NilError(t, err)
	listed := map[string]string{}
	for _, tq := range got {
		listed[tq.ID] = tq.Execution.Queue
	}
	assert.DeepEqual(t, listed, want)
}

func TestQueuesGetNextTask(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	qid := mustQueue(t, srv, "work")

	next, err := c.QueuesGetNextTask(ctx, qid)
	assert.NilError(t, err)
	assert.Assert(t, next == nil, "empty queue: no task")

	a := srv.CreateTask(emulator.TaskSpec{Name: "a", User: "owner-1"})
	b := srv.CreateTask(emulator.TaskSpec{Name: "b"})
	assert.NilError(t, srv.Enqueue(a, "work"))
	assert.NilError(t, srv.Enqueue(b, "work"))
	next, err = c.QueuesGetNextTask(ctx, qid)
	assert.NilError(t, err)
	assert.Equal(t, next.Entry.Task, a, "FIFO")
	assert.DeepEqual(t, next.TaskInfo, &clearml.TaskInfo{Company: task(t, srv, a).Company, User: "owner-1"})
	assert.Equal(t, task(t, srv, a).Status, clearml.StatusQueued, "a pop leaves the task queued")
	assert.Equal(t, task(t, srv, a).ExecutionQueue(), qid)
	assert.DeepEqual(t, srv.QueueEntries("work"), []string{b})

	// The server's race fix: a stopped task that is still an entry is set back to queued.
	assert.NilError(t, srv.SetTaskStatus(b, clearml.StatusStopped))
	next, err = c.QueuesGetNextTask(ctx, qid)
	assert.NilError(t, err)
	assert.Equal(t, next.Entry.Task, b)
	assert.Equal(t, task(t, srv, b).Status, clearml.StatusQueued)

	_, err = c.QueuesGetNextTask(ctx, "missing")
	assertAPIError(t, err, 400, 701)
}

func TestQueuesAddRemoveMove(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	work := mustQueue(t, srv, "work")
	origin := mustQueue(t, srv, "origin")
	a, b := srv.CreateTask(emulator.TaskSpec{Name: "a"}), srv.CreateTask(emulator.TaskSpec{Name: "b"})
	assert.NilError(t, srv.Enqueue(b, "work"))

	assert.NilError(t, c.QueuesAddTask(ctx, work, a))
	assert.Equal(t, task(t, srv, a).Status, clearml.StatusCreated, "add_task does not change the status")
	assert.Equal(t, task(t, srv, a).ExecutionQueue(), work)
	assert.DeepEqual(t, srv.QueueEntries("work"), []string{b, a})
	assertAPIError(t, c.QueuesAddTask(ctx, work, a), 400, 706)
	assertAPIError(t, c.QueuesAddTask(ctx, "missing", a), 400, 701)
	assert.NilError(t, c.QueuesAddTask(ctx, work, "no-such-task"), "add_task does not check the task")

	pos, err := c.QueuesMoveTaskToFront(ctx, work, a)
	assert.NilError(t, err)
	assert.Equal(t, pos, 0)
	assert.DeepEqual(t, srv.QueueEntries("work"), []string{a, b, "no-such-task"})
	_, err = c.QueuesMoveTaskToFront(ctx, origin, a)
	assertAPIError(t, err, 400, 703)

	removed, err := c.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: work, Task: a})
	assert.NilError(t, err)
	assert.Equal(t, removed, 1)
	_, err = c.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: work, Task: a})
	assertAPIError(t, err, 400, 703)
	_, err = c.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: "missing", Task: a})
	assertAPIError(t, err, 400, 703)

	// update_task_status puts the task back to its status before the enqueue.
	assert.NilError(t, srv.SetTaskStatus(b, clearml.StatusStopped))
	assert.NilError(t, c.TasksEnqueue(ctx, clearml.TasksEnqueueRequest{Task: b, Queue: origin}))
	assert.DeepEqual(t, srv.QueueEntries("work"), []string{"no-such-task"})
	_, err = c.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: origin, Task: b, UpdateTaskStatus: true})
	assert.NilError(t, err)
	got := task(t, srv, b)
	assert.Equal(t, got.Status, clearml.StatusStopped)
	assert.Equal(t, got.StatusReason, "Task was removed from the queue "+origin)
	assert.Equal(t, got.ExecutionQueue(), "")
	assert.Equal(t, got.EnqueueStatus, "")
}

func TestTasksCreateAndGet(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	id, err := c.TasksCreate(ctx, clearml.TasksCreateRequest{
		Name: "train", Type: "training", Project: "p1", Parent: "parent-1", Tags: []string{"x"},
		Container:   &clearml.Container{Image: "python:3.12", Arguments: "-e A=1", SetupShellScript: "pip install x"},
		Hyperparams: map[string]map[string]clearml.HyperParam{"Args": {"lr": {Section: "Args", Name: "lr", Value: "0.1"}}},
	})
	assert.NilError(t, err)
	_, err = c.TasksCreate(ctx, clearml.TasksCreateRequest{Name: "x", Type: "bogus"})
	assertAPIError(t, err, 400, 12)
	hidden := srv.CreateTask(emulator.TaskSpec{Name: "hidden", SystemTags: []string{"hidden"}})

	got, err := c.TasksGetByID(ctx, id)
	assert.NilError(t, err)
	assert.Equal(t, got.ID, id)
	assert.Equal(t, got.Name, "train")
	assert.Equal(t, got.Type, "training")
	assert.Equal(t, got.Status, clearml.StatusCreated)
	assert.Equal(t, got.Project, "p1")
	assert.Equal(t, got.Parent, "parent-1")
	assert.Equal(t, got.User, task(t, srv, id).User)
	assert.DeepEqual(t, got.Container, clearml.Container{Image: "python:3.12", Arguments: "-e A=1", SetupShellScript: "pip install x"})
	assert.DeepEqual(t, got.Hyperparams["Args"]["lr"], clearml.HyperParam{Section: "Args", Name: "lr", Value: "0.1"})
	assert.Assert(t, time.Since(got.LastChange.Time) < time.Minute)
	assert.Assert(t, got.Created.Equal(got.LastChange.Time))

	_, err = c.TasksGetByID(ctx, "nope")
	assertAPIError(t, err, 400, 101)

	tests := map[string]struct {
		req  clearml.TasksGetAllRequest
		want []string
	}{
		"all but hidden":  {req: clearml.TasksGetAllRequest{}, want: []string{id}},
		"search_hidden":   {req: clearml.TasksGetAllRequest{SearchHidden: true}, want: []string{id, hidden}},
		"id shows hidden": {req: clearml.TasksGetAllRequest{ID: []string{hidden, "unknown"}}, want: []string{hidden}},
		"status":          {req: clearml.TasksGetAllRequest{ID: []string{id, hidden}, Status: []string{clearml.StatusQueued, clearml.StatusInProgress}}},
		"status matches":  {req: clearml.TasksGetAllRequest{Status: []string{clearml.StatusCreated}}, want: []string{id}},
		"name regex":      {req: clearml.TasksGetAllRequest{Name: "^tr", SearchHidden: true}, want: []string{id}},
		"tags":            {req: clearml.TasksGetAllRequest{Tags: []string{"x"}}, want: []string{id}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tasks, err := c.TasksGetAll(ctx, tc.req)
			assert.NilError(t, err)
			var ids []string
			for _, tk := range tasks {
				ids = append(ids, tk.ID)
			}
			assert.DeepEqual(t, ids, tc.want)
		})
	}
	t.Run("only_fields", func(t *testing.T) {
		tasks, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: []string{id}, OnlyFields: []string{"container", "execution.queue", "status"}})
		assert.NilError(t, err)
		assert.DeepEqual(t, tasks, []clearml.Task{{ID: id, Status: clearml.StatusCreated,
			Container: clearml.Container{Image: "python:3.12", Arguments: "-e A=1", SetupShellScript: "pip install x"}}})
	})
	t.Run("cleanup projection", func(t *testing.T) {
		tasks, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: []string{id}, OnlyFields: []string{"id", "status", "status_reason", "last_change"}})
		assert.NilError(t, err)
		assert.Equal(t, len(tasks), 1)
		assert.Assert(t, !tasks[0].LastChange.IsZero())
		assert.Equal(t, tasks[0].Name, "", "not projected")
	})
	t.Run("legacy docker_cmd", func(t *testing.T) {
		old := srv.CreateTask(emulator.TaskSpec{Name: "old", DockerCmd: "nvidia/cuda:11 -e A=1"})
		got, err := c.TasksGetByID(ctx, old)
		assert.NilError(t, err)
		assert.DeepEqual(t, got.EffectiveContainer(), clearml.Container{Image: "nvidia/cuda:11", Arguments: "-e A=1"})
	})
}

func TestTasksUpdateAndEdit(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	mustQueue(t, srv, "work")
	id := srv.CreateTask(emulator.TaskSpec{Name: "t", Container: map[string]string{"image": "a", "arguments": "-e X=1"},
		Runtime: map[string]any{"k": "v"}})

	res, err := c.TasksUpdate(ctx, clearml.TasksUpdateRequest{Task: id, StatusMessage: clearml.GlueStatusMessagePrefix + "Unschedulable"})
	assert.NilError(t, err)
	assert.Equal(t, res.Updated, 1)
	assert.Equal(t, task(t, srv, id).StatusMessage, "K8S glue status: Unschedulable")
	res, err = c.TasksUpdate(ctx, clearml.TasksUpdateRequest{Task: id})
	assert.NilError(t, err)
	assert.Equal(t, res.Updated, 0, "nothing to update")
	_, err = c.TasksUpdate(ctx, clearml.TasksUpdateRequest{Task: "nope", Name: "x"})
	assertAPIError(t, err, 400, 101)

	res, err = c.TasksEdit(ctx, clearml.TasksEditRequest{Task: id, Container: &clearml.Container{Image: "b"}})
	assert.NilError(t, err)
	assert.Equal(t, res.Updated, 1)
	assert.DeepEqual(t, task(t, srv, id).Container, map[string]any{"image": "b"}) // container is replaced whole

	assert.NilError(t, srv.Enqueue(id, "work"))
	_, err = c.TasksEdit(ctx, clearml.TasksEditRequest{Task: id, Container: &clearml.Container{Image: "c"}})
	assertAPIError(t, err, 400, 110)
	assert.ErrorContains(t, err, "expected=created, status=queued")
	_, err = c.TasksEdit(ctx, clearml.TasksEditRequest{Task: id, Force: true, Container: &clearml.Container{Image: "c", Arguments: "-e Y=2"},
		Runtime: map[string]any{"callback": "x"}})
	assert.NilError(t, err)
	got := task(t, srv, id)
	assert.DeepEqual(t, got.Container, map[string]any{"image": "c", "arguments": "-e Y=2"})
	assert.DeepEqual(t, got.Runtime, map[string]any{"callback": "x"}) // runtime is replaced whole
	assert.Equal(t, got.Status, clearml.StatusQueued, "edit does not touch the status")
}

func TestTasksEditHyperParams(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
	queueProp := []clearml.HyperParam{{Section: "Properties", Name: "k8s-queue", Value: "gpu"}}
	args := []clearml.HyperParam{{Section: "Args", Name: "lr", Value: "1"}}
	tests := map[string]struct {
		status  string
		params  []clearml.HyperParam
		force   bool
		wantErr int
	}{
		"properties on created":              {status: clearml.StatusCreated, params: queueProp},
		"properties on in_progress":          {status: clearml.StatusInProgress, params: queueProp},
		"properties on completed":            {status: clearml.StatusCompleted, params: queueProp},
		"args on created":                    {status: clearml.StatusCreated, params: args},
		"args on queued refused":             {status: clearml.StatusQueued, params: args, wantErr: 110},
		"args on queued forced":              {status: clearml.StatusQueued, params: args, force: true},
		"args on in_progress forced":         {status: clearml.StatusInProgress, params: args, force: true},
		"args on completed refused, forced":  {status: clearml.StatusCompleted, params: args, force: true, wantErr: 110},
		"mixed sections need created status": {status: clearml.StatusStopped, params: append(append([]clearml.HyperParam{}, queueProp...), args...), wantErr: 110},
		"empty list":                         {status: clearml.StatusCreated, params: []clearml.HyperParam{}, wantErr: 12},
		"empty name":                         {status: clearml.StatusCreated, params: []clearml.HyperParam{{Section: "properties", Value: "x"}}, wantErr: 12},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.NilError(t, srv.SetTaskStatus(id, tc.status))
			res, err := c.TasksEditHyperParams(ctx, clearml.TasksEditHyperParamsRequest{Task: id, Hyperparams: tc.params, Force: tc.force})
			if tc.wantErr != 0 {
				assertAPIError(t, err, 400, tc.wantErr)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 1)
			for _, p := range tc.params {
				section := p.Section
				if strings.EqualFold(section, "properties") {
					section = "properties"
				}
				assert.Equal(t, task(t, srv, id).Hyperparams[section][p.Name].Value, p.Value)
			}
		})
	}
	t.Run("replace section", func(t *testing.T) {
		assert.NilError(t, srv.SetTaskStatus(id, clearml.StatusCreated))
		_, err := c.TasksEditHyperParams(ctx, clearml.TasksEditHyperParamsRequest{Task: id, ReplaceHyperparams: "section",
			Hyperparams: []clearml.HyperParam{{Section: "Args", Name: "batch", Value: "8"}}})
		assert.NilError(t, err)
		hp := task(t, srv, id).Hyperparams
		assert.DeepEqual(t, hp["Args"], map[string]emulator.HyperParam{"batch": {Section: "Args", Name: "batch", Value: "8"}})
		assert.Equal(t, hp["properties"]["k8s-queue"].Value, "gpu", "other sections are kept")
	})
	t.Run("unknown task", func(t *testing.T) {
		_, err := c.TasksEditHyperParams(ctx, clearml.TasksEditHyperParamsRequest{Task: "nope", Hyperparams: queueProp})
		assertAPIError(t, err, 400, 101)
	})
}

func TestWorkers(t *testing.T) {
	srv, clock := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	qid := mustQueue(t, srv, "work")
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})

	assert.NilError(t, c.WorkersRegister(ctx, clearml.WorkersRegisterRequest{Worker: "glue:1", Queues: []string{qid}}))
	err := c.WorkersRegister(ctx, clearml.WorkersRegisterRequest{Worker: "glue:2", Queues: []string{qid, "missing"}})
	assertAPIError(t, err, 400, 701)
	err = c.WorkersRegister(ctx, clearml.WorkersRegisterRequest{Worker: "glue:2", Timeout: -1})
	assertAPIError(t, err, 400, 1002)
	workers := srv.Workers()
	assert.Equal(t, len(workers), 1)
	assert.Equal(t, workers[0].ID, "glue:1")
	assert.DeepEqual(t, workers[0].Queues, []string{qid})

	// A status report auto-registers and marks the task as run by the worker.
	assert.NilError(t, c.WorkersStatusReport(ctx, clearml.WorkersStatusReportRequest{Worker: "glue:1:" + id, Task: id, Queue: qid}))
	assert.Equal(t, len(srv.Workers()), 2)
	got := task(t, srv, id)
	assert.Equal(t, got.LastWorker, "glue:1:"+id)
	assert.Assert(t, !got.LastWorkerReport.IsZero())
	err = c.WorkersStatusReport(ctx, clearml.WorkersStatusReportRequest{Worker: "glue:1", Task: "nope"})
	assertAPIError(t, err, 400, 101)

	assert.NilError(t, c.WorkersUnregister(ctx, "glue:1"))
	assert.NilError(t, c.WorkersUnregister(ctx, "never-registered"))
	assert.Equal(t, len(srv.Workers()), 1)
	clock.Advance(11 * time.Minute)
	assert.Equal(t, len(srv.Workers()), 0, "workers expire after their timeout")
}

func TestEventsAddBatch(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})

	res, err := c.EventsAddBatch(ctx, []clearml.Event{
		clearml.LogEvent(id, "INFO", "task pulled"),
		clearml.LogEvent(id, "DEBUG", "Kubernetes Pod status: Unschedulable"),
		clearml.LogEvent("unknown", "INFO", "lost"),
		{Task: id, Msg: "no type"},
	})
	assert.NilError(t, err)
	assert.DeepEqual(t, res, &clearml.AddBatchResult{Added: 2, Errors: 2,
		ErrorsInfo: map[string]int{"Invalid task id unknown": 1, "Invalid event type ": 1}})
	assert.DeepEqual(t, srv.TaskLog(id), []string{"task pulled", "Kubernetes Pod status: Unschedulable"})

	_, err = c.EventsAddBatch(ctx, []clearml.Event{clearml.LogEvent("unknown", "INFO", "lost")})
	assertAPIError(t, err, 400, 131)

	srv.ResetCalls()
	res, err = c.EventsAddBatch(ctx, nil)
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("events.add_batch"), 0, "nothing to send")
	assert.Equal(t, res.Added, 0)

	big := strings.Repeat("x", 400<<10)
	res, err = c.EventsAddBatch(ctx, []clearml.Event{clearml.LogEvent(id, "INFO", big), clearml.LogEvent(id, "INFO", big), clearml.LogEvent(id, "INFO", big)})
	assert.NilError(t, err)
	assert.Equal(t, res.Added, 3)
	assert.Equal(t, srv.Calls("events.add_batch"), 2, "requests stay under 1 MiB")
}

func TestTimesAreParsed(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
	got, err := c.TasksGetByID(context.Background(), id)
	assert.NilError(t, err)
	want := task(t, srv, id).LastChange
	assert.Assert(t, got.LastChange.Sub(want).Abs() < time.Microsecond, "got %v want %v", got.LastChange, want)
}

func TestTasksEnqueueMany(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	pending := mustQueue(t, srv, "pending")
	mustQueue(t, srv, "work-queue")
	a, b, done := srv.CreateTask(emulator.TaskSpec{Name: "a"}), srv.CreateTask(emulator.TaskSpec{Name: "b"}), srv.CreateTask(emulator.TaskSpec{Name: "done"})
	assert.NilError(t, srv.Enqueue(a, "work-queue"))
	assert.NilError(t, srv.SetTaskStatus(done, clearml.StatusCompleted))

	failed, err := c.TasksEnqueueMany(ctx, clearml.TasksEnqueueManyRequest{
		IDs: []string{a, "no-such-task", b, done}, Queue: pending, StatusReason: "why", StatusMessage: "from work-queue",
	})
	assert.NilError(t, err)
	// One task's error does not stop the others; each is reported with the server's codes.
	assert.Equal(t, len(failed), 2)
	assert.Assert(t, clearml.IsInvalidTaskID(failed["no-such-task"]), "%v", failed["no-such-task"])
	assert.Assert(t, clearml.IsSubcode(failed[done], 400, 110), "completed -> queued is refused without force: %v", failed[done])
	assert.DeepEqual(t, srv.QueueEntries("pending"), []string{a, b})
	assert.Equal(t, len(srv.QueueEntries("work-queue")), 0, "moved out of its previous queue")
	for _, id := range []string{a, b} {
		got := task(t, srv, id)
		assert.Equal(t, got.Status, clearml.StatusQueued)
		assert.Equal(t, got.ExecutionQueue(), pending)
		assert.Equal(t, got.StatusMessage, "from work-queue")
	}

	// A vanished queue fails each task with 400/701; an empty list is refused as a whole.
	failed, err = c.TasksEnqueueMany(ctx, clearml.TasksEnqueueManyRequest{IDs: []string{a}, Queue: "missing"})
	assert.NilError(t, err)
	assert.Assert(t, clearml.IsInvalidQueueID(failed[a]), "%v", failed[a])
	_, err = c.TasksEnqueueMany(ctx, clearml.TasksEnqueueManyRequest{Queue: pending})
	assertAPIError(t, err, 400, 12)
}

// TryLogin answers at once: one attempt, no retries of a 503 or a refused connection, and the
// token is kept when it succeeds.
func TestTryLoginMakesOneAttempt(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	srv.InjectFault(emulator.Fault{Endpoint: "auth.login", Status: 503})
	assertAPIError(t, c.TryLogin(context.Background()), 503, 0)
	assert.Equal(t, srv.Calls("auth.login"), 1)
	_, ok := c.Claims()
	assert.Assert(t, !ok)

	assert.NilError(t, c.TryLogin(context.Background()))
	_, ok = c.Claims()
	assert.Assert(t, ok, "the token is kept")
	_, err := c.QueuesGetAll(context.Background(), clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("auth.login"), 2, "no second login for the call")
}
