package podtemplate

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
)

// validator collects what the API server would reject in a pod template, so a task fails with a
// message naming the field and value instead of a create error.
type validator struct{ problems []*fieldError }

func (v *validator) check(p fieldPath, value any, what string, msgs []string) {
	if len(msgs) > 0 {
		v.problems = append(v.problems, invalid(p, value, "is not a valid "+what+": "+strings.Join(msgs, "; ")))
	}
}

func (v *validator) add(p fieldPath, problem string) {
	v.problems = append(v.problems, &fieldError{path: p, problem: problem})
}

func validatePodTemplate(pt *corev1.PodTemplateSpec) []*fieldError {
	var v validator
	v.labels(fieldPath{"metadata", "labels"}, pt.Labels)
	v.annotations(fieldPath{"metadata", "annotations"}, pt.Annotations)
	spec := fieldPath{"spec"}
	volumes := v.volumes(spec.child("volumes"), pt.Spec.Volumes)
	names := map[string]bool{}
	for i := range pt.Spec.InitContainers {
		v.container(spec.child("initContainers").index(i), &pt.Spec.InitContainers[i], volumes, names)
	}
	if len(pt.Spec.Containers) == 0 {
		v.add(spec.child("containers"), "is required")
	}
	for i := range pt.Spec.Containers {
		v.container(spec.child("containers").index(i), &pt.Spec.Containers[i], volumes, names)
	}
	v.labels(spec.child("nodeSelector"), pt.Spec.NodeSelector)
	for i, s := range pt.Spec.ImagePullSecrets {
		v.check(spec.child("imagePullSecrets").index(i).child("name"), s.Name, "Secret name", content.IsDNS1123Subdomain(s.Name))
	}
	for _, f := range []struct {
		name, value string
	}{{"priorityClassName", pt.Spec.PriorityClassName}, {"schedulerName", pt.Spec.SchedulerName}} {
		if f.value != "" {
			v.check(spec.child(f.name), f.value, "name", content.IsDNS1123Subdomain(f.value))
		}
	}
	for i, t := range pt.Spec.Tolerations {
		v.toleration(spec.child("tolerations").index(i), t)
	}
	return v.problems
}

func (v *validator) labels(p fieldPath, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v.check(p.child(k), k, "label key", content.IsLabelKey(k))
		v.check(p.child(k), labels[k], "label value", content.IsLabelValue(labels[k]))
	}
}

func (v *validator) annotations(p fieldPath, annotations map[string]string) {
	size := 0
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		v.check(p.child(k), k, "annotation key", content.IsLabelKey(strings.ToLower(k)))
		size += len(k) + len(annotations[k])
	}
	if size > apivalidation.TotalAnnotationSizeLimitB {
		v.add(p, fmt.Sprintf("total %d bytes, more than the limit of %d", size, apivalidation.TotalAnnotationSizeLimitB))
	}
}

// volumes checks the volumes and returns their names.
func (v *validator) volumes(p fieldPath, volumes []corev1.Volume) map[string]bool {
	names := map[string]bool{}
	for i, vol := range volumes {
		vp := p.index(i)
		v.check(vp.child("name"), vol.Name, "volume name", content.IsDNS1123Label(vol.Name))
		if names[vol.Name] {
			v.problems = append(v.problems, invalid(vp.child("name"), vol.Name, "is a duplicate volume name"))
		}
		names[vol.Name] = true
		if n := countSet(vol.VolumeSource); n != 1 {
			v.add(vp, fmt.Sprintf("must have exactly one volume type (emptyDir, secret, ...), has %d", n))
		}
	}
	return names
}

// countSet counts the fields of a struct of pointers that are set.
func countSet(s any) int {
	n := 0
	rv := reflect.ValueOf(s)
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			n++
		}
	}
	return n
}

func (v *validator) container(p fieldPath, c *corev1.Container, volumes, names map[string]bool) {
	v.check(p.child("name"), c.Name, "container name", content.IsDNS1123Label(c.Name))
	if names[c.Name] {
		v.problems = append(v.problems, invalid(p.child("name"), c.Name, "is a duplicate container name"))
	}
	names[c.Name] = true
	switch {
	case c.Image == "":
		v.add(p.child("image"), "is required")
	case strings.TrimSpace(c.Image) != c.Image || strings.ContainsAny(c.Image, " \t\r\n"):
		v.problems = append(v.problems, invalid(p.child("image"), c.Image, "is not a valid image: it contains white space"))
	}
	for i, e := range c.Env {
		ep := p.child("env").index(i)
		v.check(ep.child("name"), e.Name, "environment variable name", validation.IsEnvVarName(e.Name))
		if e.Value != "" && e.ValueFrom != nil {
			v.add(ep, "must not have both value and valueFrom")
		}
	}
	mountPaths := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := p.child("volumeMounts").index(i)
		if !volumes[m.Name] {
			v.problems = append(v.problems, invalid(mp.child("name"), m.Name, "is not the name of a volume of the pod"))
		}
		switch {
		case m.MountPath == "":
			v.add(mp.child("mountPath"), "is required")
		case mountPaths[m.MountPath]:
			v.problems = append(v.problems, invalid(mp.child("mountPath"), m.MountPath, "is mounted twice"))
		}
		mountPaths[m.MountPath] = true
	}
	for i, port := range c.Ports {
		pp := p.child("ports").index(i)
		v.check(pp.child("containerPort"), port.ContainerPort, "port number", validation.IsValidPortNum(int(port.ContainerPort)))
		if port.Name != "" {
			v.check(pp.child("name"), port.Name, "port name", validation.IsValidPortName(port.Name))
		}
	}
	v.resources(p.child("resources"), c.Resources)
}

func (v *validator) resources(p fieldPath, r corev1.ResourceRequirements) {
	for _, list := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for name := range list.list {
			v.check(p.child(list.name).child(string(name)), string(name), "resource name", content.IsLabelKey(string(name)))
		}
	}
	for name, request := range r.Requests {
		if limit, ok := r.Limits[name]; ok && request.Cmp(limit) > 0 {
			v.problems = append(v.problems, invalid(p.child("requests").child(string(name)), request.String(),
				fmt.Sprintf("is more than the limit %s", limit.String())))
		}
	}
}

func (v *validator) toleration(p fieldPath, t corev1.Toleration) {
	if t.Key != "" {
		v.check(p.child("key"), t.Key, "toleration key", content.IsLabelKey(t.Key))
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual:
	case corev1.TolerationOpExists:
		if t.Value != "" {
			v.add(p.child("value"), "must be empty when operator is Exists")
		}
	default:
		v.problems = append(v.problems, invalid(p.child("operator"), string(t.Operator), "is not Equal or Exists"))
	}
	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		v.problems = append(v.problems, invalid(p.child("effect"), string(t.Effect), "is not NoSchedule, PreferNoSchedule or NoExecute"))
	}
}
