package admission

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// Path is a parsed monitoredResources field name, as ClearML documents it: ONE path into the Pod
// whose segments are separated by "|" (keys hold dots, so "|" is the separator, never an "or").
// The glue reads these shapes:
//
//	metadata|labels|<key>                           a Pod label, e.g. metadata|labels|clear.ml/resource-usage
//	metadata|annotations|<key>                      a Pod annotation
//	resources|limits|<resource>                     the task container's limit (ClearML's default,
//	resources|requests|<resource>                   resources|limits|nvidia.com/gpu), or request
//	spec|containers|<n>|resources|limits|<resource> container n's limit (or requests)
//	spec|resources|limits|<resource>                the Pod-level limit (or requests)
//
// A value may be decimal ("0.5", "0.14") or any Kubernetes quantity ("500m"). A single segment
// resources.limits.<resource> (dots, no "|") is the spelling of earlier versions of this chart
// and reads the task container too.
type Path struct {
	text string
	segs []string // from the Pod root; the task-container shortcut is expanded to spec|containers|0
}

// ParsePath parses a field name. An error says which shapes the glue reads.
func ParsePath(field string) (Path, error) {
	text := strings.TrimSpace(field)
	var segs []string
	for s := range strings.SplitSeq(text, "|") {
		segs = append(segs, strings.TrimSpace(s))
	}
	if len(segs) == 1 {
		// Earlier versions of this chart: resources.limits.nvidia.com/gpu.
		if parts := strings.SplitN(segs[0], ".", 3); len(parts) == 3 && parts[0] == "resources" {
			segs = parts
		}
	}
	if segs[0] == "resources" {
		segs = append([]string{"spec", "containers", "0"}, segs...)
	}
	if !supported(segs) {
		return Path{}, fmt.Errorf("%q is not a path the glue reads: use metadata|labels|<key>, metadata|annotations|<key>, "+
			"resources|limits|<resource> (the task container; or requests), spec|containers|<n>|resources|limits|<resource> "+
			"or spec|resources|limits|<resource>", text)
	}
	return Path{text: text, segs: segs}, nil
}

func supported(s []string) bool {
	resources := func(s []string) bool {
		return len(s) == 3 && s[0] == "resources" && (s[1] == "limits" || s[1] == "requests") && s[2] != ""
	}
	switch {
	case len(s) == 3 && s[0] == "metadata":
		return (s[1] == "labels" || s[1] == "annotations") && s[2] != ""
	case len(s) == 6 && s[0] == "spec" && s[1] == "containers":
		n, err := strconv.Atoi(s[2])
		return err == nil && n >= 0 && strconv.Itoa(n) == s[2] && resources(s[3:])
	case len(s) == 4 && s[0] == "spec":
		return resources(s[1:])
	}
	return false
}

// MustParsePath is ParsePath for field names validated already (config.File.Validate).
func MustParsePath(field string) Path {
	p, err := ParsePath(field)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the field name as written.
func (p Path) String() string { return p.text }

// Segments returns the path from the Pod root ({metadata, spec}), the task-container shortcut
// expanded (spec|containers|0|resources|...).
func (p Path) Segments() []string { return append([]string(nil), p.segs...) }

// ReadsAnnotations says whether the path reads a Pod annotation.
func (p Path) ReadsAnnotations() bool { return len(p.segs) == 3 && p.segs[1] == "annotations" }

// Pod reads the amount from a Pod's (or a pod template's) metadata and spec. Absent is zero; a
// value that is not a quantity is an error naming the path.
func (p Path) Pod(labels, annotations map[string]string, spec *corev1.PodSpec) (resource.Quantity, error) {
	var list corev1.ResourceList
	switch s := p.segs; {
	case len(s) == 0:
		return resource.Quantity{}, nil
	case s[0] == "metadata":
		m := labels
		if s[1] == "annotations" {
			m = annotations
		}
		v, ok := m[s[2]]
		if !ok {
			return resource.Quantity{}, nil
		}
		return p.amount(v)
	case len(s) == 6:
		i, _ := strconv.Atoi(s[2])
		if spec == nil || i >= len(spec.Containers) {
			return resource.Quantity{}, nil
		}
		list = pick(spec.Containers[i].Resources, s[4])
	default:
		if spec == nil || spec.Resources == nil {
			return resource.Quantity{}, nil
		}
		list = pick(*spec.Resources, s[2])
	}
	q := list[corev1.ResourceName(p.segs[len(p.segs)-1])]
	return q.DeepCopy(), nil
}

func pick(r corev1.ResourceRequirements, which string) corev1.ResourceList {
	if which == "requests" {
		return r.Requests
	}
	return r.Limits
}

// Object reads the amount from a task object: a Pod, or a Job's pod template.
func (p Path) Object(obj runtime.Object) (resource.Quantity, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		t := &o.Spec.Template
		return p.Pod(t.Labels, t.Annotations, &t.Spec)
	case *corev1.Pod:
		return p.Pod(o.Labels, o.Annotations, &o.Spec)
	}
	return resource.Quantity{}, fmt.Errorf("unexpected object %T", obj)
}

// Tree returns the value at the path in a pod template tree ({metadata, spec} as maps and lists,
// before decoding), and whether there is one.
func (p Path) Tree(tree any) (any, bool) {
	cur := tree
	for _, seg := range p.segs {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, cur != nil
}

func (p Path) amount(v any) (resource.Quantity, error) {
	q, err := ParseAmount(v)
	if err != nil {
		return q, fmt.Errorf("monitoredResources path %s: %w", p.text, err)
	}
	return q, nil
}

// ParseAmount reads a monitored amount: a quantity string ("1", "0.5", "500m") or a number. It
// must not be negative.
func ParseAmount(v any) (resource.Quantity, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = strings.TrimSpace(v)
	case json.Number:
		s = v.String()
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return resource.Quantity{}, fmt.Errorf("%v is not a quantity", v)
		}
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case resource.Quantity:
		s = v.String()
	default:
		return resource.Quantity{}, fmt.Errorf("%v is not a quantity", v)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("%q is not a quantity such as 1, 0.5 or 500m", s)
	}
	if q.Sign() < 0 {
		return resource.Quantity{}, fmt.Errorf("%q is negative", s)
	}
	return q, nil
}
