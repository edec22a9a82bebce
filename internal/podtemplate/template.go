package podtemplate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// templateKey says how one key of a basePodTemplate or templateOverrides is checked, merged and
// placed into the pod template.
type templateKey struct {
	name string
	// target returns a pointer to the type the key's value must decode into.
	target func() any
	merge  mergeRule
	// directives says the value may hold strategic-merge-patch directives ($patch, ...).
	directives bool
	// at is where the value goes: a path under the pod template, or under "container" (the task's
	// container). A list appends to a list already there (volumes, then extraVolumes). Empty for
	// keys handled on their own (podSpec, container, fileMounts).
	at []string
}

func targetOf[T any]() func() any { return func() any { return new(T) } }

// fileMount is an entry of fileMounts, the open-source chart's shape.
type fileMount struct {
	Name        string `json:"name"`
	FolderPath  string `json:"folderPath"`
	FileContent string `json:"fileContent"`
}

// templateKeys holds every key of config.TemplateKeys, in the order they are placed.
var templateKeys = []templateKey{
	placed("labels", targetOf[map[string]string](), deepMerge, "metadata", "labels"),
	placed("annotations", targetOf[map[string]string](), deepMerge, "metadata", "annotations"),
	placed("initContainers", targetOf[[]corev1.Container](), deepMerge, "spec", "initContainers"),
	placed("schedulerName", targetOf[string](), deepMerge, "spec", "schedulerName"),
	placed("volumes", targetOf[[]corev1.Volume](), deepMerge, "spec", "volumes"),
	placed("volumeMounts", targetOf[[]corev1.VolumeMount](), deepMerge, "container", "volumeMounts"),
	placed("fileMounts", targetOf[[]fileMount](), deepMerge),
	placed("env", targetOf[[]corev1.EnvVar](), deepMerge, "container", "env"),
	placed("resources", targetOf[corev1.ResourceRequirements](), deepMerge, "container", "resources"),
	placed("priorityClassName", targetOf[string](), deepMerge, "spec", "priorityClassName"),
	placed("nodeSelector", targetOf[map[string]string](), deepMerge, "spec", "nodeSelector"),
	placed("tolerations", targetOf[[]corev1.Toleration](), deepMerge, "spec", "tolerations"),
	placed("affinity", targetOf[corev1.Affinity](), deepMerge, "spec", "affinity"),
	placed("podSecurityContext", targetOf[corev1.PodSecurityContext](), deepMerge, "spec", "securityContext"),
	placed("containerSecurityContext", targetOf[corev1.SecurityContext](), deepMerge, "container", "securityContext"),
	placed("hostAliases", targetOf[[]corev1.HostAlias](), deepMerge, "spec", "hostAliases"),
	placed("extraVolumes", targetOf[[]corev1.Volume](), appendLists, "spec", "volumes"),
	placed("extraVolumeMounts", targetOf[[]corev1.VolumeMount](), appendLists, "container", "volumeMounts"),
	placed("serviceAccountName", targetOf[string](), deepMerge, "spec", "serviceAccountName"),
	patched("podSpec", targetOf[corev1.PodSpec](), corev1.PodSpec{}),
	patched("container", targetOf[corev1.Container](), corev1.Container{}),
}

func placed(name string, target func() any, merge mergeRule, at ...string) templateKey {
	return templateKey{name: name, target: target, merge: merge, at: at}
}

// patched is a raw pass-through key: strategic-merged, and applied after the placed keys.
func patched(name string, target func() any, dataStruct any) templateKey {
	return templateKey{name: name, target: target, merge: strategic(dataStruct), directives: true}
}

// mainContainer names the task's container until Build names it after the object; strategic merges
// need every container to have a name.
const mainContainer = "clearml-task"

// mergeTemplates merges override into base key by key.
func mergeTemplates(base, override map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range templateKeys {
		b, o := base[k.name], override[k.name]
		_, overridden := override[k.name]
		switch {
		case !overridden && b != nil:
			out[k.name] = withoutNulls(b)
		case o == nil:
			// Absent everywhere, or removed by an explicit null.
		case b == nil:
			out[k.name] = withoutNulls(o)
		default:
			v, err := k.merge(k.name, b, o)
			if err != nil {
				return nil, err
			}
			out[k.name] = v
		}
	}
	return out, nil
}

// assemble places a merged template into a pod template tree ({metadata, spec}) whose first
// container is the task's. podSpec and container are strategic-merged last, so the raw keys win.
func assemble(t map[string]any) (map[string]any, error) {
	pod := map[string]any{"metadata": map[string]any{}, "spec": map[string]any{}}
	main := map[string]any{"name": mainContainer}
	for _, k := range templateKeys {
		v, ok := t[k.name]
		if !ok || len(k.at) == 0 {
			continue
		}
		dst, at := pod, k.at
		if at[0] == "container" {
			dst, at = main, at[1:]
		}
		put(dst, at, v)
	}
	if c, ok := t["container"]; ok {
		merged, err := strategic(corev1.Container{})("container", main, c)
		if err != nil {
			return nil, err
		}
		main = merged.(map[string]any)
		main["name"] = mainContainer
	}
	spec := pod["spec"].(map[string]any)
	spec["containers"] = []any{main}
	if ps, ok := t["podSpec"]; ok {
		merged, err := strategic(corev1.PodSpec{})("podSpec", spec, ps)
		if err != nil {
			return nil, err
		}
		spec = merged.(map[string]any)
		pod["spec"] = spec
	}
	// A strategic merge orders new list elements first; the task's container must stay first.
	containers, _ := spec["containers"].([]any)
	i := indexByName(containers, mainContainer)
	if i < 0 {
		return nil, fmt.Errorf("podSpec.containers: the task's container was removed")
	}
	spec["containers"] = append([]any{containers[i]}, append(containers[:i:i], containers[i+1:]...)...)
	return pod, nil
}

// put sets dst at path to v, appending when both are lists.
func put(dst map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := dst[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			dst[k] = next
		}
		dst = next
	}
	last := path[len(path)-1]
	if have, ok := dst[last].([]any); ok {
		if add, ok := v.([]any); ok {
			dst[last] = append(have, add...)
			return
		}
	}
	dst[last] = v
}
