package clearml

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Time is a ClearML datetime. The server sends ISO-8601 with microseconds and an explicit
// offset ("2025-01-02T03:04:05.123000+00:00"); a value without offset is UTC.
type Time struct{ time.Time }

const (
	wireTimeLayout  = "2006-01-02T15:04:05.000000-07:00"
	naiveTimeLayout = "2006-01-02T15:04:05.999999999"
)

// UnmarshalJSON accepts null, "", RFC 3339 (any precision, "Z" or offset) and naive datetimes.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("datetime: %w", err)
	}
	if s == "" {
		*t = Time{}
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, naiveTimeLayout} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = Time{v.UTC()}
			return nil
		}
	}
	return fmt.Errorf("datetime %q is not ISO-8601", s)
}

// MarshalJSON writes the server's format, or null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(wireTimeLayout))
}

// Task is a ClearML task with the fields the glue reads (docs/clearml-protocol.md). A projection
// (only_fields) leaves the other fields at their zero values.
type Task struct {
	ID               string                           `json:"id"`
	Name             string                           `json:"name,omitempty"`
	Type             string                           `json:"type,omitempty"`
	Status           string                           `json:"status,omitempty"`
	StatusReason     string                           `json:"status_reason,omitempty"`
	StatusMessage    string                           `json:"status_message,omitempty"`
	StatusChanged    Time                             `json:"status_changed,omitzero"`
	Comment          string                           `json:"comment,omitempty"`
	User             string                           `json:"user,omitempty"`
	Company          string                           `json:"company,omitempty"`
	Project          string                           `json:"project,omitempty"`
	Parent           string                           `json:"parent,omitempty"`
	Created          Time                             `json:"created,omitzero"`
	Started          Time                             `json:"started,omitzero"`
	Completed        Time                             `json:"completed,omitzero"`
	LastUpdate       Time                             `json:"last_update,omitzero"`
	LastChange       Time                             `json:"last_change,omitzero"`
	LastChangedBy    string                           `json:"last_changed_by,omitempty"`
	LastWorker       string                           `json:"last_worker,omitempty"`
	LastWorkerReport Time                             `json:"last_worker_report,omitzero"`
	Execution        Execution                        `json:"execution,omitzero"`
	Container        Container                        `json:"container,omitzero"`
	Runtime          map[string]any                   `json:"runtime,omitempty"`
	Hyperparams      map[string]map[string]HyperParam `json:"hyperparams,omitempty"`
	Tags             []string                         `json:"tags,omitempty"`
	SystemTags       []string                         `json:"system_tags,omitempty"`
}

// Execution is the part of task.execution the glue uses.
type Execution struct {
	// Queue is the id of the queue the task was last enqueued to.
	Queue string `json:"queue,omitempty"`
	// DockerCmd is the pre-2.13 form of the container: "image arg1 arg2".
	DockerCmd string `json:"docker_cmd,omitempty"`
}

// Container is task.container. The server stores a flat string map (null values allowed,
// which decode as ""); these are its conventional keys.
type Container struct {
	Image string `json:"image,omitempty"`
	// Arguments is a single shell-quoted string of docker arguments.
	Arguments        string `json:"arguments,omitempty"`
	SetupShellScript string `json:"setup_shell_script,omitempty"`
}

// EffectiveContainer is the container the task asks for: Container when it names an image,
// otherwise the legacy execution.docker_cmd split into image and arguments.
func (t *Task) EffectiveContainer() Container {
	if strings.TrimSpace(t.Container.Image) != "" || strings.TrimSpace(t.Execution.DockerCmd) == "" {
		c := t.Container
		c.Image = strings.TrimSpace(c.Image)
		return c
	}
	image, args, _ := strings.Cut(strings.TrimSpace(t.Execution.DockerCmd), " ")
	return Container{Image: image, Arguments: strings.TrimSpace(args), SetupShellScript: t.Container.SetupShellScript}
}

// HyperParam is one task hyperparameter; the "properties" section holds user properties.
type HyperParam struct {
	Section     string `json:"section"`
	Name        string `json:"name"`
	Value       string `json:"value"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
}

// Queue is a ClearML execution queue.
type Queue struct {
	ID          string         `json:"id"`
	Name        string         `json:"name,omitempty"`
	DisplayName string         `json:"display_name,omitempty"`
	Company     string         `json:"company,omitempty"`
	Created     Time           `json:"created,omitzero"`
	LastUpdate  Time           `json:"last_update,omitzero"`
	Tags        []string       `json:"tags,omitempty"`
	SystemTags  []string       `json:"system_tags,omitempty"`
	Entries     []QueueEntry   `json:"entries,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

// QueueEntry is one task in a queue; index 0 of Queue.Entries is popped next.
type QueueEntry struct {
	Task  string `json:"task"`
	Added Time   `json:"added"`
}

// Identity is the user a session acts as.
type Identity struct {
	User        string `json:"user"`
	Company     string `json:"company"`
	Role        string `json:"role"`
	UserName    string `json:"user_name"`
	CompanyName string `json:"company_name"`
}
