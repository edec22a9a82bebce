package clearml

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ErrInvalidResponse is wrapped by errors for responses that are not a ClearML envelope
// (a proxy's HTML page, a truncated body, `data: null`, data of the wrong shape).
var ErrInvalidResponse = errors.New("invalid ClearML response")

// APIError is a ClearML call that the server (or a proxy in front of it) refused.
type APIError struct {
	HTTPStatus int
	ResultCode int
	Subcode    int
	Msg        string
	ErrorData  map[string]any
	Endpoint   string
}

func (e *APIError) Error() string {
	code := fmt.Sprintf("%d/%d", e.ResultCode, e.Subcode)
	if e.HTTPStatus != e.ResultCode {
		code = fmt.Sprintf("HTTP %d, %s", e.HTTPStatus, code)
	}
	return fmt.Sprintf("clearml: %s: %s: %s", e.Endpoint, code, e.Msg)
}

// IsSubcode reports whether err is an *APIError with this result code and subcode,
// e.g. IsSubcode(err, 400, 701) for "invalid queue id".
func IsSubcode(err error, code, subcode int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.ResultCode == code && apiErr.Subcode == subcode
}

// IsInvalidTaskID reports whether err is the server's "Invalid task id" (400/101): the task
// does not exist in the caller's company (tasks.get_by_id, tasks.enqueue, tasks.stop, ...).
// tasks.started answers an unknown task with the generic 400/10 instead.
func IsInvalidTaskID(err error) bool { return IsSubcode(err, 400, 101) }

// IsInvalidQueueID reports whether err is "Invalid queue id" (400/701): no such queue.
func IsInvalidQueueID(err error) bool { return IsSubcode(err, 400, 701) }

// IsInvalidProjectID reports whether err is "Invalid project id" (400/401): no such project.
func IsInvalidProjectID(err error) bool { return IsSubcode(err, 400, 401) }

// IsInvalidUserID reports whether err is "Invalid user id" (400/301): no such user in the
// caller's company.
func IsInvalidUserID(err error) bool { return IsSubcode(err, 400, 301) }

// envelope is the shape of every ClearML response (docs/clearml-protocol.md, "Transport"). Only the fields the
// client acts on are decoded; a missing result_code means the body is not an envelope.
type envelope struct {
	Meta *struct {
		ResultCode    *int           `json:"result_code"`
		ResultSubcode int            `json:"result_subcode"`
		ResultMsg     string         `json:"result_msg"`
		ErrorData     map[string]any `json:"error_data"`
	} `json:"meta"`
	Data json.RawMessage `json:"data"`
}

// maxSnippet bounds how much of a foreign body ends up in an error message.
const maxSnippet = 256

// decodeResponse turns one HTTP response into nil, an *APIError or an ErrInvalidResponse
// error, and decodes data into out when out is not nil.
func decodeResponse(endpoint string, httpStatus int, body []byte, out any) error {
	httpOK := httpStatus >= 200 && httpStatus <= 299
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Meta == nil || env.Meta.ResultCode == nil {
		if !httpOK {
			// Like the Python client: a non-envelope error body becomes {code: HTTP status, subcode: 0}.
			msg := snippet(body)
			if msg == "" {
				msg = http.StatusText(httpStatus)
			}
			return &APIError{HTTPStatus: httpStatus, ResultCode: httpStatus, Msg: msg, Endpoint: endpoint}
		}
		return &invalidResponseError{endpoint: endpoint,
			detail: fmt.Sprintf("HTTP %d with a body that is not a ClearML envelope: %q", httpStatus, snippet(body))}
	}
	if code := *env.Meta.ResultCode; code != http.StatusOK || !httpOK {
		return &APIError{
			HTTPStatus: httpStatus,
			ResultCode: code,
			Subcode:    env.Meta.ResultSubcode,
			Msg:        env.Meta.ResultMsg,
			ErrorData:  env.Meta.ErrorData,
			Endpoint:   endpoint,
		}
	}
	if out == nil {
		return nil
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return &invalidResponseError{endpoint: endpoint, detail: "data is null"}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return &invalidResponseError{endpoint: endpoint, detail: "decoding data: " + err.Error()}
	}
	return nil
}

// invalidResponseError wraps ErrInvalidResponse with what was wrong.
type invalidResponseError struct {
	endpoint string
	detail   string
}

func (e *invalidResponseError) Error() string {
	return "clearml: " + e.endpoint + ": " + ErrInvalidResponse.Error() + ": " + e.detail
}
func (e *invalidResponseError) Unwrap() error { return ErrInvalidResponse }

// snippet is the start of a foreign body, cut on a rune boundary, for error messages.
func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) <= maxSnippet {
		return strings.ToValidUTF8(s, "?")
	}
	cut := maxSnippet
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "?") + "…"
}
