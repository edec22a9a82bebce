package podtemplate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestShellSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":                         nil,
		"  a  b\tc\n":              {"a", "b", "c"},
		`-e 'A=x y' --env "B=1 2"`: {"-e", "A=x y", "--env", "B=1 2"},
		`a\ b 'c\d' "e\"f\\g\h"`:   {"a b", `c\d`, `e"f\g\h`},
		`x''y "" ''`:               {"xy", "", ""},
		`-e A="it's"`:              {"-e", "A=it's"},
	} {
		got, err := shellSplit(in)
		if err != nil {
			t.Errorf("shellSplit(%q): %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("shellSplit(%q) (-want +got):\n%s", in, diff)
		}
	}
	for _, in := range []string{`'open`, `"open`, `end\`} {
		if _, err := shellSplit(in); err == nil {
			t.Errorf("shellSplit(%q): want an error", in)
		}
	}
}

func TestEnvFromArguments(t *testing.T) {
	for name, tc := range map[string]struct {
		args    any
		want    []corev1.EnvVar
		wantErr string
	}{
		"string":        {args: `-e A=1 --ipc=host --env 'B=two words' --env=C=x=y -e D`, want: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "two words"}, {Name: "C", Value: "x=y"}, {Name: "D"}}},
		"list":          {args: []any{"-e", "A=1", "--rm"}, want: []corev1.EnvVar{{Name: "A", Value: "1"}}},
		"none":          {args: nil},
		"missing value": {args: "--env", wantErr: "--env without a value"},
		"unterminated":  {args: "-e 'A=1", wantErr: "unterminated single quote"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := envFromArguments(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
