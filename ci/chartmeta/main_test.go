package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyChart copies the files chartmeta reads into dir/charts/clearml-agent.
func copyChart(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, "charts", "clearml-agent")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Chart.yaml", "values.yaml", "CHANGELOG.md"} {
		data, err := os.ReadFile(filepath.Join("../../charts/clearml-agent", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s lacks %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTheChartPasses(t *testing.T) {
	problems, notes := check("../../charts/clearml-agent", "main")
	if len(problems) > 0 {
		t.Fatalf("problems: %q (notes %q)", problems, notes)
	}
}

// Each broken piece of metadata is reported, naming what is wrong.
func TestProblemsAreFound(t *testing.T) {
	cases := []struct{ file, old, new, want string }{
		{"Chart.yaml", "kubeVersion:", "kubeversion: x\nkubeVersion:", "unexpected key kubeversion"},
		{"Chart.yaml", "  - name: clearml-glue\n    url: https://github.com/clearml-glue\n", "  - name: clearml-glue\n", "give an email or a url"},
		{"Chart.yaml", "  - name: clearml-glue\n    url:", "  - name: Not An Account\n    url:", "not an account name"},
		{"Chart.yaml", "artifacthub.io/prerelease: \"false\"", "artifacthub.io/prerelease: false", "annotation values must be strings"},
		{"Chart.yaml", "- kind: removed", "- kind: gone", `kind "gone"`},
		{"Chart.yaml", "image: docker.io/clearml-glue/clearml-glue:0.1.0", "image: docker.io/clearml-glue/clearml-glue:0.0.9", "the chart's defaults pull"},
		{"Chart.yaml", "artifacthub.io/license: Apache-2.0", "artifacthub.io/license: Apache 2", "SPDX"},
		{"CHANGELOG.md", "- the 5.0.0-only keys removed in 5.0.1 and the init container.", "- the init container.", "lacks the artifacthub.io/changes entry"},
		{"CHANGELOG.md", "## 6.0.0", "## 5.9.9", `no section "## 6.0.0"`},
		{"Chart.yaml", "home: https://", "home: http://", "home must be an https URL"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			chart := copyChart(t, t.TempDir())
			edit(t, filepath.Join(chart, c.file), c.old, c.new)
			problems, _ := check(chart, "no-such-branch")
			if !strings.Contains(strings.Join(problems, "\n"), c.want) {
				t.Errorf("want a problem with %q, got %q", c.want, problems)
			}
		})
	}
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// As ct's check-version-increment: a branch that changes the chart must bump its version above
// main's; on main, the last release tag is the base.
func TestVersionBump(t *testing.T) {
	dir := t.TempDir()
	chart := copyChart(t, dir)
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "commit", "-q", "-m", "chart")
	t.Chdir(dir)
	rel := filepath.Join("charts", "clearml-agent")

	if p, n := versionBump(rel, "main", "6.0.0"); len(p) > 0 || !strings.Contains(strings.Join(n, ""), "no release tag") {
		t.Errorf("on main without a tag: problems %q notes %q", p, n)
	}
	gitIn(t, dir, "checkout", "-q", "-b", "feature")
	if p, n := versionBump(rel, "main", "6.0.0"); len(p) > 0 || !strings.Contains(strings.Join(n, ""), "unchanged") {
		t.Errorf("unchanged: problems %q notes %q", p, n)
	}
	edit(t, filepath.Join(chart, "values.yaml"), "replicaCount: 1", "replicaCount: 2")
	if p, _ := versionBump(rel, "main", "6.0.0"); len(p) != 1 || !strings.Contains(p[0], "not greater than 6.0.0") {
		t.Errorf("changed without a bump: %q", p)
	}
	if p, n := versionBump(rel, "main", "6.0.1"); len(p) > 0 || !strings.Contains(strings.Join(n, ""), "6.0.0 -> 6.0.1") {
		t.Errorf("bumped: problems %q notes %q", p, n)
	}
	gitIn(t, dir, "checkout", "-q", "main")
	gitIn(t, dir, "tag", "v0.1.0")
	if p, _ := versionBump(rel, "main", "6.0.0"); len(p) != 1 || !strings.Contains(p[0], "since release v0.1.0") {
		t.Errorf("on main after a release, changed without a bump: %q", p)
	}
}

// stamp sets appVersion and the image tag and keeps the rest; the result still passes.
func TestStamp(t *testing.T) {
	chart := copyChart(t, t.TempDir())
	before, _ := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err := stamp(chart, "6.1.0", "0.2.0"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	for _, want := range []string{"\nversion: 6.1.0\n", "\nappVersion: \"0.2.0\"\n", "      image: docker.io/clearml-glue/clearml-glue:0.2.0\n",
		"# A floor only"} {
		if !strings.Contains(string(after), want) {
			t.Errorf("stamped Chart.yaml lacks %q", want)
		}
	}
	if strings.Count(string(before), "\n") != strings.Count(string(after), "\n") {
		t.Error("stamp changed the number of lines")
	}
	edit(t, filepath.Join(chart, "CHANGELOG.md"), "## 6.0.0", "## 6.1.0")
	if problems, _ := check(chart, "no-such-branch"); len(problems) > 0 {
		t.Errorf("stamped chart: %q", problems)
	}
	if err := stamp(chart, "", "v0.3"); err == nil {
		t.Error("a non-semver app version was stamped")
	}
}
