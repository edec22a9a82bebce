package podtemplate

import (
	"strings"
	"testing"
)

func testData(t *testing.T) *templateData {
	t.Helper()
	task := loadTask(t, "training.json")
	task["metrics"] = map[string]any{"score": 0.75, "best": true, "objects": []any{map[string]any{"a": 1.0}}}
	b := &Builder{cfg: loadConfig(t, "docs-per-queue.yaml")}
	in := input(task)
	in.WorkerID = "glue-1"
	d, err := b.templateData("green", in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRenderString(t *testing.T) {
	d := testData(t)
	for name, tc := range map[string]struct {
		text, want, wantErr string
		edit                func(*templateData)
	}{
		"task name":                     {text: "${CLEARML_TASK.name}", want: "ResNet50 training"},
		"task id in text":               {text: "id=${CLEARML_TASK.id}.", want: "id=4f0c52a6e1b04c9e9c3c2b7d1e8a9f10."},
		"task project":                  {text: "${CLEARML_TASK.project}", want: "2b4c9a1f7d3e4e0a8c6b5d4f3e2a1b0c"},
		"hyperparameter":                {text: "${CLEARML_TASK.hyperparams.General.epochs.value}", want: "90"},
		"queue name":                    {text: "${CLEARML_QUEUE_NAME}", want: "green"},
		"queue id":                      {text: "${CLEARML_QUEUE_ID}", want: "6d2f0e1c9b8a47d6a5c4b3e2f1d0c9b8"},
		"worker id":                     {text: "${CLEARML_WORKER_ID}", want: "glue-1"},
		"project name":                  {text: "${CLEARML_PROJECT_NAME}", want: "Computer Vision"},
		"project id":                    {text: "${CLEARML_PROJECT_ID}", want: "2b4c9a1f7d3e4e0a8c6b5d4f3e2a1b0c"},
		"user":                          {text: "${CLEARML_USER.email}", want: "jane@example.com"},
		"list joins with commas":        {text: "${CLEARML_TASK.tags}", want: "resnet,imagenet"},
		"number":                        {text: "${CLEARML_TASK.metrics.score}", want: "0.75"},
		"bool":                          {text: "${CLEARML_TASK.metrics.best}", want: "true"},
		"default when missing":          {text: "${CLEARML_TASK.hyperparams.properties.nope.value:myDefault}", want: "myDefault"},
		"empty default":                 {text: "[${CLEARML_TASK.nope:}]", want: "[]"},
		"default for an object":         {text: "${CLEARML_TASK.hyperparams:none}", want: "none"},
		"default for a list of objects": {text: "${CLEARML_TASK.metrics.objects:none}", want: "none"},
		"no data for vaults":            {text: "${CLEARML_USER_VAULTS.my_section.userKey:undefined_user_key}", want: "undefined_user_key"},
		"newlines removed by default":   {text: "${CLEARML_TASK.hyperparams.properties.user_key.value}", want: "Team-A"},
		"raw keeps newlines":            {text: "${CLEARML_TASK.hyperparams.properties.user_key.value|raw}", want: "Team-A\n"},
		"lower":                         {text: "${CLEARML_TASK.name|lower}", want: "resnet50 training"},
		"capitalize":                    {text: "${CLEARML_TASK.name|capitalize}", want: "Resnet50 training"},
		"strip chars":                   {text: "${CLEARML_TASK.hyperparams.properties.user_key.value|strip(-AT)}", want: "eam"},
		"strip white space":             {text: "${CLEARML_TASK.x: padded |strip()}", want: "padded"},
		"filters apply to defaults":     {text: "${CLEARML_TASK.nope:ABC|lower}", want: "abc"},
		"filters in order":              {text: "${CLEARML_TASK.name|strip(R)|capitalize}", want: "Esnet50 training"},
		"project unknown":               {text: "${CLEARML_PROJECT_NAME}", want: "unknown", edit: func(d *templateData) { d.Task.ProjectName = "" }},
		"not a ClearML variable":        {text: "echo ${CLEARML_API_HOST} ${HOME}", want: "echo ${CLEARML_API_HOST} ${HOME}"},
		"unterminated placeholder":      {text: "${CLEARML_TASK.name", want: "${CLEARML_TASK.name"},
		"go template with sprig":        {text: `{{ .Task.Name | lower | trunc 6 }}/{{ .Queue.Name }}/{{ .WorkerID }}/{{ index .Task.Tags 0 }}`, want: "resnet/green/glue-1/resnet"},
		"go template maps":              {text: `{{ .Task.Hyperparams.General.epochs.value }} {{ .Task.Container.image }} {{ .User.name }}`, want: "90 nvcr.io/nvidia/pytorch:24.01-py3 Jane Doe"},
		"both syntaxes":                 {text: `{{ .Task.Type }}:${CLEARML_QUEUE_NAME|lower}{{ if .Task.Parent }}:child{{ end }}`, want: "training:green:child"},
		"placeholder inside an action stays text": {text: `{{ "${CLEARML_TASK.name}" }}`, want: "${CLEARML_TASK.name}"},
		"placeholder inside a range":              {text: `{{ range .Task.Tags }}${CLEARML_QUEUE_NAME}-{{ . }} {{ end }}`, want: "green-resnet green-imagenet "},
		"missing value":                           {text: "${CLEARML_TASK.hyperparams.properties.nope.value}", wantErr: "${CLEARML_TASK.hyperparams.properties.nope.value} has no value for this task and no default"},
		"missing map key":                         {text: "{{ .Task.Hyperparams.nope.value }}", wantErr: `map has no entry for key "nope"`},
		"unknown field":                           {text: "{{ .Task.Nope }}", wantErr: "can't evaluate field Nope"},
	} {
		t.Run(name, func(t *testing.T) {
			d := *d
			if tc.edit != nil {
				tc.edit(&d)
			}
			got, err := mustCompile(t, tc.text).execute(&d)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func mustCompile(t *testing.T, text string) *leaf {
	t.Helper()
	l, err := newCompiler().compile("test", text, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCompileErrors(t *testing.T) {
	for name, tc := range map[string]struct{ text, wantErr string }{
		"unknown filter":             {"${CLEARML_TASK.name|upper}", `unknown filter "upper"`},
		"malformed filter":           {"${CLEARML_TASK.name|lower(}", `"lower(" is not a filter`},
		"path variable, no path":     {"${CLEARML_TASK}", "TASK needs a path"},
		"single variable, a path":    {"${CLEARML_QUEUE_NAME.x}", "QUEUE_NAME takes no path"},
		"env is not available":       {`{{ env "HOME" }}`, `function "env" not defined`},
		"expandenv is not available": {`{{ expandenv "$HOME" }}`, `function "expandenv" not defined`},
		"no DNS lookups":             {`{{ getHostByName "example.com" }}`, `function "getHostByName" not defined`},
		"go syntax":                  {`{{ .Task.Name `, "unclosed action"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newCompiler().compile("test", tc.text, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestWorkerIDPlaceholders(t *testing.T) {
	l, err := newCompiler().compile("test", "k8s:{queue}:{project}:{task_name}:{task_id}:{other}:{{ .Task.Type }}:${CLEARML_QUEUE_ID}", workerIDBraces("ml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.execute(testData(t))
	if want := "k8s:green:Computer Vision:ResNet50 training:4f0c52a6e1b04c9e9c3c2b7d1e8a9f10:{other}:training:6d2f0e1c9b8a47d6a5c4b3e2f1d0c9b8"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	// ClearML's orchestration dashboard placeholders (taskWorkerIdOverride).
	d := testData(t)
	d.WorkerID = "k8s:glue-agent:my-agent"
	l, err = newCompiler().compile("test", "{worker_id_parts[0]}:{worker_id_parts[2]}:{pod_name}@{namespace}:{worker_id}", workerIDBraces("ml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = l.execute(d)
	if want := "k8s:my-agent:clearml-id-4f0c52a6e1b04c9e9c3c2b7d1e8a9f10@ml:k8s:glue-agent:my-agent"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}
