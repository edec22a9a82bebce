package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// version is an API version such as 2.14.
type version struct{ major, minor int }

func (v version) less(o version) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

func (v version) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// wire is how meta shows a version: a string, or a float for clients below 2.1.
func (v version) wire(requested version) any {
	if requested.less(version{2, 1}) {
		return json.RawMessage(v.String())
	}
	return v.String()
}

func parseVersion(s string) (version, bool) {
	majorText, minorText, _ := strings.Cut(s, ".")
	major, err := strconv.Atoi(majorText)
	if err != nil {
		return version{}, false
	}
	minor := 0
	if minorText != "" {
		if minor, err = strconv.Atoi(minorText); err != nil {
			return version{}, false
		}
	}
	return version{major, minor}, true
}

// maxVersion is the API version of the emulated server (clearml-server 2.3.0).
var maxVersion = version{2, 34}

// pathPattern is the server's endpoint path expression (a version, then service.action).
var pathPattern = regexp.MustCompile(`^/?(v(\d+\.?\d+)/)?([a-zA-Z_]\w+\.[a-zA-Z_]\w+)/?$`)

// parsePath returns the endpoint name and requested version; no version means the max.
func parsePath(path string) (string, version, *apiError) {
	m := pathPattern.FindStringSubmatch(path)
	if m == nil {
		return "", maxVersion, newError(400, 0, "Invalid request path "+path, "")
	}
	if m[2] == "" {
		return m[3], maxVersion, nil
	}
	v, ok := parseVersion(m[2])
	if !ok {
		return m[3], maxVersion, newError(400, 2, "Request path has invalid version", "", "version", m[2])
	}
	return m[3], v, nil
}

// maxRequestBytes is the server's api.http.max_req_size.
const maxRequestBytes = 15 << 20

// loadBody reads the call data like the server: a JSON object (empty = {}) with the query
// string merged in, or, for application/json-lines, one object per line.
func loadBody(r *http.Request) (map[string]any, []map[string]any, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		return nil, nil, newError(400, 0, "Failed reading request body: "+err.Error(), "")
	}
	if len(body) > maxRequestBytes {
		return nil, nil, newError(413, 0, "Request entity too large", "")
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/json-lines" {
		batch, aerr := readJSONLines(body)
		return map[string]any{}, batch, aerr
	}
	data := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		var v any
		if err := decodeJSON(body, &v); err != nil {
			return nil, nil, newError(400, 0, "Failed to decode JSON object: "+err.Error(), "")
		}
		if obj, ok := v.(map[string]any); ok {
			data = obj
		} else if !falsy(v) {
			// The server takes a falsy body as {} (`body or {}`) and fails on anything else.
			return nil, nil, errValidation("request body must be a JSON object")
		}
	}
	mergeQuery(data, r.URL.Query())
	return data, nil, nil
}

// falsy is Python truthiness for decoded JSON values.
func falsy(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case json.Number:
		f, err := v.Float64()
		return err == nil && f == 0
	case int64: // numbers from the query string
		return v == 0
	case float64:
		return v == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

func readJSONLines(body []byte) ([]map[string]any, *apiError) {
	lines := strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // like str.splitlines: a final newline ends the last line
	}
	batch := make([]map[string]any, 0, len(lines))
	for i, line := range lines {
		var v any
		if err := decodeJSON([]byte(line), &v); err != nil {
			return nil, newError(400, 0, fmt.Sprintf("Failed to decode JSON object: %v in batch item #%d", err, i), "")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, newError(400, 0, "json lines must contain objects, found: "+pythonTypeName(v), "")
		}
		batch = append(batch, obj)
	}
	return batch, nil
}

func pythonTypeName(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case json.Number:
		return "int"
	case bool:
		return "bool"
	case nil:
		return "NoneType"
	}
	return "object"
}

// decodeJSON decodes exactly one JSON value, keeping numbers exact.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("extra data after the JSON value")
	}
	return nil
}

// mergeQuery applies query arguments like the server: "a.b" nests, digits become numbers,
// true/false become booleans, repeated keys or "key[]" become lists.
func mergeQuery(data map[string]any, query url.Values) {
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		values := query[k]
		var v any
		if len(values) > 1 || strings.HasSuffix(k, "[]") {
			list := make([]any, len(values))
			for i, s := range values {
				list[i] = queryValue(s)
			}
			v = list
		} else {
			v = queryValue(values[0])
		}
		path := strings.Split(strings.TrimRight(k, "[]"), ".")
		node := data
		for _, part := range path[:len(path)-1] {
			child, ok := node[part].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[part] = child
			}
			node = child
		}
		node[path[len(path)-1]] = v
	}
}

func queryValue(s string) any {
	if digits := strings.Replace(s, ".", "", 1); digits != "" && strings.Trim(digits, "0123456789") == "" {
		if !strings.Contains(s, ".") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	switch s {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	}
	return s
}

// decode maps the call data onto a request struct, the way the server's request models do: a
// missing or null required field is reported first, a wrong type is 400/12, unknown fields are
// ignored.
func decode[T any](c *call, required ...string) (T, *apiError) {
	var req T
	for _, f := range required {
		if c.data[f] == nil {
			return req, errFieldRequired(f)
		}
	}
	b, err := json.Marshal(c.data)
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return req, errValidation(fmt.Sprintf("error for field '%s'. value is wrong, expected type %s", typeErr.Field, typeErr.Type.Kind()))
	case err != nil:
		return req, errValidation(err.Error())
	}
	return req, nil
}

// stringList is a list field that also accepts a single string (tasks.get_all id/status).
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*l = many
	return nil
}

// wireTime is the server's datetime format: microseconds and an explicit UTC offset.
func wireTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }
