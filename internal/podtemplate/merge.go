package podtemplate

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// namedLists are the lists whose elements merge by "name", wherever they appear in a template
// (top level, or inside initContainers); every other list is replaced by the override.
var namedLists = map[string]bool{
	"env": true, "volumes": true, "volumeMounts": true, "initContainers": true, "ports": true,
}

// mergeRule merges an override value into a base value of one template key. Both are non-nil.
type mergeRule func(key string, base, override any) (any, error)

// deepMerge: maps merge key by key, override wins, an explicit null removes the key; named lists
// merge element by element; anything else is replaced.
func deepMerge(key string, base, override any) (any, error) {
	return mergeValue(key, base, override), nil
}

// appendLists concatenates base and override (extraVolumes, extraVolumeMounts), so a queue adds
// to what the base template has rather than repeating it.
func appendLists(_ string, base, override any) (any, error) {
	b, okB := base.([]any)
	o, okO := override.([]any)
	if !okB || !okO {
		return withoutNulls(override), nil
	}
	return append(withoutNulls(b).([]any), withoutNulls(o).([]any)...), nil
}

// strategic merges with Kubernetes strategic-merge-patch semantics for dataStruct's type: the raw
// pass-through keys (podSpec, container) behave as kubectl patch would.
func strategic(dataStruct any) mergeRule {
	return func(key string, base, override any) (any, error) {
		b, okB := base.(map[string]any)
		o, okO := override.(map[string]any)
		if !okB || !okO {
			return nil, fmt.Errorf("%s: must be an object", key)
		}
		// StrategicMergeMapPatch changes its arguments, and these belong to the config.
		merged, err := strategicpatch.StrategicMergeMapPatch(withoutNulls(b).(map[string]any), deepCopy(o).(map[string]any), dataStruct)
		if err != nil {
			return nil, fmt.Errorf("%s: strategic merge: %w", key, err)
		}
		return map[string]any(merged), nil
	}
}

func mergeValue(key string, base, override any) any {
	switch o := override.(type) {
	case map[string]any:
		if b, ok := base.(map[string]any); ok {
			return mergeMaps(b, o)
		}
	case []any:
		if b, ok := base.([]any); ok && namedLists[key] {
			return mergeNamed(b, o)
		}
	}
	return withoutNulls(override)
}

func mergeMaps(base, override map[string]any) map[string]any {
	out := withoutNulls(base).(map[string]any)
	for k, o := range override {
		if o == nil {
			delete(out, k)
			continue
		}
		if b, ok := out[k]; ok {
			out[k] = mergeValue(k, b, o)
		} else {
			out[k] = withoutNulls(o)
		}
	}
	return out
}

// mergeNamed merges each override element into the base element of the same name, in place, or
// appends it; elements without a name are appended.
func mergeNamed(base, override []any) []any {
	out := withoutNulls(base).([]any)
	for _, o := range override {
		if i := indexByName(out, nameOf(o)); i >= 0 {
			out[i] = mergeValue("", out[i], o)
		} else {
			out = append(out, withoutNulls(o))
		}
	}
	return out
}

func nameOf(v any) string {
	m, _ := v.(map[string]any)
	name, _ := m["name"].(string)
	return name
}

func indexByName(list []any, name string) int {
	if name == "" {
		return -1
	}
	for i, v := range list {
		if nameOf(v) == name {
			return i
		}
	}
	return -1
}

// withoutNulls deep-copies v, leaving out null map values: a null only ever means "absent".
func withoutNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if e != nil {
				out[k] = withoutNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutNulls(e)
		}
		return out
	default:
		return v
	}
}

// deepCopy copies maps and lists, keeping nulls (a strategic merge patch needs them).
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}
