package admission

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Paths is a parsed monitoredResources field name: alternatives separated by "|", each
// "resources.limits.<resource>" or "resources.requests.<resource>" (the resource name keeps its
// dots, e.g. nvidia.com/gpu). The first alternative found wins.
type Paths []path

type path struct {
	list string // "limits" or "requests"
	name corev1.ResourceName
}

// ParsePaths parses a field name; a malformed alternative is an error naming it.
func ParsePaths(field string) (Paths, error) {
	var out Paths
	for alt := range strings.SplitSeq(field, "|") {
		alt = strings.TrimSpace(alt)
		parts := strings.SplitN(alt, ".", 3)
		if len(parts) != 3 || parts[0] != "resources" || (parts[1] != "limits" && parts[1] != "requests") || parts[2] == "" {
			return nil, fmt.Errorf("%q is not resources.limits.<name> or resources.requests.<name>", alt)
		}
		out = append(out, path{list: parts[1], name: corev1.ResourceName(parts[2])})
	}
	return out, nil
}

// MustParsePaths is ParsePaths for field names validated already (config.File.Validate).
func MustParsePaths(field string) Paths {
	p, err := ParsePaths(field)
	if err != nil {
		panic(err)
	}
	return p
}

// Amount sums, over the pod's containers, the first alternative any container sets, in
// milli-units (so "0.5" GPU counts as 500).
func (p Paths) Amount(spec *corev1.PodSpec) int64 {
	for _, alt := range p {
		var found bool
		var sum int64
		for _, c := range spec.Containers {
			list := c.Resources.Limits
			if alt.list == "requests" {
				list = c.Resources.Requests
			}
			if q, ok := list[alt.name]; ok {
				found = true
				sum += q.MilliValue()
			}
		}
		if found {
			return sum
		}
	}
	return 0
}

// TemplateNeed reads the resource a queue's tasks ask for from its template values (override
// first, then base), in milli-units. A value only known per task (a template string) counts 0.
func (p Paths) TemplateNeed(templates ...map[string]any) int64 {
	for _, alt := range p {
		for _, tmpl := range templates {
			res, _ := tmpl["resources"].(map[string]any)
			list, _ := res[alt.list].(map[string]any)
			v, ok := list[string(alt.name)]
			if !ok {
				continue
			}
			qty, err := resource.ParseQuantity(fmt.Sprint(v))
			if err != nil {
				return 0
			}
			return qty.MilliValue()
		}
	}
	return 0
}
