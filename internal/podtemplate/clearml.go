package podtemplate

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// placeholderStart opens a ClearML string template: ${CLEARML_<variable>[:default][|filter...]}.
const placeholderStart = "${CLEARML_"

// Variables of ClearML string templates. CONFIG, USER_VAULTS and PROVIDERS_INFO are ClearML's too
// but this glue has no data for them, so only their defaults apply.
var (
	singleVariables = map[string]bool{
		"QUEUE_NAME": true, "QUEUE_ID": true, "WORKER_ID": true, "PROJECT_NAME": true, "PROJECT_ID": true,
	}
	pathVariables = map[string]bool{
		"TASK": true, "USER": true, "CONFIG": true, "USER_VAULTS": true, "PROVIDERS_INFO": true,
	}
)

// Filters of ClearML string templates.
const (
	filterStrip          = "strip"
	filterCapitalize     = "capitalize"
	filterLower          = "lower"
	filterRemoveNewlines = "remove_newlines"
	filterRaw            = "raw"
)

var filterRE = regexp.MustCompile(`^([a-z_]+)(?:\((.*)\))?$`)

type filter struct{ op, arg string }

// placeholder is one parsed ${CLEARML_...}.
type placeholder struct {
	text       string
	variable   string
	path       []string
	def        string
	hasDefault bool
	filters    []filter
	// raw keeps newlines, which are otherwise removed from the value.
	raw bool
}

// placeholderError is a placeholder that cannot be resolved for a task.
type placeholderError struct{ text, problem string }

func (e *placeholderError) Error() string { return e.text + " " + e.problem }

// parsePlaceholder parses the text between "${CLEARML_" and "}". known is false when the variable is
// not one of ClearML's: the text then stays as written, as in ClearML, so a shell's
// ${CLEARML_API_HOST} survives.
func parsePlaceholder(body string) (ph *placeholder, known bool, err error) {
	text := placeholderStart + body + "}"
	parts := strings.Split(body, "|")
	variable, def, hasDefault := strings.Cut(parts[0], ":")
	root, rest, hasPath := strings.Cut(variable, ".")
	ph = &placeholder{text: text, variable: root, def: def, hasDefault: hasDefault}
	switch {
	case singleVariables[root] && hasPath:
		return nil, true, fmt.Errorf("%s: %s takes no path", text, root)
	case singleVariables[root]:
	case pathVariables[root] && (!hasPath || rest == ""):
		return nil, true, fmt.Errorf("%s: %s needs a path, for example %s.name", text, root, root)
	case pathVariables[root]:
		ph.path = strings.Split(rest, ".")
	default:
		return nil, false, nil
	}
	for _, f := range parts[1:] {
		m := filterRE.FindStringSubmatch(f)
		if m == nil {
			return nil, true, fmt.Errorf("%s: %q is not a filter", text, f)
		}
		switch m[1] {
		case filterRaw:
			ph.raw = true
		case filterStrip, filterCapitalize, filterLower, filterRemoveNewlines:
			ph.filters = append(ph.filters, filter{op: m[1], arg: m[2]})
		default:
			return nil, true, fmt.Errorf("%s: unknown filter %q (known: strip(chars), capitalize, lower, remove_newlines, raw)", text, m[1])
		}
	}
	return ph, true, nil
}

// resolve returns the placeholder's value for one task: the variable, else the default, with
// newlines removed unless raw, then the filters in order.
func (p *placeholder) resolve(d *templateData) (string, error) {
	v, ok := p.lookup(d)
	switch {
	case ok:
	case p.hasDefault:
		v = p.def
	case p.variable == "PROJECT_NAME" || p.variable == "PROJECT_ID":
		v = "unknown" // what ClearML resolves them to when the project is not known
	default:
		return "", &placeholderError{p.text, `has no value for this task and no default (add one after ":")`}
	}
	if !p.raw {
		v = removeNewlines(v)
	}
	for _, f := range p.filters {
		switch f.op {
		case filterStrip:
			if f.arg == "" {
				v = strings.TrimSpace(v)
			} else {
				v = strings.Trim(v, f.arg)
			}
		case filterCapitalize:
			v = capitalize(v)
		case filterLower:
			v = strings.ToLower(v)
		case filterRemoveNewlines:
			v = removeNewlines(v)
		}
	}
	return v, nil
}

func (p *placeholder) lookup(d *templateData) (string, bool) {
	var cur any
	switch p.variable {
	case "QUEUE_NAME":
		cur = d.Queue.Name
	case "QUEUE_ID":
		cur = d.Queue.ID
	case "WORKER_ID":
		cur = d.WorkerID
	case "PROJECT_NAME":
		cur = d.Task.ProjectName
	case "PROJECT_ID":
		cur = d.Task.Project
	case "TASK":
		cur = d.rawTask
	case "USER":
		cur = d.User
	}
	if s, ok := cur.(string); ok && p.path == nil {
		return s, s != ""
	}
	for _, k := range p.path {
		m, _ := cur.(map[string]any)
		cur = m[k]
	}
	if s, ok := scalarString(cur); ok {
		return s, true
	}
	list, ok := cur.([]any)
	if !ok {
		return "", false
	}
	items := make([]string, len(list))
	for i, e := range list {
		if items[i], ok = scalarString(e); !ok {
			return "", false
		}
	}
	return strings.Join(items, ","), true
}

// scalarString formats a JSON scalar as ClearML does.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	default:
		return "", false
	}
}

var newlines = strings.NewReplacer("\r", "", "\n", "")

func removeNewlines(s string) string { return newlines.Replace(s) }

// capitalize upper-cases the first letter and lower-cases the rest, like Python's str.capitalize.
func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + strings.ToLower(s[size:])
}
