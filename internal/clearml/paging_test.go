package clearml_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// smallPages is a client whose pages match an emulator limited to n documents per page.
func smallPages(n int) func(*clearml.Config) {
	return func(cfg *clearml.Config) { cfg.PageSize = n }
}

func ptr(n int) *int { return &n }

func taskIDs(tasks []clearml.Task) []string {
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		ids = append(ids, t.ID)
	}
	return ids
}

func TestTasksGetAllIsComplete(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		tasks     int
		wantCalls int // pages read by the complete listing
	}{
		"none":                  {tasks: 0, wantCalls: 1},
		"less than a page":      {tasks: 3, wantCalls: 1},
		"exactly one page":      {tasks: 5, wantCalls: 2},
		"across the limit":      {tasks: 12, wantCalls: 3},
		"exactly several pages": {tasks: 15, wantCalls: 4},
		"many pages":            {tasks: 23, wantCalls: 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := emulator.NewTestServer(t, emulator.Options{MaxPageSize: 5})
			c := newClient(t, srv, smallPages(5))
			want := []string{}
			for i := range tc.tasks {
				want = append(want, srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task-%02d", i)}))
			}

			var raw struct{ Tasks []clearml.Task }
			assert.NilError(t, c.Call(ctx, "tasks.get_all", clearml.TasksGetAllRequest{}, &raw))
			assert.Equal(t, len(raw.Tasks), min(tc.tasks, 5), "a raw call gets one page")

			srv.ResetCalls()
			got, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{OnlyFields: []string{"id"}})
			assert.NilError(t, err)
			assert.DeepEqual(t, taskIDs(got), want) // every task once, in creation order
			assert.Equal(t, srv.Calls("tasks.get_all"), tc.wantCalls)

			if tc.tasks > 5 {
				page, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{Page: ptr(1), PageSize: ptr(5)})
				assert.NilError(t, err)
				assert.DeepEqual(t, taskIDs(page), want[5:min(10, tc.tasks)]) // Page set: that page only
			}
		})
	}
}

func TestGetAllChunksIDs(t *testing.T) {
	ctx := context.Background()
	srv := emulator.NewTestServer(t, emulator.Options{}) // the real limit, 500
	c := newClient(t, srv)
	var ids []string
	for i := range 1200 {
		ids = append(ids, srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task-%04d", i)}))
	}
	var raw struct{ Tasks []clearml.Task }
	assert.NilError(t, c.Call(ctx, "tasks.get_all", clearml.TasksGetAllRequest{ID: ids, OnlyFields: []string{"id"}}, &raw))
	assert.Equal(t, len(raw.Tasks), 500, "the server answers one page of an id list")

	// Duplicates and unknown ids are harmless; the answer follows the server's order.
	asked := append(append([]string{"unknown"}, ids...), ids[:10]...)
	srv.ResetCalls()
	got, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: asked, OnlyFields: []string{"id"}})
	assert.NilError(t, err)
	assert.DeepEqual(t, taskIDs(got), ids)
	assert.Equal(t, srv.Calls("tasks.get_all"), 3, "1,201 distinct ids in chunks of 500")

	stopped := ids[600:700]
	for _, id := range stopped {
		assert.NilError(t, srv.SetTaskStatus(id, clearml.StatusStopped))
	}
	got, err = c.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: ids, Status: []string{clearml.StatusStopped}, OnlyFields: []string{"id"}})
	assert.NilError(t, err)
	assert.DeepEqual(t, taskIDs(got), stopped)
}

func TestQueuesAndProjectsGetAllAreComplete(t *testing.T) {
	ctx := context.Background()
	srv := emulator.NewTestServer(t, emulator.Options{MaxPageSize: 5})
	c := newClient(t, srv, smallPages(5))
	var queues, projects []string
	for i := range 12 {
		queues = append(queues, mustQueue(t, srv, fmt.Sprintf("queue-%02d", i)))
		id, err := srv.CreateProject(fmt.Sprintf("project-%02d", i))
		assert.NilError(t, err)
		projects = append(projects, id)
	}
	queueIDs := func(qs []clearml.Queue) []string {
		var ids []string
		for _, q := range qs {
			ids = append(ids, q.ID)
		}
		return ids
	}
	projectIDs := func(ps []clearml.Project) []string {
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		return ids
	}
	tests := map[string]func(t *testing.T){
		"queues, no filter": func(t *testing.T) {
			got, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{OnlyFields: []string{"id"}})
			assert.NilError(t, err)
			assert.DeepEqual(t, queueIDs(got), queues)
		},
		"queues by ids": func(t *testing.T) {
			srv.ResetCalls()
			got, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{ID: queues, OnlyFields: []string{"id", "entries"}})
			assert.NilError(t, err)
			assert.DeepEqual(t, queueIDs(got), queues)
			assert.Equal(t, srv.Calls("queues.get_all"), 3, "12 ids in chunks of 5")
		},
		"queues by name": func(t *testing.T) {
			got, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{Name: "^queue-0"})
			assert.NilError(t, err)
			assert.DeepEqual(t, queueIDs(got), queues[:10])
		},
		"queues, one page": func(t *testing.T) {
			got, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{PageSize: ptr(100)})
			assert.NilError(t, err)
			assert.DeepEqual(t, queueIDs(got), queues[:5])
		},
		"projects, no filter": func(t *testing.T) {
			got, err := c.ProjectsGetAll(ctx, clearml.ProjectsGetAllRequest{})
			assert.NilError(t, err)
			assert.DeepEqual(t, projectIDs(got), projects)
		},
		"projects by ids": func(t *testing.T) {
			got, err := c.ProjectsGetAll(ctx, clearml.ProjectsGetAllRequest{ID: projects, OnlyFields: []string{"name"}})
			assert.NilError(t, err)
			assert.DeepEqual(t, projectIDs(got), projects)
			assert.Equal(t, got[11].Name, "project-11")
		},
	}
	for name, test := range tests {
		t.Run(name, test)
	}
}

// failingPage fails the nth call of an endpoint with a server error, which is not retried.
type failingPage struct {
	endpoint string
	n        int32
	calls    atomic.Int32
}

func (f *failingPage) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/"+f.endpoint) && f.calls.Add(1) == f.n {
		return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("boom")), Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestGetAllFailsWhole(t *testing.T) {
	ctx := context.Background()
	srv := emulator.NewTestServer(t, emulator.Options{MaxPageSize: 5})
	for i := range 12 {
		srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task-%02d", i)})
	}
	c := newClient(t, srv, smallPages(5), func(cfg *clearml.Config) {
		cfg.HTTPClient = &http.Client{Transport: &failingPage{endpoint: "tasks.get_all", n: 2}}
	})
	got, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{})
	assertAPIError(t, err, 500, 0)
	assert.Assert(t, got == nil, "no partial list")
}

func TestPageErrorsReachTheCaller(t *testing.T) {
	ctx := context.Background()
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	_, err := c.TasksGetAll(ctx, clearml.TasksGetAllRequest{Page: ptr(-1)})
	assertAPIError(t, err, 400, 12)
	assert.ErrorContains(t, err, "page must be >=0")
	_, err = c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{PageSize: ptr(0)})
	assertAPIError(t, err, 400, 12)
	assert.ErrorContains(t, err, "page_size must be >0")
}

func TestProjectsAndUsers(t *testing.T) {
	ctx := context.Background()
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	id, err := c.ProjectsCreate(ctx, clearml.ProjectsCreateRequest{Name: "team/vision", Description: "cv", Tags: []string{"x"}})
	assert.NilError(t, err)
	p, err := c.ProjectsGetByID(ctx, id)
	assert.NilError(t, err)
	assert.Equal(t, p.Name, "team/vision")
	assert.Equal(t, p.Basename, "vision")
	assert.Equal(t, p.Description, "cv")
	assert.DeepEqual(t, p.Tags, []string{"x"})
	assert.Assert(t, p.Parent != "" && !p.Created.IsZero())
	parent, err := c.ProjectsGetByID(ctx, p.Parent)
	assert.NilError(t, err)
	assert.Equal(t, parent.Name, "team")

	all, err := c.ProjectsGetAll(ctx, clearml.ProjectsGetAllRequest{Name: "vision"})
	assert.NilError(t, err)
	assert.Equal(t, len(all), 1)
	assert.Equal(t, all[0].ID, id)

	taskID, err := c.TasksCreate(ctx, clearml.TasksCreateRequest{Name: "train", Type: "training", Project: id})
	assert.NilError(t, err)
	task, err := c.TasksGetByID(ctx, taskID)
	assert.NilError(t, err)
	assert.Equal(t, task.Project, id)

	claims, ok := c.Claims()
	assert.Assert(t, ok)
	user, err := c.UsersGetByID(ctx, task.User)
	assert.NilError(t, err)
	assert.Equal(t, user.ID, claims.Identity.User)
	assert.Equal(t, user.Name, "Emulator User")
	assert.Equal(t, user.GivenName, "Emulator")
	assert.Equal(t, user.FamilyName, "User")
	assert.Equal(t, user.Company, claims.Identity.Company)
	assert.Assert(t, !user.Created.IsZero())

	errs := map[string]struct {
		call  func() error
		is    func(error) bool
		code  int
		sub   int
		text  string
		other []func(error) bool // Is* helpers that must not match
	}{
		"duplicate project": {call: func() error {
			_, err := c.ProjectsCreate(ctx, clearml.ProjectsCreateRequest{Name: "team/vision"})
			return err
		}, code: 400, sub: 801, text: "Project with the same name already exists"},
		"unknown project": {call: func() error { _, err := c.ProjectsGetByID(ctx, "nope"); return err },
			is: clearml.IsInvalidProjectID, code: 400, sub: 401, other: []func(error) bool{clearml.IsInvalidTaskID, clearml.IsInvalidUserID}},
		"unknown user": {call: func() error { _, err := c.UsersGetByID(ctx, "nope"); return err },
			is: clearml.IsInvalidUserID, code: 400, sub: 301, other: []func(error) bool{clearml.IsInvalidProjectID}},
		"unknown task": {call: func() error { _, err := c.TasksGetByID(ctx, "nope"); return err },
			is: clearml.IsInvalidTaskID, code: 400, sub: 101, other: []func(error) bool{clearml.IsInvalidQueueID}},
		"unknown queue": {call: func() error { _, err := c.QueuesGetByID(ctx, "nope"); return err },
			is: clearml.IsInvalidQueueID, code: 400, sub: 701, other: []func(error) bool{clearml.IsInvalidTaskID}},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			assertAPIError(t, err, tc.code, tc.sub)
			assert.ErrorContains(t, err, tc.text)
			if tc.is != nil {
				assert.Assert(t, tc.is(err))
			}
			for _, is := range tc.other {
				assert.Assert(t, !is(err))
			}
		})
	}
	assert.Assert(t, !clearml.IsInvalidTaskID(nil))
}
