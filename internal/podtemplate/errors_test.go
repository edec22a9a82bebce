package podtemplate

import (
	"cmp"
	"encoding/json"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

const errorsConfig = `
namespace: clearml
clearml: {credentialsSecret: creds, configSecret: conf}
basePodTemplate:
  labels: {team: red}
queues:
  healthy:
    templateOverrides:
      resources: {limits: {memory: 2Gi}}
`

// A queue with a bad template is reported once, at load time, by queue; the other queues serve.
func TestQueueErrors(t *testing.T) {
	for name, tc := range map[string]struct{ base, overrides, want string }{
		"quantity in the overrides": {
			overrides: `{resources: {limits: {memory: "12 GB"}}}`,
			want:      `queue "gpu": templateOverrides.resources.limits.memory: "12 GB" is not a valid quantity`,
		},
		"quantity in the base template": {
			base: `{resources: {requests: {nvidia.com/gpu: one}}}`,
			want: `queue "gpu": basePodTemplate.resources.requests[nvidia.com/gpu]: "one" is not a valid quantity`,
		},
		"every problem at once": {
			overrides: `{podSpec: {nodeSelectr: {a: b}, activeDeadlineSeconds: soon}, tolerations: [{key: a, tolerationSeconds: 1.5}], env: {A: "1"}}`,
			want: `queue "gpu": templateOverrides.env: {"A":"1"} must be a list
queue "gpu": templateOverrides.podSpec.activeDeadlineSeconds: "soon" must be an integer
queue "gpu": templateOverrides.podSpec.nodeSelectr: unknown field
queue "gpu": templateOverrides.tolerations[0].tolerationSeconds: 1.5 must be an integer`,
		},
		"template syntax": {
			overrides: `{labels: {who: "{{ .Task.Name "}}`,
			want:      `queue "gpu": template: templateOverrides.labels.who:1: unclosed action`,
		},
		"unknown filter": {
			overrides: `{env: [{name: A, value: "${CLEARML_TASK.name|upper}"}]}`,
			want:      `queue "gpu": templateOverrides.env[0].value: ${CLEARML_TASK.name|upper}: unknown filter "upper" (known: strip(chars), capitalize, lower, remove_newlines, raw)`,
		},
		"static label value": {
			overrides: `{labels: {team: "red team"}}`,
			want:      `queue "gpu": metadata.labels.team: "red team" is not a valid label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
		},
		"mount of a missing volume": {
			overrides: `{volumeMounts: [{name: data, mountPath: /data}]}`,
			want:      `queue "gpu": spec.containers[0].volumeMounts[0].name: "data" is not the name of a volume of the pod`,
		},
		"duplicate volume": {
			base:      `{volumes: [{name: dshm, emptyDir: {}}]}`,
			overrides: `{extraVolumes: [{name: dshm, emptyDir: {medium: Memory}}]}`,
			want:      `queue "gpu": spec.volumes[1].name: "dshm" is a duplicate volume name`,
		},
		"volume without a type": {
			overrides: `{volumes: [{name: data}], volumeMounts: [{name: data, mountPath: /data}]}`,
			want:      `queue "gpu": spec.volumes[0]: must have exactly one volume type (emptyDir, secret, ...), has 0`,
		},
		"file over clearml.conf": {
			overrides: `{fileMounts: [{name: clearml.conf, folderPath: /root, fileContent: x}]}`,
			want:      `queue "gpu": fileMounts[0].folderPath: "/root" would hide credentials the pod mounts`,
		},
		"file with a path for a name": {
			overrides: `{fileMounts: [{name: ../x, folderPath: relative, fileContent: x}]}`,
			want: `queue "gpu": fileMounts[0].folderPath: "relative" must be an absolute path
queue "gpu": fileMounts[0].name: "../x" is not a valid file name: may not contain '/'; must be one non-empty path segment`,
		},
		"requests above limits": {
			overrides: `{resources: {limits: {cpu: "1"}, requests: {cpu: "2"}}}`,
			want:      `queue "gpu": spec.containers[0].resources.requests.cpu: "2" is more than the limit 1`,
		},
		"removing the task's container": {
			overrides: `{podSpec: {containers: [{name: clearml-task, $patch: delete}]}}`,
			want:      `queue "gpu": podSpec.containers: the task's container was removed`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := parseConfig(t, errorsConfig)
			cfg.BasePodTemplate = fromYAML(t, tc.base)
			cfg.Queues["gpu"] = config.Queue{TemplateOverrides: fromYAML(t, tc.overrides)}
			b, err := NewBuilder(cfg)
			if err != nil {
				t.Fatal(err)
			}
			errs := b.QueueErrors()
			if _, ok := errs["healthy"]; ok != strings.HasPrefix(name, "quantity in the base") {
				t.Errorf("queue healthy: error %v", errs["healthy"])
			}
			got := errs["gpu"]
			if got == nil {
				t.Fatal("no error for queue gpu")
			}
			if diff := gocmp.Diff(tc.want, got.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if _, err := b.Build("gpu", input(loadTask(t, "training.json"))); err != got {
				t.Errorf("Build: %v, want the queue's error", err)
			}
		})
	}
}

const buildErrorsConfig = `
namespace: clearml
sessions: {portModeEnabled: false}
queues:
  gpu:
    templateOverrides:
      resources: {limits: {memory: "${CLEARML_TASK.hyperparams.properties.memory.value:1Gi}"}}
      env:
        - {name: KEY, value: "${CLEARML_TASK.hyperparams.properties.key.value}"}
        - {name: EPOCHS, value: "{{ .Task.Hyperparams.General.epochs.value }}"}
      volumes: [{name: '{{ dig "General" "volume" "value" "data" .Task.Hyperparams }}', emptyDir: {}}]
  deadline:
    templateOverrides:
      podSpec: {activeDeadlineSeconds: '{{ dig "General" "deadline" "value" "3600" .Task.Hyperparams }}'}
`

// Problems that depend on the task fail its build, named after the template string they come from
// or the field the task's value went into.
func TestBuildErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		queue string
		task  map[string]any
		want  string
	}{
		"rendered quantity": {
			task: task(`{"hyperparams": {"properties": {"memory": {"value": "12 GB"}}}}`),
			want: `queue "gpu": templateOverrides.resources.limits.memory: "12 GB" is not a valid quantity`,
		},
		"placeholder without a value": {
			task: task(`{"hyperparams": {"properties": null}}`),
			want: `queue "gpu": templateOverrides.env[0].value: ${CLEARML_TASK.hyperparams.properties.key.value} has no value for this task and no default (add one after ":")`,
		},
		"go template without a value": {
			task: task(`{"hyperparams": {"General": null}}`),
			want: `queue "gpu": template: templateOverrides.env[1].value:1:8: executing "templateOverrides.env[1].value" at <.Task.Hyperparams.General.epochs.value>: map has no entry for key "General"`,
		},
		"rendered name": {
			task: task(`{"hyperparams": {"General": {"volume": {"value": "My Data"}}}}`),
			want: `queue "gpu": templateOverrides.volumes[0].name: "My Data" is not a valid volume name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
		},
		"rendered integer": {
			queue: "deadline",
			task:  task(`{"hyperparams": {"General": {"deadline": {"value": "60"}}}}`),
			want:  `queue "deadline": templateOverrides.podSpec.activeDeadlineSeconds: "60" must be an integer`,
		},
		"task without an id": {
			task: map[string]any{"name": "x"},
			want: `queue "gpu": task: "id" is missing`,
		},
		"task id that makes no name": {
			task: task(`{"id": "Not_An_Id"}`),
			want: `queue "gpu": metadata.name: "clearml-id-Not_An_Id" made from the task id is not a valid name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
		},
		"image with white space": {
			task: task(`{"container": {"image": "my image"}}`),
			want: `queue "gpu": spec.containers[0].image: "my image" is not a valid image: it contains white space`,
		},
		"bad variable name in the task's arguments": {
			task: task(`{"container": {"arguments": "-e 1BAD=x"}}`),
			want: `queue "gpu": spec.containers[0].env[2].name: "1BAD" is not a valid environment variable name: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')`,
		},
		"unquoted arguments": {
			task: task(`{"container": {"arguments": "-e 'A=1"}}`),
			want: `queue "gpu": task container arguments: unterminated single quote`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBuilder(t, parseConfig(t, buildErrorsConfig))
			_, err := b.Build(cmp.Or(tc.queue, "gpu"), Input{Task: tc.task})
			if err == nil {
				t.Fatal("no error")
			}
			if diff := gocmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// task returns a task that builds on queue "gpu" of buildErrorsConfig, changed by a JSON object
// merged into it (a null removes a field).
func task(changes string) map[string]any {
	var c map[string]any
	if err := json.Unmarshal([]byte(changes), &c); err != nil {
		panic(err)
	}
	return mergeMaps(map[string]any{
		"id": "4f0c52a6e1b04c9e9c3c2b7d1e8a9f10",
		"hyperparams": map[string]any{
			"properties": map[string]any{"key": map[string]any{"value": "k"}},
			"General":    map[string]any{"epochs": map[string]any{"value": "1"}},
		},
	}, c)
}

func TestBuilderErrors(t *testing.T) {
	if _, err := NewBuilder(nil); err == nil {
		t.Error("NewBuilder(nil): no error")
	}
	cfg := parseConfig(t, errorsConfig)
	cfg.AgentName = "not a label value"
	if _, err := NewBuilder(cfg); err == nil || !strings.Contains(err.Error(), `agentName "not a label value" is not a valid label value`) {
		t.Errorf("NewBuilder with a bad agentName: %v", err)
	}
	b := newBuilder(t, parseConfig(t, errorsConfig))
	if _, err := b.Build("nope", Input{Task: task(`{}`)}); err == nil || err.Error() != `queue "nope" is not served by this glue` {
		t.Errorf("Build of an unknown queue: %v", err)
	}
	cfg = parseConfig(t, errorsConfig)
	cfg.Sessions.PortModeEnabled = true
	b = newBuilder(t, cfg)
	if _, err := b.Build("healthy", Input{Task: task(`{}`)}); err == nil || err.Error() != `queue "healthy": sessions port mode needs the task's pod number (Input.PodNumber)` {
		t.Errorf("Build in port mode without a pod number: %v", err)
	}
}
