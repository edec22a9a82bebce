package podtemplate

import (
	"encoding/json"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

// fuzzBase uses the task's values everywhere a template string can go.
const fuzzBase = `
labels: {name: "{{ .Task.Name }}", hp: "${CLEARML_TASK.hyperparams.p.v.value:x}"}
annotations: {name: "${CLEARML_TASK.name|raw}"}
env: [{name: NAME, value: "{{ .Task.Name }}"}, {name: HP, value: "${CLEARML_TASK.hyperparams.p.v.value|lower}"}]
resources: {limits: {memory: "${CLEARML_TASK.hyperparams.p.v.value:1Gi}"}}
volumes: [{name: data, emptyDir: {}}]
volumeMounts: [{name: data, mountPath: /data}]
fileMounts: [{name: task.txt, folderPath: /etc/task, fileContent: "{{ .Task.Name }}"}]
`

// FuzzBuild merges fuzzed overrides into fuzzBase and builds fuzzed tasks: it must never panic,
// and whatever it returns without an error must be an object the API server would take.
func FuzzBuild(f *testing.F) {
	seeds := []string{
		`{labels: {team: "{{ .Task.Name | lower }}"}, env: [{name: NAME, value: null}]}`,
		`{resources: {limits: {memory: "12 GB"}}}`,
		`{extraVolumes: [{name: dshm, emptyDir: {medium: Memory}}], extraVolumeMounts: [{name: dshm, mountPath: /dev/shm}]}`,
		`{podSpec: {containers: [{name: side, image: "{{ .Task.Name }}"}], volumes: [{name: data, $patch: delete}]}}`,
		`{container: {env: [{name: "${CLEARML_TASK.name}", value: x}]}}`,
		`{volumes: [{name: "{{ .Task.Name }}", emptyDir: {}}], fileMounts: [{name: "{{ .Task.Name }}", folderPath: /x, fileContent: y}]}`,
		`{tolerations: [{key: "${CLEARML_TASK.name}", operator: Exists}], nodeSelector: {"{{x}}": y}}`,
		`labels: null`,
		`[1, 2]`,
	}
	for i, s := range seeds {
		value := injections[i%len(injections)]
		f.Add(s, value, value, "-e A="+shellQuote(value))
	}
	var base map[string]any
	if err := yaml.Unmarshal([]byte(fuzzBase), &base); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, overrides, name, hyperparam, arguments string) {
		var o map[string]any
		if yaml.Unmarshal([]byte(overrides), &o) != nil {
			o = nil
		}
		cfg := config.Default()
		cfg.Namespace = "clearml"
		cfg.ClearML.CredentialsSecret = "creds"
		cfg.BasePodTemplate = deepCopy(base).(map[string]any)
		cfg.Queues = map[string]config.Queue{"fuzz": {TemplateOverrides: o}}
		if cfg.Validate() != nil {
			return
		}
		b, err := NewBuilder(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := b.Build("fuzz", Input{QueueID: "queue-id", Task: map[string]any{
			"id":          "4f0c52a6e1b04c9e9c3c2b7d1e8a9f10",
			"name":        name,
			"hyperparams": map[string]any{"p": map[string]any{"v": map[string]any{"value": hyperparam}}},
			"container":   map[string]any{"arguments": arguments},
		}})
		if err != nil {
			if !strings.HasPrefix(err.Error(), `queue "fuzz": `) {
				t.Fatalf("error does not name the queue: %v", err)
			}
			return
		}
		checkAcceptable(t, obj.(*batchv1.Job))
	})
}

// checkAcceptable checks a Job against the API's own rules, independently of validatePodTemplate.
func checkAcceptable(t *testing.T, job *batchv1.Job) {
	t.Helper()
	data, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	var back batchv1.Job
	if strict, err := sigsjson.UnmarshalStrict(data, &back); err != nil || len(strict) > 0 {
		t.Fatalf("does not decode back: %v %v", err, strict)
	}
	fail := func(what string, msgs []string) {
		if len(msgs) > 0 {
			t.Errorf("%s: %v", what, msgs)
		}
	}
	fail("name "+job.Name, content.IsDNS1123Label(job.Name))
	pod := job.Spec.Template
	for _, labels := range []map[string]string{job.Labels, pod.Labels, pod.Spec.NodeSelector} {
		for k, v := range labels {
			fail("label key "+k, content.IsLabelKey(k))
			fail("label value "+v, content.IsLabelValue(v))
		}
	}
	for k := range pod.Annotations {
		fail("annotation key "+k, content.IsLabelKey(strings.ToLower(k)))
	}
	if err := apivalidation.ValidateAnnotationsSize(pod.Annotations); err != nil {
		t.Error(err)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		fail("volume name "+v.Name, content.IsDNS1123Label(v.Name))
		if volumes[v.Name] {
			t.Errorf("volume %s twice", v.Name)
		}
		volumes[v.Name] = true
	}
	if len(pod.Spec.Containers) == 0 {
		t.Fatal("no container")
	}
	names := map[string]bool{}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		fail("container name "+c.Name, content.IsDNS1123Label(c.Name))
		if names[c.Name] || c.Image == "" || strings.TrimSpace(c.Image) != c.Image {
			t.Errorf("container %q: duplicate name or bad image %q", c.Name, c.Image)
		}
		names[c.Name] = true
		for _, e := range c.Env {
			fail("env name "+e.Name, validation.IsEnvVarName(e.Name))
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] || m.MountPath == "" {
				t.Errorf("mount %+v", m)
			}
		}
	}
}
