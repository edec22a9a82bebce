package preview

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/golden"
)

const chartDir = "../../charts/clearml-agent"

func run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRender(t *testing.T) {
	for name, args := range map[string][]string{
		"config": {"--config", "testdata/glue.yaml", "--queue", "gpu-large", "--task", "testdata/task-response.json", "--project-name", "Computer Vision"},
		// No credentials in the values: a preview never needs them.
		"docs-mixed-gpu-3g": {"--values", "testdata/docs-mixed-gpu-values.yaml", "--chart", chartDir, "--queue", "3g-GPU", "--task", "testdata/task-response.json"},
		"open-source-values": {
			"--chart", chartDir, "--values", "testdata/open-source-values.yaml", "--set", "agentk8sglue.basePodTemplate.labels.team=vision",
			"--queue", "gpu_queue", "--task", "testdata/task-response.json",
		},
	} {
		t.Run(name, func(t *testing.T) {
			out, stderr, err := run(args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			golden.Assert(t, out, filepath.Join("golden", name+".yaml"))
		})
	}
}

func TestRenderErrors(t *testing.T) {
	task := "testdata/task-response.json"
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no queue":         {[]string{"--config", "testdata/glue.yaml", "--task", task}, "--queue and --task are required"},
		"config and chart": {[]string{"--config", "testdata/glue.yaml", "--chart", chartDir, "--queue", "gpu-large", "--task", task}, "--config replaces the chart"},
		"stray argument":   {[]string{"--config", "testdata/glue.yaml", "--queue", "gpu-large", "--task", task, "extra"}, "unexpected arguments: extra"},
		"unknown flag":     {[]string{"--colour"}, "flag provided but not defined: -colour"},
		"unknown queue":    {[]string{"--config", "testdata/glue.yaml", "--queue", "nope", "--task", task}, `queue "nope" is not served by this glue`},
		"invalid queue":    {[]string{"--config", "testdata/glue.yaml", "--queue", "broken", "--task", task}, `queue "broken": templateOverrides.resources.limits.memory: "12 GB" is not a valid quantity`},
		"missing config":   {[]string{"--config", "testdata/nope.yaml", "--queue", "gpu-large", "--task", task}, "no such file"},
		"missing task":     {[]string{"--config", "testdata/glue.yaml", "--queue", "gpu-large", "--task", "testdata/nope.json"}, "task testdata/nope.json: open"},
		"not a task":       {[]string{"--config", "testdata/glue.yaml", "--queue", "gpu-large", "--task", "testdata/glue.yaml"}, "task testdata/glue.yaml: invalid character"},
		"task without id":  {[]string{"--config", "testdata/glue.yaml", "--queue", "gpu-large", "--task", "testdata/no-id.json"}, `no task: want a JSON object with an "id"`},
		"user without id":  {[]string{"--config", "testdata/glue.yaml", "--queue", "gpu-large", "--task", task, "--user", "testdata/no-id.json"}, `user testdata/no-id.json: no user`},
		"bad values":       {[]string{"--chart", chartDir, "--set", "agentk8sglue.queue=1", "--queue", "default", "--task", task}, "chart " + chartDir},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := run(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("printed %q on error", out)
			}
		})
	}
}

// --user gives templates the owner the controller would look up.
func TestRenderWithUser(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "glue.yaml")
	if err := os.WriteFile(cfg, []byte("namespace: clearml\nqueues:\n  gpu: {templateOverrides: {env: [{name: OWNER, value: '${CLEARML_USER.given_name} ({{ .User.name }})'}]}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run("--config", cfg, "--queue", "gpu", "--task", "testdata/task-response.json", "--user", "testdata/user-response.json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "value: Jane (Jane Doe)") {
		t.Errorf("owner not rendered:\n%s", out)
	}
	_, _, err = run("--config", cfg, "--queue", "gpu", "--task", "testdata/task-response.json")
	if err == nil || !strings.Contains(err.Error(), "${CLEARML_USER.given_name} has no value") {
		t.Errorf("without --user: %v", err)
	}
}

// The credentials are never in the printed object, placeholders or real ones.
func TestRenderPrintsNoCredential(t *testing.T) {
	out, stderr, err := run("--values", "testdata/docs-mixed-gpu-values.yaml", "--chart", chartDir, "--set", "clearml.agentk8sglueKey=REAL-KEY-1234",
		"--queue", "1g-GPU", "--task", "testdata/task-response.json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, secret := range []string{"REAL-KEY-1234", placeholderCredential} {
		if strings.Contains(out, secret) {
			t.Errorf("the preview holds %q", secret)
		}
	}
	if !strings.Contains(out, "name: clearml-agent-credentials") {
		t.Errorf("the preview does not reference the credentials Secret:\n%s", out)
	}
}

func TestHelp(t *testing.T) {
	_, stderr, err := run("-h")
	if err != nil || !strings.Contains(stderr, "Usage: clearml-glue render") {
		t.Errorf("-h: %v, %q", err, stderr)
	}
}
