package podtemplate

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

// Owner tokens (config.File.UseOwnerToken): the task container reads its owner's session token
// from OwnerTokenEnv, set from the key OwnerTokenKey of a Secret the scheduler creates per object.
const (
	OwnerTokenEnv = "CLEARML_AUTH_TOKEN"
	OwnerTokenKey = "token"
)

// OwnerTokenSecretName is the name of the Secret holding the owner token of one launch of a
// task: the object's name, "-token", and suffix when given. The scheduler gives each launch a
// suffix of its own, so a Secret of an earlier run that Kubernetes has not deleted yet (or an
// orphaned one) never stands in for the new one.
func OwnerTokenSecretName(taskID, suffix string) string {
	name := ObjectName(taskID) + "-token"
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// addCredentials gives the task container what it authenticates with, by Secret reference only:
// the glue's own key (TaskIdentityGlue, the open-source chart's behaviour), the task pods' own
// key (TaskIdentityTask), or its owner's session token (TaskIdentityOwner) and no key at all.
func (b *Builder) addCredentials(c *corev1.Container, taskID, tokenSecret string) {
	refs := b.cfg.ClearML
	ref := func(name, secret, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
		}}}
	}
	switch b.cfg.TaskIdentity() {
	case config.TaskIdentityOwner:
		if tokenSecret == "" {
			tokenSecret = OwnerTokenSecretName(taskID, "")
		}
		setEnv(c, ref(OwnerTokenEnv, tokenSecret, OwnerTokenKey))
	case config.TaskIdentityTask:
		setEnv(c, ref("CLEARML_API_ACCESS_KEY", refs.TaskCredentialsSecret, config.TaskCredentialsAccessKeyKey))
		setEnv(c, ref("CLEARML_API_SECRET_KEY", refs.TaskCredentialsSecret, config.TaskCredentialsSecretKeyKey))
	default:
		if refs.CredentialsSecret != "" {
			setEnv(c, ref("CLEARML_API_ACCESS_KEY", refs.CredentialsSecret, config.CredentialsAccessKeyKey))
			setEnv(c, ref("CLEARML_API_SECRET_KEY", refs.CredentialsSecret, config.CredentialsSecretKeyKey))
		}
	}
}

// glueSecretRefs refuses, once task pods have an identity of their own, any reference a
// template makes to the glue's credentials Secret (env, envFrom, volumes, projected volumes),
// which would hand the glue's identity back to every task.
func (b *Builder) glueSecretRefs(spec *corev1.PodSpec) []*fieldError {
	glue := b.cfg.ClearML.CredentialsSecret
	if glue == "" || b.cfg.TaskIdentity() == config.TaskIdentityGlue {
		return nil
	}
	why := "is the glue's own credentials Secret; task pods must not read it with " +
		map[string]string{config.TaskIdentityTask: "clearml.taskCredentials", config.TaskIdentityOwner: "agentk8sglue.useOwnerToken"}[b.cfg.TaskIdentity()]
	var problems []*fieldError
	containers := func(kind string, cs []corev1.Container) {
		for i, c := range cs {
			p := fieldPath{"spec", kind}.index(i)
			for j, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == glue {
					problems = append(problems, invalid(p.child("env").index(j).child("valueFrom").child("secretKeyRef").child("name"), glue, why))
				}
			}
			for j, e := range c.EnvFrom {
				if e.SecretRef != nil && e.SecretRef.Name == glue {
					problems = append(problems, invalid(p.child("envFrom").index(j).child("secretRef").child("name"), glue, why))
				}
			}
		}
	}
	containers("initContainers", spec.InitContainers)
	containers("containers", spec.Containers)
	for i, v := range spec.Volumes {
		p := fieldPath{"spec", "volumes"}.index(i)
		if v.Secret != nil && v.Secret.SecretName == glue {
			problems = append(problems, invalid(p.child("secret").child("secretName"), glue, why))
		}
		if v.Projected != nil {
			for j, src := range v.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == glue {
					problems = append(problems, invalid(p.child("projected").child("sources").index(j).child("secret").child("name"), glue, why))
				}
			}
		}
	}
	return problems
}

// SecretNames returns every Secret a pod spec can read: env and envFrom of all its containers,
// secret and projected volumes, and image pull Secrets. Tests use it to check what a task pod
// can reach.
func SecretNames(spec *corev1.PodSpec) []string {
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					add(e.ValueFrom.SecretKeyRef.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					add(e.SecretRef.Name)
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					add(src.Secret.Name)
				}
			}
		}
	}
	for _, s := range spec.ImagePullSecrets {
		add(s.Name)
	}
	return names
}
