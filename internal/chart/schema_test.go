package chart

import (
	"path/filepath"
	"strings"
	"testing"
)

const schemaRefusal = "values don't meet the specifications of the schema"

// TestSchemaRefusesBadValues: each bad values file fails the install through values.schema.json,
// and the message names the offending key (as a JSON pointer, plus the key itself for unknown or
// malformed names).
func TestSchemaRefusesBadValues(t *testing.T) {
	tests := []struct {
		name, values string
		want         []string
	}{
		{"negative global maxPods", `agentk8sglue: {maxPods: -1}`,
			[]string{"/agentk8sglue/maxPods", "minimum"}},
		{"negative queue maxPods", `agentk8sglue: {queues: {gpu-a100: {queueSettings: {maxPods: -2}}}}`,
			[]string{"/agentk8sglue/queues/gpu-a100/queueSettings/maxPods", "minimum"}},
		{"negative maxResources", `agentk8sglue: {monitoredResources: {maxResources: -1}}`,
			[]string{"/agentk8sglue/monitoredResources/maxResources", "minimum"}},
		{"maxResources not a quantity", `agentk8sglue: {monitoredResources: {maxResources: "lots"}}`,
			[]string{"/agentk8sglue/monitoredResources/maxResources", "does not match pattern"}},
		{"taskAsJob not a boolean", `agentk8sglue: {taskAsJob: "yes"}`,
			[]string{"/agentk8sglue/taskAsJob", "want null or boolean"}},
		{"negative image pull grace", `agentk8sglue: {imagePull: {backOffGraceSeconds: -5}}`,
			[]string{"/agentk8sglue/imagePull/backOffGraceSeconds", "minimum"}},
		{"negative deletion delay", `agentk8sglue: {completedPodDeletionDelayMinutes: -1}`,
			[]string{"/agentk8sglue/completedPodDeletionDelayMinutes", "minimum"}},
		{"negative replicas", `agentk8sglue: {replicaCount: -1}`,
			[]string{"/agentk8sglue/replicaCount", "minimum"}},
		{"zero poll interval", `agentk8sglue: {pollIntervalSeconds: 0}`,
			[]string{"/agentk8sglue/pollIntervalSeconds", "minimum"}},
		{"unknown key in a queue entry", `agentk8sglue: {queues: {gpu-a100: {maxPods: 3}}}`,
			[]string{"/agentk8sglue/queues/gpu-a100", "'maxPods'"}},
		{"unknown key in queueSettings", `agentk8sglue: {queues: {gpu-a100: {queueSettings: {maxpods: 3}}}}`,
			[]string{"/agentk8sglue/queues/gpu-a100/queueSettings", "'maxpods'"}},
		{"unknown key in monitoredResources", `agentk8sglue: {monitoredResources: {maxResource: 4}}`,
			[]string{"/agentk8sglue/monitoredResources", "'maxResource'"}},
		{"unknown key in templateOverrides", `agentk8sglue: {queues: {gpu-a100: {templateOverrides: {nodeSelectors: {a: b}}}}}`,
			[]string{"/agentk8sglue/queues/gpu-a100/templateOverrides", "'nodeSelectors'"}},
		{"unknown key in basePodTemplate", `agentk8sglue: {basePodTemplate: {tolerationz: []}}`,
			[]string{"/agentk8sglue/basePodTemplate", "'tolerationz'"}},
		{"null queue entry", "agentk8sglue:\n  queues:\n    gpu-a100:\n",
			[]string{"/agentk8sglue/queues/gpu-a100", "got null, want object"}},
		{"replicaCount not a number", `agentk8sglue: {replicaCount: two}`,
			[]string{"/agentk8sglue/replicaCount", "want integer"}},
		{"priority not a number", `agentk8sglue: {queues: {gpu-a100: {priority: high}}}`,
			[]string{"/agentk8sglue/queues/gpu-a100/priority", "want integer"}},
		{"unknown taskKind", `agentk8sglue: {taskKind: CronJob}`,
			[]string{"/agentk8sglue/taskKind", "'Job', 'Pod'"}},
		{"label value not a string", `agentk8sglue: {basePodTemplate: {labels: {gpu: true}}}`,
			[]string{"/agentk8sglue/basePodTemplate/labels/gpu", "want string"}},
		{"top-level typo", `agentk8sglu: {queue: gpu}`,
			[]string{"'agentk8sglu'", "not allowed"}},
		{"agentk8sglue typo", `agentk8sglue: {queus: {gpu-a100: {}}}`,
			[]string{"/agentk8sglue", "'queus'"}},
		{"leaderElection not a boolean", `agentk8sglue: {leaderElection: {enabled: "yes"}}`,
			[]string{"/agentk8sglue/leaderElection/enabled", "want boolean"}},
		{"unknown log level", `agentk8sglue: {logLevel: verbose}`,
			[]string{"/agentk8sglue/logLevel", "'debug', 'info', 'warn', 'error'"}},
		{"negative client rate", `agentk8sglue: {kubeApi: {qps: -5}}`,
			[]string{"/agentk8sglue/kubeApi/qps", "minimum"}},
		{"API URL without scheme", `agentk8sglue: {apiServerUrlReference: api.clear.ml}`,
			[]string{"/agentk8sglue/apiServerUrlReference", "does not match pattern"}},
		{"session port out of range", `sessions: {startingPort: 70000}`,
			[]string{"/sessions/startingPort", "maximum"}},
		{"unknown session Service type", `sessions: {svcType: Ingress}`,
			[]string{"/sessions/svcType", "'NodePort', 'ClusterIP', 'LoadBalancer'"}},
		{"access key not a string", `clearml: {agentk8sglueKey: 12345}`,
			[]string{"/clearml/agentk8sglueKey", "want string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(RenderOptions{
				ChartDir:    chartDir,
				ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml"), writeValues(t, tt.values)},
			})
			if err == nil {
				t.Fatal("rendered, want a schema error")
			}
			for _, w := range append([]string{schemaRefusal}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestRenderFailsWithClearMessage: what the schema cannot express fails the render with a
// message naming the values keys to fix.
func TestRenderFailsWithClearMessage(t *testing.T) {
	tests := []struct {
		name  string
		files []string // nil means the default ci file
		set   []string
		kube  string
		want  []string
	}{
		{name: "replicas without leader election", set: []string{"agentk8sglue.replicaCount=2"},
			want: []string{"agentk8sglue.replicaCount", "agentk8sglue.leaderElection.enabled"}},
		// No values file at all: the chart's defaults hold no credentials.
		{name: "no credentials", files: []string{},
			want: []string{"clearml.agentk8sglueKey", "clearml.agentk8sglueSecret", "clearml.existingAgentk8sglueSecret"}},
		{name: "registry credentials without password", set: []string{"imageCredentials.enabled=true", "imageCredentials.username=bot"},
			want: []string{"imageCredentials.password", "imageCredentials.existingSecret"}},
		{name: "no queue", set: []string{"agentk8sglue.queue="},
			want: []string{"agentk8sglue.queues", "agentk8sglue.queue"}},
		{name: "queue name too short", set: []string{"agentk8sglue.queues.ab.priority=1"},
			want: []string{`agentk8sglue.queues: "ab" is not a ClearML queue name`, "at least 3 characters"}},
		{name: "legacy queue name too short", set: []string{"agentk8sglue.queue=gpu\\, ab"},
			want: []string{`agentk8sglue.queue: "ab" is not a ClearML queue name`}},
		{name: "multiNode in a queue", files: docsValues(t, `agentk8sglue: {queues: {multi-node-queue: {queueSettings: {multiNode: [4, 2]}}}}`),
			want: []string{"agentk8sglue.queues.multi-node-queue.queueSettings.multiNode", "multi-node scheduling is not built in this glue yet"}},
		{name: "multiNode enabled", set: []string{"agentk8sglue.multiNode.enabled=true"},
			want: []string{"agentk8sglue.multiNode.enabled", "not built in this glue yet"}},
		{name: "taskAsJob against taskKind", set: []string{"agentk8sglue.taskAsJob=true", "agentk8sglue.taskKind=Pod"},
			want: []string{"agentk8sglue.taskAsJob=true", "agentk8sglue.taskKind is Pod"}},
		{name: "two worker ids", set: []string{"agentk8sglue.workerIdOverride=k8s:a", "agentk8sglue.workerId=b"},
			want: []string{"agentk8sglue.workerIdOverride (k8s:a)", "agentk8sglue.workerId (b)"}},
		{name: "Python glue arguments", files: docsValues(t, `agentk8sglue: {extraEnvs: [{name: K8S_GLUE_EXTRA_ARGS, value: "--max-pods 3"}]}`),
			want: []string{"agentk8sglue.extraEnvs: K8S_GLUE_EXTRA_ARGS is a setting of ClearML's Python glue", "agentk8sglue.maxPods (--max-pods)"}},
		{name: "Python glue template module", files: docsValues(t, `agentk8sglue: {extraEnvs: [{name: CLEARML_K8S_GLUE_TEMPLATE_MODULE, value: "custom_code:update_template"}]}`),
			want: []string{"CLEARML_K8S_GLUE_TEMPLATE_MODULE", "template strings in agentk8sglue.basePodTemplate"}},
		{name: "Python glue max pods disagrees", files: docsValues(t, `agentk8sglue: {maxPods: 2, extraEnvs: [{name: K8S_GLUE_MAX_PODS, value: "4"}]}`),
			want: []string{"K8S_GLUE_MAX_PODS", `"4" disagrees with agentk8sglue.maxPods`}},
		{name: "Python glue poll frequency not a number", files: docsValues(t, `agentk8sglue: {extraEnvs: [{name: CLEARML_AGENT_QUEUE_POLL_FREQ_SEC, value: "often"}]}`),
			want: []string{"CLEARML_AGENT_QUEUE_POLL_FREQ_SEC", `"often" is not a value it takes`, "agentk8sglue.pollIntervalSeconds"}},
		{name: "Python glue value from a Secret", files: docsValues(t, `agentk8sglue: {extraEnvs: [{name: K8S_GLUE_MAX_PODS, valueFrom: {configMapKeyRef: {name: a, key: b}}}]}`),
			want: []string{"K8S_GLUE_MAX_PODS", "valueFrom"}},
		{name: "Python glue entrypoint with a queue list", files: docsValues(t, `agentk8sglue: {extraEnvs: [{name: K8S_GLUE_POD_USE_IMAGE_ENTRYPOINT, value: "1"}]}`),
			want: []string{"K8S_GLUE_POD_USE_IMAGE_ENTRYPOINT", "queueSettings.useImageEntrypoint"}},
		{name: "Kubernetes below the floor", kube: "v1.24.9",
			want: []string{"kubeVersion", "v1.24.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.files
			if files == nil {
				files = []string{filepath.Join(chartDir, "ci", "default-values.yaml")}
			}
			_, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: files, Set: tt.set, KubeVersion: tt.kube})
			if err == nil {
				t.Fatal("rendered, want an error")
			}
			if strings.Contains(err.Error(), schemaRefusal) {
				t.Fatalf("refused by the schema, want the chart's own message: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// docsValues is the default ci file plus values for one test.
func docsValues(t *testing.T, values string) []string {
	t.Helper()
	return []string{filepath.Join(chartDir, "ci", "default-values.yaml"), writeValues(t, values)}
}

// TestKubeVersionHasNoCap: a floor only, so future Kubernetes versions install.
func TestKubeVersionHasNoCap(t *testing.T) {
	for _, v := range []string{"v1.25.0", "v1.33.0", "v1.99.0"} {
		if _, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, KubeVersion: v}); err != nil {
			t.Errorf("Kubernetes %s: %v", v, err)
		}
	}
}
