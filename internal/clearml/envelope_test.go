package clearml

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
)

const okMeta = `{"meta":{"id":"a","trx":"a","endpoint":{"name":"x.y","requested_version":"2.31","actual_version":"1.0"},` +
	`"result_code":200,"result_subcode":0,"result_msg":"OK","error_stack":null,"error_data":{}},"data":`

func TestDecodeResponse(t *testing.T) {
	type data struct {
		Queues []string `json:"queues"`
	}
	tests := map[string]struct {
		status  int
		body    string
		noOut   bool
		want    *data
		wantAPI *APIError
		// wantInvalid is a fragment of the ErrInvalidResponse message.
		wantInvalid string
	}{
		"ok":                               {status: 200, body: okMeta + `{"queues":["a"]}}`, want: &data{Queues: []string{"a"}}},
		"ok, empty data, no output wanted": {status: 200, body: okMeta + `{}}`, noOut: true},
		"ok, null data, no output wanted":  {status: 200, body: okMeta + `null}`, noOut: true},
		"api error": {status: 400, body: `{"meta":{"result_code":400,"result_subcode":701,"result_msg":"Invalid queue id: id=q",` +
			`"error_data":{"id":"q"}},"data":{}}`,
			wantAPI: &APIError{HTTPStatus: 400, ResultCode: 400, Subcode: 701, Msg: "Invalid queue id: id=q", ErrorData: map[string]any{"id": "q"}, Endpoint: "x.y"}},
		"result code 200 but HTTP 500": {status: 500, body: okMeta + `{}}`,
			wantAPI: &APIError{HTTPStatus: 500, ResultCode: 200, Msg: "OK", ErrorData: map[string]any{}, Endpoint: "x.y"}},
		"HTML from a proxy": {status: 502, body: "<html><body>502 Bad Gateway</body></html>",
			wantAPI: &APIError{HTTPStatus: 502, ResultCode: 502, Msg: "<html><body>502 Bad Gateway</body></html>", Endpoint: "x.y"}},
		"empty error body": {status: 503, body: "",
			wantAPI: &APIError{HTTPStatus: 503, ResultCode: 503, Msg: "Service Unavailable", Endpoint: "x.y"}},
		"non-JSON 200":              {status: 200, body: "hello", wantInvalid: `HTTP 200 with a body that is not a ClearML envelope: "hello"`},
		"truncated body":            {status: 200, body: okMeta + `{"queues":["a"`, wantInvalid: "not a ClearML envelope"},
		"JSON without meta":         {status: 200, body: `{"data":{}}`, wantInvalid: "not a ClearML envelope"},
		"meta without result code":  {status: 200, body: `{"meta":{},"data":{}}`, wantInvalid: "not a ClearML envelope"},
		"data null":                 {status: 200, body: okMeta + `null}`, wantInvalid: "data is null"},
		"data missing":              {status: 200, body: strings.TrimSuffix(okMeta, `,"data":`) + `}`, wantInvalid: "data is null"},
		"data of the wrong shape":   {status: 200, body: okMeta + `{"queues":"a"}}`, wantInvalid: "decoding data"},
		"JSON array":                {status: 200, body: `[1,2]`, wantInvalid: "not a ClearML envelope"},
		"long foreign body is cut":  {status: 200, body: strings.Repeat("x", 1000), wantInvalid: strings.Repeat("x", maxSnippet) + "…"},
		"invalid UTF-8 is replaced": {status: 200, body: "\xff\xfe", wantInvalid: `"?"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out *data
			var target any
			if !tc.noOut {
				out = &data{}
				target = out
			}
			err := decodeResponse("x.y", tc.status, []byte(tc.body), target)
			switch {
			case tc.wantAPI != nil:
				var apiErr *APIError
				assert.Assert(t, errors.As(err, &apiErr), "got %v", err)
				assert.DeepEqual(t, apiErr, tc.wantAPI)
			case tc.wantInvalid != "":
				assert.Assert(t, errors.Is(err, ErrInvalidResponse), "got %v", err)
				assert.ErrorContains(t, err, "clearml: x.y: invalid ClearML response")
				assert.ErrorContains(t, err, tc.wantInvalid)
			default:
				assert.NilError(t, err)
				if tc.want != nil {
					assert.DeepEqual(t, out, tc.want)
				}
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	err := &APIError{HTTPStatus: 400, ResultCode: 400, Subcode: 706, Msg: "Failed adding task", Endpoint: "tasks.enqueue"}
	assert.Error(t, err, "clearml: tasks.enqueue: 400/706: Failed adding task")
	err.HTTPStatus = 502
	assert.Error(t, err, "clearml: tasks.enqueue: HTTP 502, 400/706: Failed adding task")
	assert.Assert(t, IsSubcode(err, 400, 706))
	assert.Assert(t, IsSubcode(errors.Join(errors.New("x"), err), 400, 706), "wrapped errors match")
	assert.Assert(t, !IsSubcode(err, 400, 701))
	assert.Assert(t, !IsSubcode(errors.New("400/706"), 400, 706))
}

// FuzzDecodeResponse checks that any response decodes to nil, an *APIError or an
// ErrInvalidResponse error, consistently with the status, and never panics.
func FuzzDecodeResponse(f *testing.F) {
	for _, seed := range []struct {
		status int
		body   string
	}{
		{200, okMeta + `{"entry":{"task":"t","added":"2025-01-02T03:04:05.123000+00:00"}}}`},
		{200, okMeta + `{}}`},
		{200, okMeta + `null}`},
		{400, `{"meta":{"result_code":400,"result_subcode":701,"result_msg":"x"},"data":{}}`},
		{502, `<html>bad gateway</html>`},
		{200, `{"meta":{"result_code":"200"},"data":{}}`},
		{200, `{"meta":null}`},
		{200, okMeta + `{"entry":{"task":1}}}`},
		{200, okMeta + `{"entry":{"added":"yesterday"}}}`},
		{-1, ``},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var out struct {
			Entry *struct {
				Task  string
				Added Time
			} `json:"entry"`
			TaskInfo map[string]any `json:"task_info"`
		}
		err := decodeResponse("queues.get_next_task", status, body, &out)
		if err == nil {
			if status < 200 || status > 299 {
				t.Fatalf("HTTP %d accepted", status)
			}
			return
		}
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr):
			if apiErr.HTTPStatus != status || apiErr.Endpoint != "queues.get_next_task" {
				t.Fatalf("inconsistent error %+v for HTTP %d", apiErr, status)
			}
			if apiErr.ResultCode == 200 && status >= 200 && status <= 299 {
				t.Fatalf("success reported as error: %v", err)
			}
		case errors.Is(err, ErrInvalidResponse):
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		if len(err.Error()) > 2*maxSnippet+4096 {
			t.Fatalf("error message of %d bytes", len(err.Error()))
		}
	})
}

func TestTimeJSON(t *testing.T) {
	want := time.Date(2025, 1, 2, 3, 4, 5, 123000000, time.UTC)
	tests := map[string]struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		"server format":     {in: `"2025-01-02T03:04:05.123000+00:00"`, want: want},
		"Z suffix":          {in: `"2025-01-02T03:04:05.123Z"`, want: want},
		"other offset":      {in: `"2025-01-02T05:04:05.123+02:00"`, want: want},
		"naive is UTC":      {in: `"2025-01-02T03:04:05.123"`, want: want},
		"no fraction":       {in: `"2025-01-02T03:04:05+00:00"`, want: want.Truncate(time.Second)},
		"null":              {in: `null`},
		"empty":             {in: `""`},
		"not a date":        {in: `"yesterday"`, wantErr: true},
		"number":            {in: `12`, wantErr: true},
		"date without time": {in: `"2025-01-02"`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got Time
			err := json.Unmarshal([]byte(tc.in), &got)
			if tc.wantErr {
				assert.Assert(t, err != nil)
				return
			}
			assert.NilError(t, err)
			assert.Assert(t, got.Equal(tc.want), "got %v want %v", got, tc.want)
		})
	}
	b, err := json.Marshal(Time{want})
	assert.NilError(t, err)
	assert.Equal(t, string(b), `"2025-01-02T03:04:05.123000+00:00"`)
	b, err = json.Marshal(Task{ID: "t", LastChange: Time{want}})
	assert.NilError(t, err)
	assert.Equal(t, string(b), `{"id":"t","last_change":"2025-01-02T03:04:05.123000+00:00"}`, "zero times and empty structs are left out")
}

func TestEffectiveContainer(t *testing.T) {
	tests := map[string]struct {
		task Task
		want Container
	}{
		"container wins": {task: Task{Container: Container{Image: " img ", Arguments: "-e A=1"}, Execution: Execution{DockerCmd: "old -e B=2"}},
			want: Container{Image: "img", Arguments: "-e A=1"}},
		"legacy docker_cmd": {task: Task{Execution: Execution{DockerCmd: " nvidia/cuda:12  -e A=1 --ipc=host "}, Container: Container{SetupShellScript: "echo"}},
			want: Container{Image: "nvidia/cuda:12", Arguments: "-e A=1 --ipc=host", SetupShellScript: "echo"}},
		"image only docker_cmd": {task: Task{Execution: Execution{DockerCmd: "python:3.12"}}, want: Container{Image: "python:3.12"}},
		"nothing":               {task: Task{}, want: Container{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.DeepEqual(t, tc.task.EffectiveContainer(), tc.want)
		})
	}
}

func TestDecodeClaims(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	tests := map[string]struct {
		token   string
		want    TokenClaims
		wantErr string
	}{
		"full": {
			token: jwt(`{"identity":{"user":"u","company":"c","role":"user","user_name":"U","company_name":"C"},"iat":1700000000,` +
				`"exp":1702592000.5,"api_version":"2.34","feature_set":"basic","server_version":"2.3.0","env":"test"}`),
			want: TokenClaims{Identity: Identity{User: "u", Company: "c", Role: "user", UserName: "U", CompanyName: "C"},
				IssuedAt: time.Unix(1700000000, 0).UTC(), Expires: time.Unix(1702592000, 5e8).UTC(),
				APIVersion: "2.34", FeatureSet: "basic", ServerVersion: "2.3.0", Env: "test"},
		},
		"no exp never expires, old prod server": {token: jwt(`{"identity":{"user":"u"},"env":"prod"}`),
			want: TokenClaims{Identity: Identity{User: "u"}, APIVersion: "2.2", Env: "prod"}},
		"old server":          {token: jwt(`{"identity":{"user":"u"}}`), want: TokenClaims{Identity: Identity{User: "u"}, APIVersion: "2.1"}},
		"not a JWT":           {token: "abc", wantErr: "token is not a JWT"},
		"payload not base64":  {token: "a.!!!.c", wantErr: "not base64url"},
		"payload not claims":  {token: jwt(`[1]`), wantErr: "not a JSON object of claims"},
		"exp of a wrong type": {token: jwt(`{"exp":"soon"}`), wantErr: "not a JSON object of claims"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeClaims(tc.token)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.Assert(t, !strings.Contains(err.Error(), tc.token), "the token must not be quoted")
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }))
		})
	}
}
