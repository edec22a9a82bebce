package clearml

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
)

// jwtPattern matches any JWT (header.payload.signature, base64url); every token starts with
// the encoding of `{"`. Matching the shape covers old and new session tokens alike.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// redacted replaces secrets in error text.
const redacted = "[REDACTED]"

// redactor removes the access key, the secret (also in their Basic form) and tokens from
// server-provided text before it enters an error: a proxy or a buggy server may echo a request.
type redactor struct{ literals []string }

func newRedactor(accessKey, secretKey string) *redactor {
	basic := base64.StdEncoding.EncodeToString([]byte(accessKey + ":" + secretKey))
	return &redactor{literals: []string{basic, secretKey, accessKey}}
}

func (r *redactor) text(s string) string {
	for _, l := range r.literals {
		if l != "" {
			s = strings.ReplaceAll(s, l, redacted)
		}
	}
	return jwtPattern.ReplaceAllString(s, redacted)
}

// scrub redacts the server-provided parts of errors made by decodeResponse, in place.
func (r *redactor) scrub(err error) error {
	var apiErr *APIError
	var invalid *invalidResponseError
	switch {
	case errors.As(err, &apiErr):
		apiErr.Msg = r.text(apiErr.Msg)
		for k, v := range apiErr.ErrorData {
			apiErr.ErrorData[k] = r.value(v)
		}
	case errors.As(err, &invalid):
		invalid.detail = r.text(invalid.detail)
	}
	return err
}

// value redacts the strings of a decoded JSON value.
func (r *redactor) value(v any) any {
	switch v := v.(type) {
	case string:
		return r.text(v)
	case []any:
		for i := range v {
			v[i] = r.value(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = r.value(v[k])
		}
	}
	return v
}
