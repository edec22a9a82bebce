package emulator_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

const (
	defaultUserID    = "e6b4a7c0d7e14c6f9a3b2f5d8c1e0a42"
	defaultCompanyID = "d1bd92a3b039400cbafc60a7a5b1e52b"
)

func jsonNumber(n int) json.Number { return json.Number(strconv.Itoa(n)) }

func TestProjects(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	auth := map[string]string{"Authorization": basic}
	ans := send(t, srv, request{path: "/projects.create", header: auth, body: `{"name":" team// vision ","description":"cv"}`})
	assert.Equal(t, ans.status, 200, ans.body)
	vision := ans.data["id"].(string)
	child, _ := srv.Project(vision)
	parent, ok := srv.Project(child.Parent)
	assert.Assert(t, ok, "the enclosing project is created on the way")
	assert.Equal(t, parent.Name, "team")

	got := send(t, srv, request{path: "/projects.get_by_id", header: auth, body: `{"project":"` + vision + `"}`}).data["project"].(map[string]any)
	for _, k := range []string{"created", "last_update"} {
		assert.Assert(t, got[k] != nil, "%s is set", k)
		delete(got, k)
	}
	assert.DeepEqual(t, got, map[string]any{"id": vision, "name": "team/vision", "basename": "vision", "description": "cv",
		"user": defaultUserID, "company": defaultCompanyID, "parent": parent.ID, "path": []any{parent.ID},
		"tags": []any{}, "system_tags": []any{}, "featured": jsonNumber(9999)})

	dotted, err := srv.CreateProject("team/.dotted")
	assert.NilError(t, err)
	again, err := srv.CreateProject(" team/.dotted")
	assert.NilError(t, err)
	assert.Equal(t, again, dotted, "the hook returns the existing project")
	ans = send(t, srv, request{path: "/projects.create", header: auth, body: `{"name":"secret","system_tags":["hidden"]}`})
	assert.Equal(t, ans.status, 200, ans.body)
	secret := ans.data["id"].(string)

	lists := map[string]struct {
		body string
		want []string
	}{
		"all but hidden":      {body: `{}`, want: []string{parent.ID, vision, dotted}},
		"search_hidden":       {body: `{"search_hidden":true}`, want: []string{parent.ID, vision, dotted, secret}},
		"ids show hidden":     {body: `{"id":["` + secret + `","nope"]}`, want: []string{secret}},
		"scalar id":           {body: `{"id":"` + vision + `"}`, want: []string{vision}},
		"name regex":          {body: `{"name":"^team/"}`, want: []string{vision, dotted}},
		"below a parent":      {body: `{"parent":["` + parent.ID + `"]}`, want: []string{vision, dotted}},
		"top level (shallow)": {body: `{"shallow_search":true,"search_hidden":true}`, want: []string{parent.ID, secret}},
	}
	for name, tc := range lists {
		t.Run(name, func(t *testing.T) {
			ans := send(t, srv, request{path: "/projects.get_all", header: auth, body: tc.body})
			assert.Equal(t, ans.status, 200, ans.body)
			assert.DeepEqual(t, listed(t, ans, "projects"), tc.want)
		})
	}
	t.Run("only_fields", func(t *testing.T) {
		ans := send(t, srv, request{path: "/projects.get_all", header: auth, body: `{"id":["` + vision + `"],"only_fields":["name","basename"]}`})
		assert.DeepEqual(t, ans.data["projects"], []any{map[string]any{"id": vision, "name": "team/vision", "basename": "vision"}})
	})
	t.Run("get_all leaves the path out", func(t *testing.T) {
		doc := send(t, srv, request{path: "/projects.get_all", header: auth, body: `{"id":["` + vision + `"]}`}).data["projects"].([]any)[0].(map[string]any)
		_, hasPath := doc["path"]
		assert.Assert(t, !hasPath)
	})
	t.Run("tasks keep their project", func(t *testing.T) {
		ans := send(t, srv, request{path: "/tasks.create", header: auth, body: `{"name":"train","type":"training","project":"` + vision + `"}`})
		assert.Equal(t, ans.status, 200, ans.body)
		task := send(t, srv, request{path: "/tasks.get_by_id", header: auth, body: `{"task":"` + ans.data["id"].(string) + `"}`}).data["task"].(map[string]any)
		assert.Equal(t, task["project"], vision)
		inProject := send(t, srv, request{path: "/tasks.get_all", header: auth, body: `{"project":["` + vision + `"],"only_fields":["project"]}`})
		assert.DeepEqual(t, inProject.data["tasks"], []any{map[string]any{"id": task["id"], "project": vision}})
	})

	errs := map[string]struct {
		path, body string
		status     int
		subcode    int
		msg        string
	}{
		"duplicate name": {path: "/projects.create", body: `{"name":"team/vision"}`, status: 400, subcode: 801,
			msg: "Project with the same name already exists: name=team/vision, company=" + defaultCompanyID},
		"short name":        {path: "/projects.create", body: `{"name":"ab"}`, status: 400, subcode: 12, msg: "Validation error (Project name cannot be blank)"},
		"short parent":      {path: "/projects.create", body: `{"name":"ab/long-enough"}`, status: 400, subcode: 12, msg: "Project name cannot be blank"},
		"empty name":        {path: "/projects.create", body: `{"name":"//"}`, status: 400, subcode: 407, msg: "Invalid project name: name=//"},
		"missing name":      {path: "/projects.create", body: `{}`, status: 400, subcode: 11, msg: "Missing required fields: missing=(name)"},
		"too deep":          {path: "/projects.create", body: `{"name":"` + strings.Repeat("abc/", 10) + `abc"}`, status: 400, subcode: 409, msg: "Project path exceed the maximum allowed depth: max_depth=10"},
		"unknown project":   {path: "/projects.get_by_id", body: `{"project":"nope"}`, status: 400, subcode: 401, msg: "Invalid project id: id=nope"},
		"missing project":   {path: "/projects.get_by_id", body: `{}`, status: 400, subcode: 12, msg: "error for field 'project'. field is required!"},
		"bad name regex":    {path: "/projects.get_all", body: `{"name":"("}`, status: 400, subcode: 21},
		"unknown user":      {path: "/users.get_by_id", body: `{"user":"nope"}`, status: 400, subcode: 301, msg: "Invalid user id: id=nope, company=" + defaultCompanyID},
		"missing user":      {path: "/users.get_by_id", body: `{}`, status: 400, subcode: 12, msg: "error for field 'user'. field is required!"},
		"short task name":   {path: "/tasks.create", body: `{"name":" ab ","type":"training"}`, status: 400, subcode: 800, msg: "Data validation error: name=String value is too short"},
		"task without type": {path: "/tasks.create", body: `{"name":"abc"}`, status: 400, subcode: 12, msg: "error for field 'type'"},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			ans := send(t, srv, request{path: tc.path, header: auth, body: tc.body})
			assert.Equal(t, ans.status, tc.status, ans.body)
			assert.Equal(t, subcode(ans), tc.subcode, ans.body)
			assert.Assert(t, strings.Contains(ans.meta["result_msg"].(string), tc.msg), "result_msg %q", ans.meta["result_msg"])
		})
	}
}

func TestUsersGetByID(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	auth := map[string]string{"Authorization": basic}
	user := send(t, srv, request{path: "/users.get_by_id", header: auth, body: `{"user":"` + defaultUserID + `"}`}).data["user"].(map[string]any)
	assert.Assert(t, user["created"] != nil)
	delete(user, "created")
	assert.DeepEqual(t, user, map[string]any{"id": defaultUserID, "name": "Emulator User", "given_name": "Emulator",
		"family_name": "User", "company": defaultCompanyID})

	owner := srv.AddUser(emulator.User{Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace"})
	got := send(t, srv, request{path: "/users.get_by_id", header: auth, body: `{"user":"` + owner + `"}`}).data["user"].(map[string]any)
	assert.Equal(t, got["name"], "Ada Lovelace")
	assert.Equal(t, got["company"], defaultCompanyID)
}

// TestNewTaskShape checks a task created with only a name and a type against the document the
// server stores for it (the Task model's defaults): nothing the server leaves unset appears.
func TestNewTaskShape(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	auth := map[string]string{"Authorization": basic}
	ans := send(t, srv, request{path: "/tasks.create", header: auth, body: `{"name":" bare ","type":"training"}`})
	assert.Equal(t, ans.status, 200, ans.body)
	id := ans.data["id"].(string)
	doc := send(t, srv, request{path: "/tasks.get_by_id", header: auth, body: `{"task":"` + id + `"}`}).data["task"].(map[string]any)
	for _, k := range []string{"created", "last_update", "last_change"} {
		assert.Assert(t, doc[k] != nil, "%s is set", k)
		delete(doc, k)
	}
	empty := map[string]any{}
	assert.DeepEqual(t, doc, map[string]any{
		"id": id, "name": "bare", "type": "training", "status": "created",
		"user": defaultUserID, "company": defaultCompanyID, "last_changed_by": defaultUserID,
		"tags": []any{}, "system_tags": []any{}, "report_assets": []any{},
		"container": empty, "runtime": empty, "hyperparams": empty, "configuration": empty, "output": empty,
		"last_metrics": empty, "metric_stats": empty, "last_iteration": jsonNumber(0),
		"models": map[string]any{"input": []any{}, "output": []any{}},
		"execution": map[string]any{"test_split": jsonNumber(0), "parameters": empty, "model_desc": empty,
			"model_labels": empty, "artifacts": []any{}},
		"script": map[string]any{"binary": "python", "repository": "", "entry_point": "", "requirements": empty},
	})

	t.Run("a projection keeps the objects on its path", func(t *testing.T) {
		ans := send(t, srv, request{path: "/tasks.get_all", header: auth, body: `{"id":["` + id + `"],"only_fields":["execution.queue","container.image"]}`})
		assert.DeepEqual(t, ans.data["tasks"], []any{map[string]any{"id": id, "execution": empty, "container": empty}})
	})
	t.Run("a projection through a list", func(t *testing.T) {
		_, err := srv.CreateQueue("work")
		assert.NilError(t, err)
		assert.NilError(t, srv.Enqueue(id, "work"))
		ans := send(t, srv, request{path: "/queues.get_all", header: auth, body: `{"only_fields":["entries.task"]}`})
		assert.DeepEqual(t, ans.data["queues"], []any{map[string]any{"id": srv.QueueID("work"), "entries": []any{map[string]any{"task": id}}}})
	})
	t.Run("the first status change sets the status fields", func(t *testing.T) {
		doc := send(t, srv, request{path: "/tasks.get_by_id", header: auth, body: `{"task":"` + id + `"}`}).data["task"].(map[string]any)
		assert.Equal(t, doc["status"], "queued")
		assert.Assert(t, doc["status_changed"] != nil)
		assert.Equal(t, doc["status_reason"], "")
		assert.Equal(t, doc["status_message"], "")
	})
}
