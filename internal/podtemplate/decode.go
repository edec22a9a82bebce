package podtemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	sigsjson "sigs.k8s.io/json"
)

// fieldPath is a path into a JSON-like tree: string keys and int indexes.
type fieldPath []any

func (p fieldPath) child(key string) fieldPath { return append(p[:len(p):len(p)], key) }
func (p fieldPath) index(i int) fieldPath      { return append(p[:len(p):len(p)], i) }

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// String renders the path like Kubernetes does, but with plain map keys after a dot
// (resources.limits.memory, resources.limits[nvidia.com/gpu]).
func (p fieldPath) String() string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		case string:
			if !plainKey.MatchString(s) {
				fmt.Fprintf(&b, "[%s]", s)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

// lookup returns the node of tree at p, or nil.
func lookup(tree any, p fieldPath) any {
	for _, s := range p {
		switch s := s.(type) {
		case string:
			m, ok := tree.(map[string]any)
			if !ok {
				return nil
			}
			tree = m[s]
		case int:
			l, ok := tree.([]any)
			if !ok || s >= len(l) {
				return nil
			}
			tree = l[s]
		}
	}
	return tree
}

// fieldError is one problem at one place. Error renders it as `<where>: <value> <problem>`.
type fieldError struct {
	path fieldPath
	// where replaces path in messages when the problem is best named elsewhere, for example the
	// template string a bad value was rendered from.
	where    string
	value    any
	hasValue bool
	problem  string
}

func invalid(p fieldPath, value any, problem string) *fieldError {
	return &fieldError{path: p, value: value, hasValue: true, problem: problem}
}

func (e *fieldError) Error() string {
	var b strings.Builder
	where := e.where
	if where == "" {
		where = e.path.String()
	}
	if where != "" {
		b.WriteString(where)
		b.WriteString(": ")
	}
	if e.hasValue {
		b.WriteString(formatValue(e.value))
		b.WriteByte(' ')
	}
	b.WriteString(e.problem)
	return b.String()
}

func formatValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// joinErrors turns problems into one error, nil when there are none.
func joinErrors(prefix string, problems []*fieldError) error {
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = fmt.Errorf("%s%w", prefix, p)
	}
	return errors.Join(errs...)
}

// decodeStrict decodes a JSON-like tree into out (a pointer) the way the API server reads a request:
// case-sensitive field names, unknown fields rejected. When that fails, the tree is walked against
// out's type to name every bad field with its path and value; encoding/json's errors name neither
// the path of a bad quantity nor the value.
// p is where tree is, for messages.
func decodeStrict(p fieldPath, tree any, out any) []*fieldError {
	data, err := json.Marshal(tree)
	if err != nil {
		return []*fieldError{{problem: err.Error()}}
	}
	strict, err := sigsjson.UnmarshalStrict(data, out)
	if err == nil && len(strict) == 0 {
		return nil
	}
	if problems := locate(p, tree, reflect.TypeOf(out)); len(problems) > 0 {
		return problems
	}
	return []*fieldError{{problem: errors.Join(append(strict, err)...).Error()}}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	quantityType    = reflect.TypeFor[resource.Quantity]()
)

// locate returns the problems of decoding v into a value of type t.
func locate(p fieldPath, v any, t reflect.Type) []*fieldError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return decodeLeaf(p, v, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return []*fieldError{invalid(p, v, "must be an object")}
		}
		fields := jsonFields(t)
		var problems []*fieldError
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f, ok := fields[k]
			if !ok {
				problems = append(problems, &fieldError{path: p.child(k), problem: "unknown field"})
				continue
			}
			problems = append(problems, locate(p.child(k), m[k], f)...)
		}
		return problems
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return []*fieldError{invalid(p, v, "must be an object")}
		}
		var problems []*fieldError
		for _, k := range slices.Sorted(maps.Keys(m)) {
			problems = append(problems, locate(p.child(k), m[k], t.Elem())...)
		}
		return problems
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return decodeLeaf(p, v, t)
		}
		l, ok := v.([]any)
		if !ok {
			return []*fieldError{invalid(p, v, "must be a list")}
		}
		var problems []*fieldError
		for i, e := range l {
			problems = append(problems, locate(p.index(i), e, t.Elem())...)
		}
		return problems
	default:
		return decodeLeaf(p, v, t)
	}
}

// jsonFields maps the JSON names of t's fields, inlined structs included, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func decodeLeaf(p fieldPath, v any, t reflect.Type) []*fieldError {
	data, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(data, reflect.New(t).Interface())
	}
	if err == nil {
		return nil
	}
	switch {
	case t == quantityType:
		return []*fieldError{invalid(p, v, "is not a valid quantity")}
	case errors.As(err, new(*json.UnmarshalTypeError)):
		return []*fieldError{invalid(p, v, "must be "+kindName(t))}
	default:
		return []*fieldError{invalid(p, v, "is invalid: "+err.Error())}
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	default:
		return "a " + t.String()
	}
}
