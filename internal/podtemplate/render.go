package podtemplate

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// templateData is what a template string sees: {{ .Task.Name }}, {{ .Queue.Name }}, ...
type templateData struct {
	Task     taskData
	Queue    queueData
	WorkerID string
	User     map[string]any
	// rawTask is the task as the server returned it, for ${CLEARML_TASK.<path>}.
	rawTask map[string]any
}

type taskData struct {
	ID, Name, Project, ProjectName, User, Type, Parent string
	Tags                                               []string
	Hyperparams, Container, Execution                  map[string]any
}

type queueData struct{ ID, Name string }

// placeholderFunc is the template function a ${CLEARML_...} is rewritten to call.
const placeholderFunc = "clearmlPlaceholder"

// leaf is a compiled template string of a template tree.
type leaf struct {
	// src names where the string is written (basePodTemplate.labels.team), for messages.
	src  string
	text string
	tmpl *template.Template
}

func (l *leaf) execute(d *templateData) (string, error) {
	var b strings.Builder
	err := l.tmpl.Execute(&b, d)
	return b.String(), err
}

// compiler parses template strings. ClearML placeholders become calls of placeholderFunc with
// the index of the parsed placeholder, so both syntaxes are parsed once and executed in a single
// pass: what a value inserts is never parsed again.
type compiler struct {
	funcs        template.FuncMap
	placeholders []*placeholder
}

func newCompiler() *compiler {
	c := &compiler{funcs: sprig.TxtFuncMap()}
	// Rendering must depend on the task and the config only: no environment, no network.
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(c.funcs, name)
	}
	c.funcs[placeholderFunc] = func(d *templateData, i int) (string, error) {
		return c.placeholders[i].resolve(d)
	}
	return c
}

// isTemplate says whether s needs rendering; any other string is used as written.
func isTemplate(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, placeholderStart)
}

// compile parses text; src names it in messages. braces maps extra {name} placeholders to Go
// actions (the documented placeholders of customWorkerIdTemplate).
func (c *compiler) compile(src, text string, braces map[string]string) (*leaf, error) {
	goText, err := c.rewrite(text, braces)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	t, err := template.New(src).Option("missingkey=error").Funcs(c.funcs).Parse(goText)
	if err != nil {
		return nil, err
	}
	return &leaf{src: src, text: text, tmpl: t}, nil
}

// rewrite turns ClearML placeholders (and braces) outside Go actions into Go actions.
func (c *compiler) rewrite(text string, braces map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(text); {
		rest := text[i:]
		switch {
		case strings.HasPrefix(rest, "{{"):
			end := strings.Index(rest, "}}")
			if end < 0 {
				end = len(rest) - 2 // unterminated: the parser reports it
			}
			b.WriteString(rest[:end+2])
			i += end + 2
			continue
		case strings.HasPrefix(rest, placeholderStart):
			if end := strings.IndexByte(rest, '}'); end >= 0 {
				ph, known, err := parsePlaceholder(rest[len(placeholderStart):end])
				if err != nil {
					return "", err
				}
				if known {
					fmt.Fprintf(&b, "{{%s $ %d}}", placeholderFunc, len(c.placeholders))
					c.placeholders = append(c.placeholders, ph)
					i += end + 1
					continue
				}
			}
		case rest[0] == '{' && braces != nil:
			if end := strings.IndexByte(rest, '}'); end >= 0 {
				if action, ok := braces[rest[1:end]]; ok {
					b.WriteString(action)
					i += end + 1
					continue
				}
			}
		}
		b.WriteByte(text[i])
		i++
	}
	return b.String(), nil
}

// render returns a copy of tree with every leaf replaced by exec's string.
func render(tree any, exec func(*leaf) (string, error)) (any, []*fieldError) {
	switch t := tree.(type) {
	case *leaf:
		s, err := exec(t)
		if err == nil {
			return s, nil
		}
		if pe := (*placeholderError)(nil); errors.As(err, &pe) {
			return nil, []*fieldError{{where: t.src, problem: pe.Error()}}
		}
		return nil, []*fieldError{{problem: err.Error()}}
	case map[string]any:
		out := make(map[string]any, len(t))
		var problems []*fieldError
		for k, v := range t {
			var errs []*fieldError
			out[k], errs = render(v, exec)
			problems = append(problems, errs...)
		}
		return out, problems
	case []any:
		out := make([]any, len(t))
		var problems []*fieldError
		for i, v := range t {
			var errs []*fieldError
			out[i], errs = render(v, exec)
			problems = append(problems, errs...)
		}
		return out, problems
	default:
		return tree, nil
	}
}
