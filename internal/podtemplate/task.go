package podtemplate

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// newTaskData reads the fields templates see from a task as tasks.get_by_id returns it.
func newTaskData(task map[string]any, projectName string) (taskData, error) {
	t := taskData{
		ID:          stringField(task, "id"),
		Name:        stringField(task, "name"),
		Project:     stringField(task, "project"),
		ProjectName: projectName,
		User:        stringField(task, "user"),
		Type:        stringField(task, "type"),
		Parent:      stringField(task, "parent"),
		Hyperparams: mapField(task, "hyperparams"),
		Container:   mapField(task, "container"),
		Execution:   mapField(task, "execution"),
	}
	if t.ID == "" {
		return t, errors.New(`task: "id" is missing`)
	}
	tags, _ := task["tags"].([]any)
	for _, tag := range tags {
		if s, ok := scalarString(tag); ok {
			t.Tags = append(t.Tags, s)
		}
	}
	return t, nil
}

func stringField(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// mapField returns m[key] as a map, never nil: a missing container is an empty one.
func mapField(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	return map[string]any{}
}

// envFromArguments returns the -e/--env NAME=VALUE pairs of a task's container arguments (a
// shell-quoted string, or a list of words). Other docker arguments mean nothing to a Pod and are
// skipped, as in the Python glue.
func envFromArguments(arguments any) ([]corev1.EnvVar, error) {
	var words []string
	switch a := arguments.(type) {
	case string:
		var err error
		if words, err = shellSplit(a); err != nil {
			return nil, fmt.Errorf("task container arguments: %w", err)
		}
	case []any:
		for _, w := range a {
			s, _ := scalarString(w)
			words = append(words, s)
		}
	}
	var env []corev1.EnvVar
	for i := 0; i < len(words); i++ {
		var pair string
		switch w := words[i]; {
		case w == "-e" || w == "--env":
			if i++; i == len(words) {
				return nil, fmt.Errorf("task container arguments: %s without a value", w)
			}
			pair = words[i]
		case strings.HasPrefix(w, "--env="):
			pair = strings.TrimPrefix(w, "--env=")
		default:
			continue
		}
		name, value, _ := strings.Cut(strings.TrimSpace(pair), "=")
		env = append(env, corev1.EnvVar{Name: name, Value: value})
	}
	return env, nil
}

// shellSplit splits s into words like Python's shlex.split, which ClearML uses for container
// arguments: whitespace separates words, quotes group, a backslash escapes outside single quotes.
func shellSplit(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				word.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case '\\':
			if i++; i == len(s) {
				return nil, errors.New("backslash at the end")
			}
			word.WriteByte(s[i])
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
