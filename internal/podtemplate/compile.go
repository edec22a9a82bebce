package podtemplate

import (
	"maps"
	"slices"
	"strings"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/config"
)

// compileQueue checks the base template and the queue's overrides on their own (so a problem is
// named where it is written), merges them, assembles the pod template and compiles its strings.
// Last, a probe build with the template strings left unrendered finds what is wrong whatever the
// task: problems in rendered values are left to Build.
func (b *Builder) compileQueue(name string, q config.Queue) (*queueTemplate, []*fieldError) {
	leaves := map[string]*leaf{}
	problems := b.checkSource("basePodTemplate", b.cfg.BasePodTemplate, leaves)
	problems = append(problems, b.checkSource("templateOverrides", q.TemplateOverrides, leaves)...)
	if len(problems) > 0 {
		return nil, problems
	}
	merged, err := mergeTemplates(b.cfg.BasePodTemplate, q.TemplateOverrides)
	if err != nil {
		return nil, []*fieldError{{problem: err.Error()}}
	}
	pod, err := assemble(merged)
	if err != nil {
		return nil, []*fieldError{{problem: err.Error()}}
	}
	qt := &queueTemplate{name: name, settings: q.QueueSettings}
	qt.pod, _ = compileTree(pod, leaves).(map[string]any)
	if files, ok := merged["fileMounts"]; ok {
		qt.files = compileTree(files, leaves)
	}
	src, text := "queueSettings.customWorkerIdTemplate", q.QueueSettings.CustomWorkerIDTemplate
	if text == "" {
		src, text = "taskWorkerIdTemplate", b.cfg.TaskWorkerIDTemplate
	}
	if text != "" {
		if qt.workerID, err = b.compiler.compile(src, text, workerIDBraces(b.cfg.Namespace)); err != nil {
			return nil, []*fieldError{{problem: err.Error()}}
		}
	}
	qt.monitoredLabels = map[string]bool{}
	for _, p := range []admission.Path{b.need, b.hold} {
		if s := p.Segments(); s[0] == "metadata" && s[1] == "labels" {
			qt.monitoredLabels[s[2]] = true
		}
	}
	var amountProblems []*fieldError
	for _, m := range []struct {
		key  string
		path admission.Path
		into *Amount
	}{{"minResourcesFieldName", b.need, &qt.need}, {"maxResourcesFieldName", b.hold, &qt.hold}} {
		amount, err := staticAmount(qt.pod, m.path)
		if err != nil {
			amountProblems = append(amountProblems, &fieldError{problem: "monitoredResources." + m.key + " " + m.path.String() + ": " + err.Error()})
		}
		*m.into = amount
	}
	if len(amountProblems) > 0 {
		return qt, amountProblems
	}
	qt.usesProject, qt.usesUser = b.compiler.reads(collectLeaves(nil, qt.pod, qt.files, qt.workerID))
	in := Input{Task: map[string]any{"id": probeTaskID}, PodNumber: 1}
	d, _ := b.templateData(name, in)
	_, problems = b.build(qt, in, d, func(l *leaf) (string, error) { return l.text, nil })
	return qt, slices.DeleteFunc(problems, func(p *fieldError) bool { return qt.leafAt(p.path) != nil })
}

// staticAmount reads a monitored amount from a compiled pod template tree: a template string
// there is rendered per task (PerTask), anything else must be a quantity.
func staticAmount(pod map[string]any, p admission.Path) (Amount, error) {
	v, ok := p.Tree(pod)
	if !ok {
		return Amount{}, nil
	}
	if _, perTask := v.(*leaf); perTask {
		return Amount{PerTask: true}, nil
	}
	q, err := admission.ParseAmount(v)
	return Amount{Quantity: q}, err
}

// checkSource compiles the template strings of one template (leaves, named where they are
// written) and strictly decodes the rest of each key into its Kubernetes type.
func (b *Builder) checkSource(prefix string, tmpl map[string]any, leaves map[string]*leaf) []*fieldError {
	var problems []*fieldError
	for _, k := range templateKeys {
		v, ok := tmpl[k.name]
		if !ok || v == nil {
			continue
		}
		p := fieldPath{prefix, k.name}
		static, _, errs := b.compileStrings(p, v, leaves)
		problems = append(problems, errs...)
		if k.directives {
			static = withoutDirectives(static)
		}
		problems = append(problems, decodeStrict(p, static, k.target())...)
	}
	return problems
}

// compileStrings compiles the template strings in v into leaves and returns v without them.
func (b *Builder) compileStrings(p fieldPath, v any, leaves map[string]*leaf) (static any, keep bool, problems []*fieldError) {
	switch v := v.(type) {
	case string:
		if !isTemplate(v) {
			return v, true, nil
		}
		if _, ok := leaves[v]; !ok {
			l, err := b.compiler.compile(p.String(), v, nil)
			if err != nil {
				return nil, false, []*fieldError{{problem: err.Error()}}
			}
			leaves[v] = l
		}
		return nil, false, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		// In order, so a string written twice is always named after the same place.
		for _, k := range slices.Sorted(maps.Keys(v)) {
			s, keep, errs := b.compileStrings(p.child(k), v[k], leaves)
			problems = append(problems, errs...)
			if keep {
				out[k] = s
			}
		}
		return out, true, problems
	case []any:
		out := make([]any, 0, len(v))
		for i, e := range v {
			s, keep, errs := b.compileStrings(p.index(i), e, leaves)
			problems = append(problems, errs...)
			if keep {
				out = append(out, s)
			}
		}
		return out, true, problems
	default:
		return v, true, nil
	}
}

// withoutDirectives drops strategic-merge-patch directives, which are keys starting with "$"
// (no Kubernetes field does), so the rest can be decoded.
func withoutDirectives(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if !strings.HasPrefix(k, "$") {
				out[k] = withoutDirectives(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutDirectives(e)
		}
		return out
	default:
		return v
	}
}

// compileTree returns tree with its template strings replaced by their leaves.
func compileTree(tree any, leaves map[string]*leaf) any {
	switch t := tree.(type) {
	case string:
		if l, ok := leaves[t]; ok {
			return l
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = compileTree(v, leaves)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			out[i] = compileTree(v, leaves)
		}
		return out
	default:
		return tree
	}
}
