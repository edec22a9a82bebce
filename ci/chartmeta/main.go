// Command chartmeta checks the chart's metadata as chart-testing (`ct lint`) and Artifact Hub
// read it, without either tool, and stamps release versions into Chart.yaml.
//
//	chartmeta check [-chart charts/clearml-agent] [-target-branch main]
//	chartmeta stamp [-chart charts/clearml-agent] -app-version 0.2.0 [-version 6.1.0]
//
// check runs, in order: ct's Chart.yaml schema (etc/chart_schema.yaml of chart-testing, strict as
// yamale is), the maintainers (ct's validate-maintainers, less the network lookup of the account),
// the version bump against the target branch (ct's check-version-increment), the Artifact Hub
// annotations (license, changes, images) and the CHANGELOG entry of the current version.
// stamp sets appVersion, the controller image tag in artifacthub.io/images and optionally the
// version, keeping the file's comments and layout.
package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chartmeta:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: chartmeta check|stamp [flags]")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	chart := fs.String("chart", "charts/clearml-agent", "chart directory")
	target := fs.String("target-branch", envOr("CT_TARGET_BRANCH", "main"), "branch a changed chart's version must exceed (ct's target-branch)")
	appVersion := fs.String("app-version", "", "appVersion to stamp (stamp)")
	version := fs.String("version", "", "chart version to stamp (stamp; default: keep)")
	bump := fs.Bool("version-bump", true, "check the version bump against the target branch (check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "check":
		if !*bump {
			*target = ""
		}
		problems, notes := check(*chart, *target)
		for _, n := range notes {
			fmt.Println(n)
		}
		if len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "FAIL:", p)
			}
			return fmt.Errorf("%d problem(s) in %s metadata", len(problems), *chart)
		}
		fmt.Println("chart metadata: ok")
		return nil
	case "stamp":
		if *appVersion == "" {
			return errors.New("stamp needs -app-version")
		}
		return stamp(*chart, *version, *appVersion)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// kind is a yamale type of ct's chart schema.
type kind int

const (
	str kind = iota
	strOrNum
	boolean
	strList
	mapStrStr
	maintainerList
	dependencyList
)

// chartSchema is chart-testing's etc/chart_schema.yaml: every allowed key and its type.
var chartSchema = map[string]kind{
	"name": str, "home": str, "version": str, "apiVersion": str, "appVersion": strOrNum,
	"description": str, "keywords": strList, "sources": strList, "maintainers": maintainerList,
	"dependencies": dependencyList, "icon": str, "engine": str, "condition": str, "tags": str,
	"deprecated": boolean, "kubeVersion": str, "annotations": mapStrStr, "type": str,
}

var required = []string{"name", "version", "apiVersion"}

func check(chart, target string) (problems, notes []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	raw, err := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err != nil {
		return []string{err.Error()}, nil
	}
	var c map[string]any
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return []string{"Chart.yaml: " + err.Error()}, nil
	}

	// ct: yamale --schema chart_schema.yaml Chart.yaml (strict: no other key).
	for _, k := range required {
		if _, ok := c[k]; !ok {
			bad("Chart.yaml schema: %s is required", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c)) {
		t, ok := chartSchema[k]
		if !ok {
			bad("Chart.yaml schema: unexpected key %s (chart-testing's schema is strict)", k)
			continue
		}
		if msg := typeError(t, c[k]); msg != "" {
			bad("Chart.yaml schema: %s: %s", k, msg)
		}
	}

	// Metadata a chart user expects: where it lives, who answers, what it looks like.
	for _, k := range []string{"home", "icon"} {
		if s, _ := c[k].(string); !strings.HasPrefix(s, "https://") {
			bad("%s must be an https URL, got %q", k, s)
		}
	}
	if srcs, _ := c["sources"].([]any); len(srcs) == 0 {
		bad("sources must list the repository")
	} else {
		for _, s := range srcs {
			if s, _ := s.(string); !strings.HasPrefix(s, "https://") {
				bad("sources: %q is not an https URL", s)
			}
		}
	}
	problems = append(problems, maintainerProblems(c)...)

	// ct: check-version-increment against the target branch.
	if target != "" {
		p, n := versionBump(chart, target, str2(c["version"]))
		problems, notes = append(problems, p...), append(notes, n...)
	}

	anns := map[string]string{}
	if m, ok := c["annotations"].(map[string]any); ok {
		for k, v := range m {
			anns[k], _ = v.(string)
		}
	}
	problems = append(problems, artifactHubProblems(chart, anns, str2(c["version"]), str2(c["appVersion"]))...)
	return problems, notes
}

func str2(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

func typeError(t kind, v any) string {
	isStr := func(v any) bool { _, ok := v.(string); return ok }
	switch t {
	case str:
		if !isStr(v) {
			return fmt.Sprintf("want a string, got %T", v)
		}
	case strOrNum:
		if _, ok := v.(float64); !ok && !isStr(v) {
			return fmt.Sprintf("want a string or a number, got %T", v)
		}
	case boolean:
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("want a boolean, got %T", v)
		}
	case strList:
		l, ok := v.([]any)
		if !ok {
			return fmt.Sprintf("want a list, got %T", v)
		}
		for _, e := range l {
			if !isStr(e) {
				return fmt.Sprintf("want a list of strings, got a %T", e)
			}
		}
	case mapStrStr:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Sprintf("want a map, got %T", v)
		}
		for k, e := range m {
			if !isStr(e) {
				return fmt.Sprintf("%s: annotation values must be strings (quote them), got %T", k, e)
			}
		}
	case maintainerList, dependencyList:
		l, ok := v.([]any)
		if !ok {
			return fmt.Sprintf("want a list, got %T", v)
		}
		allowed := map[string]kind{"name": str, "email": str, "url": str}
		need := []string{"name"}
		if t == dependencyList {
			allowed = map[string]kind{"name": str, "version": str, "repository": str, "condition": str, "tags": strList,
				"enabled": boolean, "alias": str, "import-values": strList}
			need = []string{"name", "version"}
		}
		for i, e := range l {
			m, ok := e.(map[string]any)
			if !ok {
				return fmt.Sprintf("item %d: want a map, got %T", i, e)
			}
			for _, k := range need {
				if _, ok := m[k]; !ok {
					return fmt.Sprintf("item %d: %s is required", i, k)
				}
			}
			for k, ev := range m {
				et, ok := allowed[k]
				if !ok {
					return fmt.Sprintf("item %d: unexpected key %s", i, k)
				}
				if msg := typeError(et, ev); msg != "" && k != "import-values" {
					return fmt.Sprintf("item %d: %s: %s", i, k, msg)
				}
			}
		}
	}
	return ""
}

// A GitHub, GitLab or Bitbucket account name, which ct's validate-maintainers looks up.
var accountName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$`)

func maintainerProblems(c map[string]any) []string {
	var problems []string
	ms, _ := c["maintainers"].([]any)
	if dep, _ := c["deprecated"].(bool); dep {
		if len(ms) > 0 {
			problems = append(problems, "a deprecated chart must not have maintainers")
		}
		return problems
	}
	if len(ms) == 0 {
		return append(problems, "maintainers: the chart has none (ct's validate-maintainers requires at least one)")
	}
	for i, m := range ms {
		m, _ := m.(map[string]any)
		name, _ := m["name"].(string)
		if !accountName.MatchString(name) {
			problems = append(problems, fmt.Sprintf("maintainers[%d]: name %q is not an account name (ct looks it up on the Git host)", i, name))
		}
		email, _ := m["email"].(string)
		url, _ := m["url"].(string)
		if email == "" && url == "" {
			problems = append(problems, fmt.Sprintf("maintainers[%d]: give an email or a url", i))
		}
		if url != "" && !strings.HasPrefix(url, "https://") {
			problems = append(problems, fmt.Sprintf("maintainers[%d]: url %q is not https", i, url))
		}
	}
	return problems
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	return strings.TrimSpace(string(out)), err
}

// versionBump is ct's check-version-increment: when the chart differs from the merge base with
// the target branch (the working tree counts, as in ct), its version must be greater than the
// target's. On the target branch itself the last release tag (v*) is the base, if there is one.
func versionBump(chart, target, version string) (problems, notes []string) {
	newV, err := semver.StrictNewVersion(version)
	if err != nil {
		return []string{fmt.Sprintf("version %q is not semver: %v", version, err)}, nil
	}
	ref := ""
	for _, r := range []string{"origin/" + target, target} {
		if _, err := git("rev-parse", "--verify", "--quiet", r+"^{commit}"); err == nil {
			ref = r
			break
		}
	}
	if ref == "" {
		return nil, []string{fmt.Sprintf("version bump: no branch %s to compare with; skipped", target)}
	}
	base, err := git("merge-base", ref, "HEAD")
	if err != nil {
		return []string{"version bump: git merge-base " + ref + " HEAD failed"}, nil
	}
	against := ref
	if branch, _ := git("symbolic-ref", "--quiet", "--short", "HEAD"); branch == target {
		tag, err := git("describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD")
		if err != nil {
			return nil, []string{fmt.Sprintf("version bump: HEAD is on %s and no release tag (v*) precedes it; nothing to compare", ref)}
		}
		base, against = tag, "release "+tag
	}
	if exec.Command("git", "diff", "--quiet", base, "--", chart).Run() == nil {
		return nil, []string{fmt.Sprintf("version bump: %s unchanged since %s", chart, against)}
	}
	old, err := git("show", base+":"+filepath.ToSlash(filepath.Join(chart, "Chart.yaml")))
	if err != nil {
		return nil, []string{fmt.Sprintf("version bump: no chart at %s (a new chart)", against)}
	}
	var oc struct{ Version string }
	if err := yaml.Unmarshal([]byte(old), &oc); err != nil {
		return []string{"version bump: Chart.yaml at " + against + ": " + err.Error()}, nil
	}
	oldV, err := semver.NewVersion(oc.Version)
	if err != nil {
		return []string{fmt.Sprintf("version bump: version %q at %s: %v", oc.Version, against, err)}, nil
	}
	if !newV.GreaterThan(oldV) {
		return []string{fmt.Sprintf("version bump: the chart changed since %s but its version %s is not greater than %s there (bump version in Chart.yaml and add a CHANGELOG entry)", against, newV, oldV)}, nil
	}
	return nil, []string{fmt.Sprintf("version bump: %s -> %s since %s", oldV, newV, against)}
}

var changeKinds = []string{"added", "changed", "deprecated", "removed", "fixed", "security"}

type change struct {
	Kind, Description string
	Links             []struct{ Name, URL string }
}

type image struct {
	Name, Image string
	Whitelisted bool
	Platforms   []string
}

func artifactHubProblems(chart string, anns map[string]string, version, appVersion string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if l := anns["artifacthub.io/license"]; !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`).MatchString(l) {
		bad("artifacthub.io/license %q is not an SPDX identifier", l)
	}

	var changes []change
	if err := yaml.UnmarshalStrict([]byte(anns["artifacthub.io/changes"]), &changes); err != nil {
		bad("artifacthub.io/changes: %v", err)
	}
	if len(changes) == 0 {
		bad("artifacthub.io/changes: no entry for version %s", version)
	}
	for i, ch := range changes {
		if !slices.Contains(changeKinds, ch.Kind) {
			bad("artifacthub.io/changes[%d]: kind %q is not one of %v", i, ch.Kind, changeKinds)
		}
		if strings.TrimSpace(ch.Description) == "" {
			bad("artifacthub.io/changes[%d]: empty description", i)
		}
	}

	var images []image
	if err := yaml.UnmarshalStrict([]byte(anns["artifacthub.io/images"]), &images); err != nil {
		bad("artifacthub.io/images: %v", err)
	}
	want, err := defaultImages(chart, appVersion)
	if err != nil {
		bad("%v", err)
	}
	got := map[string]string{}
	for _, im := range images {
		got[im.Name] = im.Image
	}
	for name, ref := range want {
		if got[name] != ref {
			bad("artifacthub.io/images: %s is %q, but the chart's defaults pull %q", name, got[name], ref)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			bad("artifacthub.io/images: %s is not an image the chart runs", name)
		}
	}

	problems = append(problems, changelogProblems(chart, version, changes)...)
	return problems
}

// defaultImages are the images the chart's default values pull, as full references (Artifact
// Hub scans them): the controller (tag appVersion) and the helm test image.
func defaultImages(chart, appVersion string) (map[string]string, error) {
	raw, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		return nil, err
	}
	var v struct {
		Global struct {
			ImageRegistry string `json:"imageRegistry"`
		} `json:"global"`
		Agentk8sglue struct {
			// controllerImage, where the chart separates the controller image from the open-source
			// chart's image key (the Python glue's); else image.
			ControllerImage *struct{ Registry, Repository, Tag string } `json:"controllerImage"`
			Image           struct{ Registry, Repository, Tag string }  `json:"image"`
		} `json:"agentk8sglue"`
		Tests struct {
			Image struct{ Registry, Repository, Tag string } `json:"image"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	full := func(registry, repo, tag string) string {
		if registry == "" {
			registry = v.Global.ImageRegistry
		}
		if registry == "" || registry == "index.docker.io" {
			registry = "docker.io"
		}
		if registry == "docker.io" && !strings.Contains(repo, "/") {
			repo = "library/" + repo
		}
		return registry + "/" + repo + ":" + tag
	}
	g, t := v.Agentk8sglue.Image, v.Tests.Image
	if c := v.Agentk8sglue.ControllerImage; c != nil {
		g = *c
	}
	return map[string]string{
		"clearml-glue": full(g.Registry, g.Repository, cmpOr(g.Tag, appVersion)),
		"busybox":      full(t.Registry, t.Repository, t.Tag),
	}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// changelogProblems: CHANGELOG.md has a section "## <version>" and every artifacthub.io/changes
// entry appears in it, under the heading of its kind ("### Added" for added).
func changelogProblems(chart, version string, changes []change) []string {
	raw, err := os.ReadFile(filepath.Join(chart, "CHANGELOG.md"))
	if err != nil {
		return []string{"CHANGELOG.md: " + err.Error()}
	}
	var section []string
	in := false
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "## ") {
			head := strings.Fields(strings.TrimPrefix(l, "## "))
			in = len(head) > 0 && strings.Trim(head[0], "[]") == version
			continue
		}
		if in {
			section = append(section, l)
		}
	}
	if section == nil {
		return []string{fmt.Sprintf("CHANGELOG.md has no section \"## %s\"", version)}
	}
	byKind := map[string]string{}
	kind := ""
	for _, l := range section {
		if strings.HasPrefix(l, "### ") {
			kind = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(l, "### ")))
			continue
		}
		byKind[kind] += " " + l
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	var problems []string
	for _, ch := range changes {
		if !strings.Contains(norm(byKind[ch.Kind]), norm(ch.Description)) {
			problems = append(problems, fmt.Sprintf("CHANGELOG.md, %s, ### %s: lacks the artifacthub.io/changes entry %q", version, capitalize(ch.Kind), ch.Description))
		}
	}
	return problems
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stamp rewrites appVersion, the clearml-glue image tag of artifacthub.io/images and optionally
// version in Chart.yaml, line by line, so comments and layout stay.
func stamp(chart, version, appVersion string) error {
	if _, err := semver.StrictNewVersion(appVersion); err != nil {
		return fmt.Errorf("-app-version %q: %w", appVersion, err)
	}
	if version != "" {
		if _, err := semver.StrictNewVersion(version); err != nil {
			return fmt.Errorf("-version %q: %w", version, err)
		}
	}
	path := filepath.Join(chart, "Chart.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return err
	}
	images, err := defaultImages(chart, c.AppVersion)
	if err != nil {
		return err
	}
	oldImage := images["clearml-glue"]
	newImage := strings.TrimSuffix(oldImage, ":"+c.AppVersion) + ":" + appVersion
	replace := func(re *regexp.Regexp, repl string) error {
		if !re.Match(raw) {
			return fmt.Errorf("%s: no line matches %s", path, re)
		}
		raw = re.ReplaceAll(raw, []byte(repl))
		return nil
	}
	if err := replace(regexp.MustCompile(`(?m)^appVersion:.*$`), fmt.Sprintf("appVersion: %q", appVersion)); err != nil {
		return err
	}
	if version != "" {
		if err := replace(regexp.MustCompile(`(?m)^version:.*$`), "version: "+version); err != nil {
			return err
		}
	}
	if err := replace(regexp.MustCompile(`(?m)^(\s+image: )`+regexp.QuoteMeta(oldImage)+`\s*$`), "${1}"+newImage); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}
