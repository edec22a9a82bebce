package podtemplate

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

func fromYAML(t *testing.T, text string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Each merge rule has a case that fails without it.
func TestMergeTemplates(t *testing.T) {
	for name, tc := range map[string]struct{ base, override, want string }{
		"maps deep-merge": {
			base:     `{labels: {team: red, tier: gpu}, resources: {limits: {memory: 1Gi}}}`,
			override: `{labels: {team: blue}, resources: {requests: {cpu: "1"}}}`,
			want:     `{labels: {team: blue, tier: gpu}, resources: {limits: {memory: 1Gi}, requests: {cpu: "1"}}}`,
		},
		"override wins for scalars": {
			base:     `{schedulerName: a, priorityClassName: low}`,
			override: `{schedulerName: b}`,
			want:     `{schedulerName: b, priorityClassName: low}`,
		},
		"explicit null removes a key": {
			base:     `{labels: {team: red}, resources: {limits: {memory: 1Gi, cpu: "2"}}, nodeSelector: {a: b}}`,
			override: `{labels: null, resources: {limits: {memory: null}}, nodeSelector: {a: null}}`,
			want:     `{resources: {limits: {cpu: "2"}}, nodeSelector: {}}`,
		},
		"nulls in the base mean absent": {
			base:     `{labels: {team: null, tier: gpu}, schedulerName: null}`,
			override: `{}`,
			want:     `{labels: {tier: gpu}}`,
		},
		"env merges by name, base order kept": {
			base:     `{env: [{name: A, value: "1"}, {name: B, value: "2"}]}`,
			override: `{env: [{name: C, value: "3"}, {name: A, valueFrom: {secretKeyRef: {name: s, key: k}}, value: null}]}`,
			want:     `{env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}, {name: B, value: "2"}, {name: C, value: "3"}]}`,
		},
		"volumes merge by name": {
			base:     `{volumes: [{name: data, emptyDir: {}}, {name: cache, emptyDir: {}}]}`,
			override: `{volumes: [{name: data, emptyDir: null, nfs: {server: nas, path: /x}}]}`,
			want:     `{volumes: [{name: data, nfs: {server: nas, path: /x}}, {name: cache, emptyDir: {}}]}`,
		},
		"volumeMounts merge by name": {
			base:     `{volumeMounts: [{name: data, mountPath: /data}]}`,
			override: `{volumeMounts: [{name: data, readOnly: true}, {name: more, mountPath: /more}]}`,
			want:     `{volumeMounts: [{name: data, mountPath: /data, readOnly: true}, {name: more, mountPath: /more}]}`,
		},
		"initContainers merge by name, and their env and ports too": {
			base:     `{initContainers: [{name: init, image: busybox, env: [{name: A, value: "1"}], ports: [{name: http, containerPort: 80}]}]}`,
			override: `{initContainers: [{name: init, env: [{name: B, value: "2"}], ports: [{name: http, containerPort: 8080}]}]}`,
			want:     `{initContainers: [{name: init, image: busybox, env: [{name: A, value: "1"}, {name: B, value: "2"}], ports: [{name: http, containerPort: 8080}]}]}`,
		},
		"elements without a name are appended": {
			base:     `{initContainers: [{name: a, ports: [{containerPort: 80}]}]}`,
			override: `{initContainers: [{name: a, ports: [{containerPort: 81}]}]}`,
			want:     `{initContainers: [{name: a, ports: [{containerPort: 80}, {containerPort: 81}]}]}`,
		},
		"extraVolumes and extraVolumeMounts append": {
			base:     `{extraVolumes: [{name: a, emptyDir: {}}], extraVolumeMounts: [{name: a, mountPath: /a}]}`,
			override: `{extraVolumes: [{name: a, emptyDir: {}}], extraVolumeMounts: [{name: a, mountPath: /b}]}`,
			want:     `{extraVolumes: [{name: a, emptyDir: {}}, {name: a, emptyDir: {}}], extraVolumeMounts: [{name: a, mountPath: /a}, {name: a, mountPath: /b}]}`,
		},
		"other lists are replaced": {
			base:     `{tolerations: [{key: a, operator: Exists}], hostAliases: [{ip: 1.1.1.1, hostnames: [a]}], fileMounts: [{name: a, folderPath: /a, fileContent: x}]}`,
			override: `{tolerations: [{key: b, operator: Exists}], hostAliases: [{ip: 2.2.2.2, hostnames: [b]}], fileMounts: [{name: b, folderPath: /b, fileContent: y}]}`,
			want:     `{tolerations: [{key: b, operator: Exists}], hostAliases: [{ip: 2.2.2.2, hostnames: [b]}], fileMounts: [{name: b, folderPath: /b, fileContent: y}]}`,
		},
		"podSpec merges strategically": {
			base:     `{podSpec: {containers: [{name: side, image: a, args: [x]}], tolerations: [{key: a}], volumes: [{name: v1, emptyDir: {}}]}}`,
			override: `{podSpec: {containers: [{name: side, image: b}], tolerations: [{key: b}], volumes: [{name: v1, $patch: delete}, {name: v2, emptyDir: {}}]}}`,
			want:     `{podSpec: {containers: [{name: side, image: b, args: [x]}], tolerations: [{key: b}], volumes: [{name: v2, emptyDir: {}}]}}`,
		},
		"container merges strategically": {
			base:     `{container: {ports: [{containerPort: 80, name: a}], env: [{name: A, value: "1"}], args: [x]}}`,
			override: `{container: {ports: [{containerPort: 80, name: b}], env: [{name: B, value: "2"}], args: [z]}}`,
			want:     `{container: {ports: [{containerPort: 80, name: b}], env: [{name: B, value: "2"}, {name: A, value: "1"}], args: [z]}}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			base, override := fromYAML(t, tc.base), fromYAML(t, tc.override)
			baseCopy, overrideCopy := deepCopy(base), deepCopy(override)
			got, err := mergeTemplates(base, override)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fromYAML(t, tc.want), got); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
			if !cmp.Equal(baseCopy, any(base)) || !cmp.Equal(overrideCopy, any(override)) {
				t.Error("merging changed its inputs")
			}
		})
	}
}

func TestTemplateKeysCoverConfig(t *testing.T) {
	var names []string
	for _, k := range templateKeys {
		names = append(names, k.name)
	}
	if diff := cmp.Diff(config.TemplateKeys, names); diff != "" {
		t.Errorf("templateKeys differ from config.TemplateKeys (-config +here):\n%s", diff)
	}
}

func TestAssemble(t *testing.T) {
	merged := fromYAML(t, `
labels: {l: v}
annotations: {a: v}
initContainers: [{name: init, image: busybox}]
schedulerName: sched
volumes: [{name: v1, emptyDir: {}}]
extraVolumes: [{name: v2, emptyDir: {}}]
volumeMounts: [{name: v1, mountPath: /v1}]
extraVolumeMounts: [{name: v2, mountPath: /v2}]
env: [{name: E, value: "1"}]
resources: {limits: {memory: 1Gi}}
priorityClassName: prio
nodeSelector: {n: v}
tolerations: [{key: t, operator: Exists}]
affinity: {nodeAffinity: {}}
podSecurityContext: {runAsUser: 1}
containerSecurityContext: {runAsUser: 2}
hostAliases: [{ip: 1.1.1.1, hostnames: [h]}]
fileMounts: [{name: f, folderPath: /f, fileContent: c}]
container: {workingDir: /w, env: [{name: E, value: "2"}]}
podSpec: {priorityClassName: raw-wins, containers: [{name: aaa-sidecar, image: x}]}
`)
	got, err := assemble(merged)
	if err != nil {
		t.Fatal(err)
	}
	want := fromYAML(t, `
metadata: {labels: {l: v}, annotations: {a: v}}
spec:
  initContainers: [{name: init, image: busybox}]
  schedulerName: sched
  volumes: [{name: v1, emptyDir: {}}, {name: v2, emptyDir: {}}]
  priorityClassName: raw-wins
  nodeSelector: {n: v}
  tolerations: [{key: t, operator: Exists}]
  affinity: {nodeAffinity: {}}
  securityContext: {runAsUser: 1}
  hostAliases: [{ip: 1.1.1.1, hostnames: [h]}]
  containers:
  - name: clearml-task
    workingDir: /w
    env: [{name: E, value: "2"}]
    resources: {limits: {memory: 1Gi}}
    securityContext: {runAsUser: 2}
    volumeMounts: [{name: v1, mountPath: /v1}, {name: v2, mountPath: /v2}]
  - {name: aaa-sidecar, image: x}
`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("assembled (-want +got):\n%s", diff)
	}
}

func TestAssembleRejectsRemovingTheTaskContainer(t *testing.T) {
	_, err := assemble(fromYAML(t, `{podSpec: {containers: [{name: clearml-task, $patch: delete}]}}`))
	if want := "podSpec.containers: the task's container was removed"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestNamedListsAreTheDocumentedOnes(t *testing.T) {
	var got []string
	for k := range namedLists {
		got = append(got, k)
	}
	slices.Sort(got)
	if want := []string{"env", "initContainers", "ports", "volumeMounts", "volumes"}; !slices.Equal(want, got) {
		t.Errorf("named lists %v, documented %v", got, want)
	}
}
