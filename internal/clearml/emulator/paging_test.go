package emulator_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// listed returns the ids of the documents under key in an answer.
func listed(t *testing.T, ans rawAnswer, key string) []string {
	t.Helper()
	docs, ok := ans.data[key].([]any)
	assert.Assert(t, ok, "no %s list in %s", key, ans.body)
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

// pagingFixture is an emulator with 12 tasks, 12 queues and 12 projects and a page limit of 5.
type pagingFixture struct {
	srv   *emulator.Server
	clock *atomic.Int64 // offset of the emulator's clock, in nanoseconds
	ids   map[string][]string
	auth  map[string]string
}

func newPagingFixture(t *testing.T) pagingFixture {
	t.Helper()
	f := pagingFixture{clock: &atomic.Int64{}, ids: map[string][]string{}}
	f.srv = emulator.NewTestServer(t, emulator.Options{MaxPageSize: 5,
		Now: func() time.Time { return time.Now().Add(time.Duration(f.clock.Load())) }})
	f.auth = map[string]string{"Authorization": basic}
	for i := range 12 {
		f.ids["tasks"] = append(f.ids["tasks"], f.srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task-%02d", i)}))
		q, err := f.srv.CreateQueue(fmt.Sprintf("queue-%02d", i))
		assert.NilError(t, err)
		f.ids["queues"] = append(f.ids["queues"], q)
		p, err := f.srv.CreateProject(fmt.Sprintf("project-%02d", i))
		assert.NilError(t, err)
		f.ids["projects"] = append(f.ids["projects"], p)
	}
	return f
}

func TestGetAllPaging(t *testing.T) {
	f := newPagingFixture(t)
	tests := map[string]struct {
		body    string
		query   string
		from    int // the answer is ids[from:to]
		to      int
		status  int
		subcode int
		msg     string
	}{
		"no paging fields: the first page of the maximum": {body: `{}`, from: 0, to: 5},
		"page 1":                             {body: `{"page":1,"page_size":5}`, from: 5, to: 10},
		"last page is short":                 {body: `{"page":2,"page_size":5}`, from: 10, to: 12},
		"past the end":                       {body: `{"page":3,"page_size":5}`, from: 12, to: 12},
		"page size is capped at the maximum": {body: `{"page":1,"page_size":100}`, from: 5, to: 10},
		"page size alone is page 0":          {body: `{"page_size":3}`, from: 0, to: 3},
		"page alone pages by the maximum":    {body: `{"page":2}`, from: 10, to: 12},
		"paging from the query string":       {query: "?page=1&page_size=4", from: 4, to: 8},
		"both null: no paging":               {body: `{"page":null,"page_size":null}`, from: 0, to: 12},
		"start and size":                     {body: `{"start":7,"size":3}`, from: 7, to: 10},
		"size is not capped":                 {body: `{"start":1,"size":50}`, from: 1, to: 12},
		"page with a null page size": {body: `{"page":1,"page_size":null}`, status: 400, subcode: 11,
			msg: "Missing required fields (page_size is required when page is requested): field=page_size"},
		"null page size alone": {body: `{"page_size":null}`, status: 400, subcode: 11, msg: "page_size is required when page is requested"},
		"negative page":        {body: `{"page":-1,"page_size":5}`, status: 400, subcode: 12, msg: "Validation error (page must be >=0): field=page"},
		"page size 0":          {body: `{"page":0,"page_size":0}`, status: 400, subcode: 12, msg: "Validation error (page_size must be >0): field=page_size"},
		"page not a number":    {body: `{"page":"1","page_size":5}`, status: 400, subcode: 12, msg: "error for field 'page'"},
		"start without size": {body: `{"start":2}`, status: 400, subcode: 12,
			msg: "Validation error (Integer size parameter greater than 1 should be provided when working with scroll)"},
		"scroll without size": {body: `{"scroll_id":""}`, status: 400, subcode: 12, msg: "Integer size parameter"},
		"scroll with size 0":  {body: `{"scroll_id":"","size":0}`, status: 400, subcode: 12, msg: "Integer size parameter"},
	}
	for _, key := range []string{"tasks", "queues", "projects"} {
		for name, tc := range tests {
			t.Run(key+"/"+name, func(t *testing.T) {
				ans := send(t, f.srv, request{path: "/" + key + ".get_all" + tc.query, header: f.auth, body: tc.body})
				if tc.status != 0 {
					assert.Equal(t, ans.status, tc.status, ans.body)
					assert.Equal(t, subcode(ans), tc.subcode, ans.body)
					assert.Assert(t, strings.Contains(ans.meta["result_msg"].(string), tc.msg), "result_msg %q", ans.meta["result_msg"])
					return
				}
				assert.Equal(t, ans.status, 200, ans.body)
				assert.DeepEqual(t, listed(t, ans, key), f.ids[key][tc.from:tc.to])
				_, scrolled := ans.data["scroll_id"]
				assert.Assert(t, !scrolled, "no scroll_id without scrolling")
			})
		}
	}
	t.Run("an id filter is paged too", func(t *testing.T) {
		body := `{"id":["` + strings.Join(f.ids["tasks"], `","`) + `"],"only_fields":["id"]}`
		ans := send(t, f.srv, request{path: "/tasks.get_all", header: f.auth, body: body})
		assert.DeepEqual(t, listed(t, ans, "tasks"), f.ids["tasks"][:5])
	})
	t.Run("an id filter answers in creation order, unknown ids left out", func(t *testing.T) {
		ids := f.ids["tasks"]
		body := `{"id":["` + strings.Join([]string{ids[9], "nope", ids[2], ids[7], ids[2]}, `","`) + `"],"only_fields":["id"]}`
		ans := send(t, f.srv, request{path: "/tasks.get_all", header: f.auth, body: body})
		assert.DeepEqual(t, listed(t, ans, "tasks"), []string{ids[2], ids[7], ids[9]})
	})
	t.Run("pages follow filters", func(t *testing.T) {
		ans := send(t, f.srv, request{path: "/tasks.get_all", header: f.auth, body: `{"name":"task-1","page":0,"page_size":1}`})
		assert.DeepEqual(t, listed(t, ans, "tasks"), f.ids["tasks"][10:11])
	})
}

func TestGetAllScroll(t *testing.T) {
	f := newPagingFixture(t)
	for _, key := range []string{"tasks", "queues", "projects"} {
		t.Run(key, func(t *testing.T) {
			ids := f.ids[key]
			scroll := func(body string) (got []string, scrollID string) {
				t.Helper()
				ans := send(t, f.srv, request{path: "/" + key + ".get_all", header: f.auth, body: body})
				assert.Equal(t, ans.status, 200, ans.body)
				scrollID, _ = ans.data["scroll_id"].(string)
				assert.Assert(t, scrollID != "", "a scroll answer carries its scroll_id: %s", ans.body)
				return listed(t, ans, key), scrollID
			}
			got, id := scroll(`{"scroll_id":"","size":5}`)
			assert.DeepEqual(t, got, ids[0:5])
			next, same := scroll(`{"scroll_id":"` + id + `","size":5}`)
			assert.DeepEqual(t, next, ids[5:10])
			assert.Equal(t, same, id)
			next, _ = scroll(`{"scroll_id":"` + id + `","size":5}`)
			assert.DeepEqual(t, next, ids[10:12])
			next, _ = scroll(`{"scroll_id":"` + id + `","size":5}`)
			assert.Equal(t, len(next), 0, "the end of the scroll")

			refreshed, _ := scroll(`{"scroll_id":"` + id + `","size":2,"refresh_scroll":true}`)
			assert.DeepEqual(t, refreshed, ids) // a refresh reads again up to the scroll position

			big, _ := scroll(`{"scroll_id":null,"size":8}`)
			assert.DeepEqual(t, big, ids[:8]) // a scroll size is not capped by the page limit

			_, other := scroll(`{"scroll_id":"unknown","size":1}`)
			assert.Assert(t, other != "unknown", "an unknown scroll starts a new one")

			f.clock.Add(int64(11 * time.Minute))
			again, renewed := scroll(`{"scroll_id":"` + id + `","size":3}`)
			assert.DeepEqual(t, again, ids[:3]) // an expired scroll starts over
			assert.Assert(t, renewed != id)
		})
	}
}
