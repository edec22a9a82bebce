package standalone

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// podSpecKeys are the PodSpec fields that have a template key of their own; every other field
// goes to podSpec (strategic merge). Keys of their own keep the chart's merge rules, so a queue's
// templateOverrides still merges into them (env by name, and so on).
var podSpecKeys = map[string]string{
	"initContainers":     "initContainers",
	"schedulerName":      "schedulerName",
	"volumes":            "volumes",
	"priorityClassName":  "priorityClassName",
	"nodeSelector":       "nodeSelector",
	"tolerations":        "tolerations",
	"affinity":           "affinity",
	"securityContext":    "podSecurityContext",
	"hostAliases":        "hostAliases",
	"serviceAccountName": "serviceAccountName",
}

// containerKeys are the Container fields with a template key of their own; the others go to
// container (strategic merge).
var containerKeys = map[string]string{
	"env":             "env",
	"volumeMounts":    "volumeMounts",
	"resources":       "resources",
	"securityContext": "containerSecurityContext",
}

// podTemplate is a --template-yaml or --overrides-yaml file turned into basePodTemplate keys.
type podTemplate struct {
	keys map[string]any
	// namespace is the manifest's metadata.namespace, where the script creates the pods.
	namespace string
	// notes are what the glue does differently with the file (image replaced, ...), for the log.
	notes []string
}

// readPodTemplate reads a --template-yaml file: a Pod manifest as ClearML's script takes it
// (apiVersion, kind and metadata.name optional; metadata.namespace, labels and annotations; spec
// with containers, the first one the task's), or a Job manifest whose spec.template is one.
//
// The first container is the task's: its name, image, command and args are the glue's (the
// script replaces them the same way), env, volumeMounts, resources and securityContext become
// the template keys of those names, the rest goes to `container`. Further containers are
// sidecars (podSpec.containers). Pod spec fields go to their keys (volumes, nodeSelector, ...)
// or to podSpec. A Job's own fields have no equivalent (the glue sets backoffLimit 0 and
// ttlSecondsAfterFinished) and are refused.
func readPodTemplate(path string) (*podTemplate, error) {
	doc, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	t, err := fromManifest(doc)
	if err != nil {
		return nil, fmt.Errorf("--template-yaml %s: %w", path, err)
	}
	return t, nil
}

// readOverrides reads an --overrides-yaml file as the script reads it: a Pod manifest whose
// containers give only their resources (limits and requests of every container, for the task
// container); the rest of the manifest applies as with --template-yaml.
func readOverrides(path string) (*podTemplate, error) {
	doc, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	spec, _ := doc["spec"].(map[string]any)
	if containers, ok := spec["containers"].([]any); ok {
		resources := map[string]any{}
		for _, c := range containers {
			cm, _ := c.(map[string]any)
			r, _ := cm["resources"].(map[string]any)
			for kind, v := range r {
				m, _ := v.(map[string]any)
				have, _ := resources[strings.ToLower(kind)].(map[string]any)
				if have == nil {
					have = map[string]any{}
				}
				maps.Copy(have, m)
				resources[strings.ToLower(kind)] = have
			}
		}
		spec = maps.Clone(spec)
		delete(spec, "containers")
		doc = maps.Clone(doc)
		doc["spec"] = spec
		t, err := fromManifest(doc)
		if err != nil {
			return nil, fmt.Errorf("--overrides-yaml %s: %w", path, err)
		}
		if len(resources) > 0 {
			t.keys["resources"] = resources
		}
		return t, nil
	}
	t, err := fromManifest(doc)
	if err != nil {
		return nil, fmt.Errorf("--overrides-yaml %s: %w", path, err)
	}
	return t, nil
}

func readManifest(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc := map[string]any{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

func fromManifest(doc map[string]any) (*podTemplate, error) {
	t := &podTemplate{keys: map[string]any{}}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if k != "apiVersion" && k != "kind" && k != "metadata" && k != "spec" {
			return nil, fmt.Errorf("%s: not a field of a Pod or Job manifest", k)
		}
	}
	kind, _ := doc["kind"].(string)
	meta, err := asMap(doc["metadata"], "metadata")
	if err != nil {
		return nil, err
	}
	spec, err := asMap(doc["spec"], "spec")
	if err != nil {
		return nil, err
	}
	var podMeta map[string]any
	switch strings.ToLower(kind) {
	case "", "pod":
	case "job":
		tmpl, err := asMap(spec["template"], "spec.template")
		if err != nil {
			return nil, err
		}
		for _, k := range slices.Sorted(maps.Keys(spec)) {
			switch k {
			case "template":
			case "backoffLimit":
				if n, ok := spec[k].(float64); !ok || n != 0 {
					return nil, fmt.Errorf("spec.backoffLimit: %v has no equivalent: the glue's Jobs have backoffLimit 0 (ClearML retries tasks, not Kubernetes)", spec[k])
				}
			default:
				return nil, fmt.Errorf("spec.%s: a Job field with no equivalent (the glue sets the Job's own fields; template keys describe its pod)", k)
			}
		}
		if podMeta, err = asMap(tmpl["metadata"], "spec.template.metadata"); err != nil {
			return nil, err
		}
		if spec, err = asMap(tmpl["spec"], "spec.template.spec"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("kind %s: want a Pod or a Job", kind)
	}
	if err := t.metadata(meta, "metadata"); err != nil {
		return nil, err
	}
	if podMeta != nil {
		if err := t.metadata(podMeta, "spec.template.metadata"); err != nil {
			return nil, err
		}
	}
	return t, t.podSpec(spec)
}

// metadata takes labels and annotations (a Job's and its pod template's both label the Job and
// its pod, the pod's winning) and the namespace.
func (t *podTemplate) metadata(meta map[string]any, path string) error {
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		switch k {
		case "name", "generateName":
			t.notes = append(t.notes, path+"."+k+" is not used: task objects are named "+DefaultPodNamePrefix+"<task id>")
		case "namespace":
			ns, _ := meta[k].(string)
			if t.namespace != "" && ns != t.namespace {
				return fmt.Errorf("%s.namespace %q differs from metadata.namespace %q", path, ns, t.namespace)
			}
			t.namespace = ns
		case "labels", "annotations":
			m, err := asMap(meta[k], path+"."+k)
			if err != nil {
				return err
			}
			have, _ := t.keys[k].(map[string]any)
			merged := maps.Clone(have)
			if merged == nil {
				merged = map[string]any{}
			}
			maps.Copy(merged, m)
			if len(merged) > 0 {
				t.keys[k] = merged
			}
		default:
			return fmt.Errorf("%s.%s has no equivalent: only labels, annotations and namespace are used", path, k)
		}
	}
	return nil
}

func (t *podTemplate) podSpec(spec map[string]any) error {
	podSpec := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(spec)) {
		v := spec[k]
		switch key, own := podSpecKeys[k]; {
		case k == "containers":
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("spec.containers: want a list")
			}
			if len(list) == 0 {
				continue
			}
			main, err := asMap(list[0], "spec.containers[0]")
			if err != nil {
				return err
			}
			t.container(main)
			if len(list) > 1 {
				podSpec["containers"] = list[1:]
			}
		case own:
			t.keys[key] = v
		default:
			podSpec[k] = v
		}
	}
	if len(podSpec) > 0 {
		t.keys["podSpec"] = podSpec
	}
	return nil
}

func (t *podTemplate) container(c map[string]any) {
	rest := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(c)) {
		switch key, own := containerKeys[k]; {
		case k == "name":
		case k == "image":
			t.notes = append(t.notes, "spec.containers[0].image is not used: the task's image runs (else the queue's or the default image), as with the script")
		case own:
			t.keys[key] = c[k]
		default:
			rest[k] = c[k]
		}
	}
	if len(rest) > 0 {
		t.keys["container"] = rest
	}
}

func asMap(v any, path string) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a map, got %T", path, v)
	}
	return m, nil
}
