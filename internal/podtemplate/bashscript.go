package podtemplate

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
)

//go:embed prelude.sh
var preludeScript string

// containerScriptFields are the placeholders ClearML fills in a containerCustomBashScript, and
// what this glue puts there. Task data stays out of the script's text: the setup script comes
// from an environment variable, the task id is validated (it names the object) before it is
// inserted.
var containerScriptFields = map[string]string{
	// customBashScript, inserted as written (set below).
	"extra_bash_init_cmd": "",
	// The pin of the agent's version, as in the built-in script.
	"agent_install_args": "${CLEARML_AGENT_UPDATE_VERSION}",
	// The task's setup_shell_script.
	"extra_docker_bash_script":     `if [ -n "$` + setupScriptEnv + `" ]; then eval "$` + setupScriptEnv + `"; fi`,
	"default_execution_agent_args": "--full-monitoring --require-queue",
	"task_id":                      "", // per task
}

// containerScript is a parsed containerCustomBashScript: literal parts and placeholders, in
// Python str.format syntax as ClearML reads it ({{ and }} are literal braces).
type containerScript struct {
	parts []scriptPart
}

type scriptPart struct {
	text  string
	field string // a placeholder name, when text is empty
}

func compileContainerScript(text, customBashScript string) (*containerScript, error) {
	var cs containerScript
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			cs.parts = append(cs.parts, scriptPart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '{' && strings.HasPrefix(text[i:], "{{"):
			lit.WriteByte('{')
			i++
		case c == '}' && strings.HasPrefix(text[i:], "}}"):
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(text[i:], '}')
			if end < 0 {
				return nil, errors.New(`a "{" is not closed: write "{{" for a literal brace`)
			}
			name := text[i+1 : i+end]
			if _, ok := containerScriptFields[name]; !ok {
				known := slices.Sorted(func(yield func(string) bool) {
					for k := range containerScriptFields {
						if !yield("{" + k + "}") {
							return
						}
					}
				})
				return nil, fmt.Errorf("unknown placeholder {%s} (known: %s; write {{ and }} for literal braces)", name, strings.Join(known, ", "))
			}
			flush()
			if name == "extra_bash_init_cmd" {
				cs.parts = append(cs.parts, scriptPart{text: customBashScript})
			} else {
				cs.parts = append(cs.parts, scriptPart{field: name})
			}
			i += end
		case c == '}':
			return nil, errors.New(`a "}" is not opened: write "}}" for a literal brace`)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return &cs, nil
}

// format returns the script for one task: the glue's prelude, then the queue's script.
func (cs *containerScript) format(taskID string) string {
	var b strings.Builder
	b.WriteString(preludeScript)
	for _, p := range cs.parts {
		switch {
		case p.field == "task_id":
			b.WriteString(taskID)
		case p.field != "":
			b.WriteString(containerScriptFields[p.field])
		default:
			b.WriteString(p.text)
		}
	}
	return b.String()
}
