package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// apiError is an error answer: HTTP status == result_code, like the real server.
type apiError struct {
	code    int
	subcode int
	msg     string
	data    map[string]any
}

// newError builds the server's message format: default text, then " (extra)" when extra is
// set, then ": k=v, k2=v2" for the key/value pairs, which also become error_data.
func newError(code, subcode int, text, extra string, kv ...any) *apiError {
	e := &apiError{code: code, subcode: subcode, msg: text, data: map[string]any{}}
	if extra != "" {
		e.msg += " (" + extra + ")"
	}
	pairs := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		key := kv[i].(string)
		e.data[key] = kv[i+1]
		pairs = append(pairs, key+"="+formatValue(kv[i+1]))
	}
	if len(pairs) > 0 {
		e.msg += ": " + strings.Join(pairs, ", ")
	}
	return e
}

// formatValue renders a message value like the server: collections as "(a, b)".
func formatValue(v any) string {
	if list, ok := v.([]string); ok {
		return "(" + strings.Join(list, ", ") + ")"
	}
	if v == nil {
		return "None"
	}
	return fmt.Sprint(v)
}

// Default texts of the errors.conf entries the emulated endpoints return.
func errValidation(extra string, kv ...any) *apiError {
	return newError(400, 12, "Validation error", extra, kv...)
}

func errFieldRequired(field string) *apiError {
	return errValidation(fmt.Sprintf("error for field '%s'. field is required!", field))
}

func errInvalidTaskID(company, id string) *apiError {
	return newError(400, 101, "Invalid task id", "", "id", id, "company", company)
}

func errInvalidTaskStatus(extra string, kv ...any) *apiError {
	return newError(400, 110, "Invalid task status", extra, kv...)
}

func errInvalidQueueID(company, id string) *apiError {
	return newError(400, 701, "Invalid queue id", "", "id", id, "company", company)
}

func errTaskNotQueued(company, queue, task string) *apiError {
	return newError(400, 703, "Invalid queue id or task not in queue", "", "task", task, "id", queue, "company", company)
}

func errTaskAlreadyQueued(task string) *apiError {
	return newError(400, 706, "Failed adding task to queue since task is already queued", "", "task", task)
}

func errNotFound(name, version string) *apiError {
	return newError(404, 0, fmt.Sprintf("Unable to find endpoint for name %s and version %s", name, version), "")
}

func errUnauthorized(subcode int, extra string, kv ...any) *apiError {
	texts := map[int]string{
		10: "Unauthorized (bad authentication header type)",
		20: "Unauthorized (missing credentials)",
		21: "Unauthorized (malformed credentials)",
		22: "Unauthorized (invalid credentials)",
		30: "Invalid token",
	}
	return newError(http.StatusUnauthorized, subcode, texts[subcode], extra, kv...)
}
