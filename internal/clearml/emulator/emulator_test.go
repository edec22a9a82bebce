package emulator_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// rawAnswer is a decoded response, checked against the envelope rules
// (docs/clearml-protocol.md, "Transport").
type rawAnswer struct {
	status int
	header http.Header
	meta   map[string]any
	data   map[string]any
	body   string
}

type request struct {
	method, path, body string
	header             map[string]string
}

var basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(emulator.DefaultAccessKey+":"+emulator.DefaultSecretKey))

func send(t *testing.T, srv *emulator.Server, req request) rawAnswer {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	r, err := http.NewRequest(method, srv.URL()+req.path, strings.NewReader(req.body))
	assert.NilError(t, err)
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	assert.NilError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	ans := rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(body)}
	var env struct {
		Meta map[string]any `json:"meta"`
		Data map[string]any `json:"data"`
	}
	if resp.Header.Get("Content-Type") == "application/json" {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		assert.NilError(t, dec.Decode(&env), string(body))
		assert.Assert(t, env.Data != nil, "data is always an object: %s", body)
		code, _ := env.Meta["result_code"].(json.Number).Int64()
		assert.Equal(t, int(code), resp.StatusCode, "HTTP status == result_code")
		ans.meta, ans.data = env.Meta, env.Data
	}
	return ans
}

// login returns a token for the default credentials.
func login(t *testing.T, srv *emulator.Server, query string) string {
	t.Helper()
	ans := send(t, srv, request{path: "/auth.login" + query, header: map[string]string{"Authorization": basic}})
	assert.Equal(t, ans.status, 200, ans.body)
	return ans.data["token"].(string)
}

func subcode(a rawAnswer) int {
	n, _ := a.meta["result_subcode"].(json.Number).Int64()
	return int(n)
}

func TestBadInputGetsServerEnvelope(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	bearer := "Bearer " + login(t, srv, "")
	auth := map[string]string{"Authorization": bearer}
	tests := map[string]struct {
		req     request
		status  int
		subcode int
		msg     string // a fragment of result_msg
	}{
		"invalid path":              {req: request{path: "/nothing"}, status: 400, msg: "Invalid request path /nothing"},
		"invalid path, one letter":  {req: request{path: "/v2.5/a.b"}, status: 400, msg: "Invalid request path"},
		"unknown endpoint":          {req: request{path: "/v2.14/queues.nope", header: auth}, status: 404, msg: "Unable to find endpoint for name queues.nope and version 2.14"},
		"unknown endpoint, no auth": {req: request{path: "/foo.bar"}, status: 404, msg: "Unable to find endpoint for name foo.bar and version 2.34"},
		"version below the handler": {req: request{path: "/v2.3/queues.get_all", header: auth}, status: 404, msg: "version 2.3"},
		"missing credentials":       {req: request{path: "/queues.get_all"}, status: 401, subcode: 20, msg: "Unauthorized (missing credentials)"},
		"bad auth scheme":           {req: request{path: "/queues.get_all", header: map[string]string{"Authorization": "Token abc"}}, status: 401, subcode: 10},
		"lower-case scheme":         {req: request{path: "/queues.get_all", header: map[string]string{"Authorization": "bearer abc"}}, status: 401, subcode: 10},
		"malformed basic":           {req: request{path: "/auth.login", header: map[string]string{"Authorization": "Basic !!!"}}, status: 401, subcode: 21},
		"invalid credentials": {req: request{path: "/auth.login", header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("k:s"))}},
			status: 401, subcode: 22, msg: "Unauthorized (invalid credentials) (failed to locate provided credentials)"},
		"garbage token":               {req: request{path: "/queues.get_all", header: map[string]string{"Authorization": "Bearer abc"}}, status: 401, subcode: 30, msg: "Invalid token (invalid jwt token): reason=Not enough segments"},
		"forged token":                {req: request{path: "/queues.get_all", header: map[string]string{"Authorization": bearer + "x"}}, status: 401, subcode: 30, msg: "Signature verification failed"},
		"malformed JSON":              {req: request{path: "/queues.get_all", header: auth, body: `{"name":`}, status: 400, msg: "Failed to decode JSON object"},
		"trailing data":               {req: request{path: "/queues.get_all", header: auth, body: `{} {}`}, status: 400, msg: "Failed to decode JSON object"},
		"body not object":             {req: request{path: "/queues.get_all", header: auth, body: `["a"]`}, status: 400, subcode: 12},
		"falsy body is {}":            {req: request{path: "/queues.get_all", header: auth, body: `null`}, status: 200},
		"wrong type":                  {req: request{path: "/queues.get_by_id", header: auth, body: `{"queue":123}`}, status: 400, subcode: 12, msg: "error for field 'queue'"},
		"wrong bool type":             {req: request{path: "/tasks.enqueue", header: auth, body: `{"task":"t","force":"yes"}`}, status: 400, subcode: 12, msg: "error for field 'force'"},
		"missing field":               {req: request{path: "/tasks.enqueue", header: auth, body: `{"queue":"q"}`}, status: 400, subcode: 12, msg: "Validation error (error for field 'task'. field is required!)"},
		"null field":                  {req: request{path: "/queues.get_next_task", header: auth, body: `{"queue":null}`}, status: 400, subcode: 12},
		"query digits become numbers": {req: request{path: "/queues.get_by_id?queue=123", header: auth}, status: 400, subcode: 12},
		"unknown task":                {req: request{path: "/tasks.get_by_id", header: auth, body: `{"task":"nope"}`}, status: 400, subcode: 101, msg: "Invalid task id: id=nope, company="},
		"unknown queue":               {req: request{path: "/queues.get_next_task", header: auth, body: `{"queue":"nope"}`}, status: 400, subcode: 701, msg: "Invalid queue id: id=nope"},
		"empty batch":                 {req: request{path: "/events.add_batch", header: map[string]string{"Authorization": bearer, "Content-Type": "application/json-lines"}}, status: 400, subcode: 17},
		"batch as plain JSON":         {req: request{path: "/events.add_batch", header: auth, body: `{"type":"log"}`}, status: 400, subcode: 17},
		"batch line not an object": {req: request{path: "/events.add_batch", header: map[string]string{"Authorization": bearer, "Content-Type": "application/json-lines"},
			body: "{\"type\":\"log\"}\n[1]\n"}, status: 400, msg: "json lines must contain objects, found: list"},
		"batch line not JSON": {req: request{path: "/events.add_batch", header: map[string]string{"Authorization": bearer, "Content-Type": "application/json-lines"},
			body: "{\"type\":\"log\"}\n\n{}"}, status: 400, msg: "in batch item #1"},
		"expiration too long":             {req: request{path: "/auth.login?expiration_sec=31536001", header: map[string]string{"Authorization": basic}}, status: 400, subcode: 12},
		"bad new_status":                  {req: request{path: "/tasks.dequeue", header: auth, body: `{"task":"t","new_status":"running"}`}, status: 400, subcode: 12},
		"short queue name":                {req: request{path: "/queues.create", header: auth, body: `{"name":"ab"}`}, status: 400, subcode: 800},
		"queue without name":              {req: request{path: "/queues.create", header: auth, body: `{}`}, status: 400, subcode: 12},
		"worker negative timeout":         {req: request{path: "/workers.register", header: auth, body: `{"worker":"w","timeout":-5}`}, status: 400, subcode: 1002},
		"status report unknown task":      {req: request{path: "/workers.status_report", header: auth, body: `{"worker":"w","timestamp":1,"task":"nope"}`}, status: 400, subcode: 101},
		"status report without timestamp": {req: request{path: "/workers.status_report", header: auth, body: `{"worker":"w"}`}, status: 400, subcode: 12},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ans := send(t, srv, tc.req)
			assert.Equal(t, ans.status, tc.status, ans.body)
			assert.Equal(t, subcode(ans), tc.subcode, ans.body)
			assert.Assert(t, strings.Contains(ans.meta["result_msg"].(string), tc.msg), "result_msg %q", ans.meta["result_msg"])
			if tc.status != 200 {
				assert.DeepEqual(t, ans.data, map[string]any{})
			}
		})
	}
}

func TestNonEnvelopeAnswers(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	tests := map[string]struct {
		req    request
		status int
		body   string
	}{
		"OPTIONS":          {req: request{method: http.MethodOptions, path: "/queues.get_all"}, status: 200, body: ""},
		"content encoding": {req: request{path: "/queues.get_all", header: map[string]string{"Content-Encoding": "gzip"}}, status: 415, body: "Content encoding is not supported (gzip)\n"},
		"DELETE":           {req: request{method: http.MethodDelete, path: "/queues.get_all"}, status: 405, body: "Method Not Allowed\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ans := send(t, srv, tc.req)
			assert.Equal(t, ans.status, tc.status)
			assert.Equal(t, ans.body, tc.body)
		})
	}
}

func TestPathsMethodsAndMeta(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{StripPrefix: "/api"})
	tokenHeader := map[string]string{"Authorization": basic, "X-ClearML-Trx": "trx-1"}
	tests := map[string]struct {
		req              request
		name, requested  string
		actual           any
		requestedIsFloat bool
	}{
		"unversioned":         {req: request{path: "/api/queues.get_all"}, name: "queues.get_all", requested: "2.34", actual: "2.4"},
		"versioned":           {req: request{path: "/api/v2.5/queues.get_all"}, name: "queues.get_all", requested: "2.5", actual: "2.4"},
		"trailing slash":      {req: request{path: "/api/v2.14/queues.get_next_task/", body: `{"queue":"x"}`}, name: "queues.get_next_task", requested: "2.14"},
		"higher than max":     {req: request{path: "/api/v9.99/debug.ping"}, name: "debug.ping", requested: "9.99", actual: "1.0"},
		"GET with JSON body":  {req: request{method: http.MethodGet, path: "/api/v2.31/debug.ping", body: `{"a":1}`}, name: "debug.ping", requested: "2.31", actual: "1.0"},
		"PUT":                 {req: request{method: http.MethodPut, path: "/api/debug.ping"}, name: "debug.ping", requested: "2.34", actual: "1.0"},
		"old float versions":  {req: request{path: "/api/v1.0/debug.ping"}, name: "debug.ping", requestedIsFloat: true},
		"basic auth anywhere": {req: request{path: "/api/v2.31/server.info"}, name: "server.info", requested: "2.31", actual: "1.0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.req.header = tokenHeader
			ans := send(t, srv, tc.req)
			assert.Assert(t, regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(ans.meta["id"].(string)))
			assert.Equal(t, ans.meta["trx"], "trx-1")
			assert.Equal(t, ans.header.Get("Content-Type"), "application/json")
			ep := ans.meta["endpoint"].(map[string]any)
			assert.Equal(t, ep["name"], tc.name)
			if tc.requestedIsFloat {
				assert.Equal(t, ep["requested_version"], json.Number("1.0"))
				return
			}
			assert.Equal(t, ep["requested_version"], tc.requested)
			if tc.actual != nil {
				assert.Equal(t, ep["actual_version"], tc.actual)
				assert.Equal(t, ans.meta["result_msg"], "OK")
				assert.Equal(t, ans.meta["error_stack"], nil)
				assert.DeepEqual(t, ans.meta["error_data"], map[string]any{})
			}
		})
	}
	t.Run("trx defaults to the id", func(t *testing.T) {
		ans := send(t, srv, request{path: "/api/debug.ping"})
		assert.Equal(t, ans.meta["trx"], ans.meta["id"])
	})
	t.Run("debug.ping echoes", func(t *testing.T) {
		ans := send(t, srv, request{path: "/api/debug.ping?x=1", body: `{"a":"b"}`})
		assert.DeepEqual(t, ans.data, map[string]any{"a": "b", "x": json.Number("1"), "msg": "ClearML server"})
	})
}

func TestLoginToken(t *testing.T) {
	now := time.Now()
	var offset atomic.Int64
	srv := emulator.NewTestServer(t, emulator.Options{Now: func() time.Time { return now.Add(time.Duration(offset.Load())) }})
	claimsOf := func(token string) map[string]any {
		parts := strings.Split(token, ".")
		assert.Equal(t, len(parts), 3)
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		assert.NilError(t, err)
		var claims map[string]any
		assert.NilError(t, json.Unmarshal(payload, &claims))
		return claims
	}
	token := login(t, srv, "")
	claims := claimsOf(token)
	for _, k := range []string{"identity", "iat", "exp", "session_id", "env", "auth_type", "api_version", "server_version", "server_build", "feature_set"} {
		assert.Assert(t, claims[k] != nil, "claim %s", k)
	}
	assert.Equal(t, claims["api_version"], "2.34")
	assert.Equal(t, claims["feature_set"], "basic")
	assert.Equal(t, claims["exp"].(float64)-claims["iat"].(float64), float64(30*24*3600))
	identity := claims["identity"].(map[string]any)
	for _, k := range []string{"user", "company", "role", "user_name", "company_name"} {
		assert.Assert(t, identity[k] != "", "identity.%s", k)
	}

	short := login(t, srv, "?expiration_sec=60")
	assert.Equal(t, claimsOf(short)["exp"].(float64)-claimsOf(short)["iat"].(float64), float64(60))
	ans := send(t, srv, request{path: "/auth.login", body: `{"expiration_sec":120}`, header: map[string]string{"Authorization": basic}})
	assert.Equal(t, ans.status, 200)
	assert.Assert(t, strings.Contains(ans.header.Get("Set-Cookie"), "clearml_token_basic="), "login sets the session cookie")

	// Bearer renewal returns a new token for the same identity.
	ans = send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": "Bearer " + short}})
	assert.Equal(t, ans.status, 200)
	assert.DeepEqual(t, claimsOf(ans.data["token"].(string))["identity"], claims["identity"])

	offset.Store(int64(61 * time.Second))
	ans = send(t, srv, request{path: "/queues.get_all", header: map[string]string{"Authorization": "Bearer " + short}})
	assert.Equal(t, ans.status, 401)
	assert.Equal(t, subcode(ans), 30)
	assert.Equal(t, ans.meta["result_msg"], "Invalid token (invalid jwt token): reason=Signature has expired")
	assert.DeepEqual(t, ans.meta["error_data"], map[string]any{"reason": "Signature has expired"})

	srv.RevokeTokens()
	ans = send(t, srv, request{path: "/queues.get_all", header: map[string]string{"Authorization": "Bearer " + token}})
	assert.Equal(t, ans.status, 401)
	assert.Equal(t, ans.meta["result_msg"], "Invalid token (revoked token)")
}

func TestDatetimeFormat(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
	_, err := srv.CreateQueue("work")
	assert.NilError(t, err)
	assert.NilError(t, srv.Enqueue(id, "work"))
	auth := map[string]string{"Authorization": basic}
	format := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`)

	tasks := send(t, srv, request{path: "/tasks.get_all", header: auth, body: `{"id":"` + id + `"}`}).data["tasks"].([]any)
	assert.Equal(t, len(tasks), 1, "a scalar id is accepted")
	doc := tasks[0].(map[string]any)
	for _, k := range []string{"created", "last_change", "last_update", "status_changed"} {
		assert.Assert(t, format.MatchString(doc[k].(string)), "%s = %v", k, doc[k])
	}
	_, hasEnqueueStatus := doc["enqueue_status"]
	assert.Assert(t, !hasEnqueueStatus, "enqueue_status is hidden")
	queues := send(t, srv, request{path: "/queues.get_all", header: auth}).data["queues"].([]any)
	entry := queues[0].(map[string]any)["entries"].([]any)[0].(map[string]any)
	assert.Assert(t, format.MatchString(entry["added"].(string)))

	projected := send(t, srv, request{path: "/tasks.get_all", header: auth,
		body: `{"id":["` + id + `"],"only_fields":["execution.queue","enqueue_status","status"]}`}).data["tasks"].([]any)[0]
	assert.DeepEqual(t, projected, map[string]any{"id": id, "status": "queued", "enqueue_status": "created",
		"execution": map[string]any{"queue": srv.QueueID("work")}})
}

func TestLegacyDockerCmd(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	auth := map[string]string{"Authorization": basic}
	ans := send(t, srv, request{path: "/v2.5/tasks.create", header: auth,
		body: `{"name":"old","type":"training","execution":{"docker_cmd":"nvidia/cuda:11 -e A=1"}}`})
	assert.Equal(t, ans.status, 200, ans.body)
	id := ans.data["id"].(string)
	task, _ := srv.Task(id)
	assert.DeepEqual(t, task.Container, map[string]any{"image": "nvidia/cuda:11", "arguments": "-e A=1"})

	old := send(t, srv, request{path: "/v2.12/tasks.get_by_id", header: auth, body: `{"task":"` + id + `"}`}).data["task"].(map[string]any)
	assert.Equal(t, old["execution"].(map[string]any)["docker_cmd"], "nvidia/cuda:11 -e A=1")
	modern := send(t, srv, request{path: "/v2.13/tasks.get_by_id", header: auth, body: `{"task":"` + id + `"}`}).data["task"].(map[string]any)
	_, has := modern["execution"].(map[string]any)["docker_cmd"]
	assert.Assert(t, !has)
}

func TestFaultsAndHooks(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	auth := map[string]string{"Authorization": basic}

	srv.Outage(time.Hour, 0)
	ans := send(t, srv, request{path: "/auth.login", header: auth})
	assert.Equal(t, ans.status, 503)
	assert.Equal(t, ans.meta["result_msg"], "Service Unavailable (emulator fault)")
	srv.ClearFaults()

	srv.InjectFault(emulator.Fault{Endpoint: "queues.get_all", Status: 502, Count: 2})
	srv.InjectFault(emulator.Fault{Status: 429})
	assert.Equal(t, send(t, srv, request{path: "/debug.ping"}).status, 429, "any-endpoint fault")
	assert.Equal(t, send(t, srv, request{path: "/queues.get_all", header: auth}).status, 502)
	assert.Equal(t, send(t, srv, request{path: "/queues.get_all", header: auth}).status, 502)
	assert.Equal(t, send(t, srv, request{path: "/queues.get_all", header: auth}).status, 200, "the fault is used up")
	assert.Equal(t, srv.Calls("queues.get_all"), 3)
	assert.Equal(t, srv.Calls("debug.ping"), 1)
	srv.ResetCalls()
	assert.Equal(t, srv.Calls("queues.get_all"), 0)

	srv.InjectFault(emulator.Fault{DropConnection: true})
	resp, err := http.Post(srv.URL()+"/debug.ping", "application/json", nil)
	if err == nil {
		_ = resp.Body.Close()
	}
	assert.ErrorContains(t, err, "EOF")

	// Hooks: a user's task enqueued, the queue deleted under it.
	qid, err := srv.CreateQueue("work")
	assert.NilError(t, err)
	again, err := srv.CreateQueue("work")
	assert.NilError(t, err)
	assert.Equal(t, again, qid)
	_, err = srv.CreateQueue("x")
	assert.ErrorContains(t, err, "400/800")
	id := srv.CreateTask(emulator.TaskSpec{Name: "t", Container: map[string]string{"image": "img"}})
	assert.NilError(t, srv.Enqueue(id, "work"))
	assert.ErrorContains(t, srv.Enqueue(id, "missing"), `no queue named "missing"`)
	assert.ErrorContains(t, srv.Enqueue("nope", "work"), "400/101")
	assert.DeepEqual(t, srv.QueueEntries("work"), []string{id})
	assert.Assert(t, srv.QueueEntries("missing") == nil)
	task, ok := srv.Task(id)
	assert.Assert(t, ok)
	assert.Equal(t, task.Status, "queued")
	assert.Equal(t, task.Type, "training")
	task.Container["image"] = "changed"
	fresh, _ := srv.Task(id)
	assert.Equal(t, fresh.Container["image"], "img", "Task returns a copy")
	assert.Assert(t, srv.DeleteQueue("work"))
	assert.Assert(t, !srv.DeleteQueue("work"))
	assert.Equal(t, srv.QueueID("work"), "")
	assert.ErrorContains(t, srv.SetTaskStatus(id, "bogus"), "invalid status")
	assert.ErrorContains(t, srv.SetTaskStatus("nope", "queued"), "no task")
}

// listen starts srv.ListenAndServe on a free port and waits until it has a URL. stop cancels it
// and returns what it returned, failing the test if it has not returned within the given time.
func listen(t *testing.T, srv *emulator.Server) (stop func(within time.Duration) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx, "127.0.0.1:0") }()
	deadline := time.Now().Add(5 * time.Second)
	for srv.URL() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.Assert(t, srv.URL() != "", "the emulator did not listen within 5 s")
	return func(within time.Duration) error {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(within):
			t.Fatalf("ListenAndServe did not return within %s of cancel", within)
			return nil
		}
	}
}

func TestListenAndServe(t *testing.T) {
	srv := emulator.New(emulator.Options{AccessKey: "k", SecretKey: "s"})
	stop := listen(t, srv)
	resp, err := http.Post(srv.URL()+"/auth.login", "application/json", nil)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, 401)
	assert.NilError(t, stop(10*time.Second))
	assert.ErrorContains(t, emulator.New(emulator.Options{}).ListenAndServe(context.Background(), "256.0.0.1:1"), "256.0.0.1")
}

// A connection that never sends a request (an HTTP client's spare) does not hold the shutdown:
// net/http counts it busy for 5 s, which is all the demo waits before it kills the emulator.
func TestListenAndServeStopsWithAnIdleConnectionOpen(t *testing.T) {
	srv := emulator.New(emulator.Options{AccessKey: "k", SecretKey: "s"})
	stop := listen(t, srv)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	assert.NilError(t, err)
	defer conn.Close()
	time.Sleep(100 * time.Millisecond) // accepted
	assert.NilError(t, stop(4*time.Second), "with a connection open that sent nothing")
}

// TestDirectStatusWrites: tasks.update and tasks.edit set a status with no state machine,
// as the server's own tests do with tasks.edit(status="queued").
func TestDirectStatusWrites(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{})
	auth := map[string]string{"Authorization": basic}
	id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
	// The steps build on each other, so they run in order.
	steps := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{name: "update to published", path: "/tasks.update", body: `{"task":"` + id + `","status":"published","status_reason":"r"}`, status: 200, want: "published"},
		{name: "edit needs created", path: "/tasks.edit", body: `{"task":"` + id + `","status":"queued"}`, status: 400, want: "published"},
		{name: "edit forced", path: "/tasks.edit", body: `{"task":"` + id + `","status":"queued","force":true}`, status: 200, want: "queued"},
		{name: "update bogus status", path: "/tasks.update", body: `{"task":"` + id + `","status":"bogus"}`, status: 400, want: "queued"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ans := send(t, srv, request{path: step.path, header: auth, body: step.body})
			assert.Equal(t, ans.status, step.status, ans.body)
			task, _ := srv.Task(id)
			assert.Equal(t, task.Status, step.want)
		})
	}
}
