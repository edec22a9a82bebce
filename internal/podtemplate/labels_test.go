package podtemplate

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

func TestSanitizeLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"GPUs_with_shared_memory":      "gpus-with-shared-memory",
		"1xGPU":                        "1xgpu",
		"  --My Task!!  ":              "my-task",
		"a.b_c-d":                      "a-b-c-d",
		"née ünïcode":                  "n-e-n-code",
		"line\nbreak: {{ x }}":         "line-break-x",
		"___":                          "",
		strings.Repeat("ab", 40):       strings.Repeat("ab", 31) + "a",
		strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	} {
		got := SanitizeLabelValue(in)
		if got != want {
			t.Errorf("SanitizeLabelValue(%q) = %q, want %q", in, got, want)
		}
		if msgs := content.IsLabelValue(got); len(msgs) > 0 {
			t.Errorf("SanitizeLabelValue(%q) = %q is not a valid label value: %v", in, got, msgs)
		}
	}
}

func TestTaskIDFromName(t *testing.T) {
	for name, want := range map[string]string{
		ObjectName("4f0c52a6e1b04c9e9c3c2b7d1e8a9f10"):            "4f0c52a6e1b04c9e9c3c2b7d1e8a9f10",
		ObjectName("4f0c52a6e1b04c9e9c3c2b7d1e8a9f10") + "-x7k2p": "4f0c52a6e1b04c9e9c3c2b7d1e8a9f10",
		"clearml-id-":       "",
		"clearml-id--x":     "",
		"other-4f0c52a6e1b": "",
	} {
		got, ok := TaskIDFromName(name)
		if got != want || ok != (want != "") {
			t.Errorf("TaskIDFromName(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}
