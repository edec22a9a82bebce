package scheduler

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/cenkalti/backoff/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// Owner tokens (config.File.UseOwnerToken), in the launch:
//
//  1. The object is built referencing a Secret named for this launch
//     (podtemplate.OwnerTokenSecretName with a random suffix): a name of its own per launch, so
//     a Secret of an earlier run that the garbage collector has not removed yet (or an orphaned
//     one) can never hand the new pod a stale token, and the controller needs no right to read,
//     replace or delete Secrets.
//  2. The owner's token is obtained (clearml.Client.LoginAs) after the object is built and
//     admitted, right before it is created: a template error or a task that does not fit costs
//     no impersonation. A refusal fails the task naming its owner; a server that cannot answer
//     gives it back to the front of its queue.
//  3. The object is created, then the Secret, with an ownerReference to the object's UID, so
//     Kubernetes deletes it with the Job (or Pod). The object comes first because the
//     ownerReference needs its UID; creating the Secret first would need a second write
//     (patch, an extra right) and would leave a live token without an owner if the glue died in
//     between. The pod meanwhile waits in CreateContainerConfigError, retried by the kubelet,
//     usually for well under a second. Should the Secret not be created, the object is
//     deleted and the task fails with the reason.
//
// The token is in the Secret's data only: never in the object, a log line, an Event or the
// task's log. What the glue logs and reports names the owner and the Secret.

// ownerTokenSuffix is a suffix of 5 characters of [a-z0-9], like a generateName's.
func ownerTokenSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // Kubernetes' rand.String alphabet: no vowels, no 0/1/3
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// ownerToken gets a token of the task's owner. It reports false when the launch ends here:
// the task failed (a refusal, naming the owner) or was given back (ClearML unreachable).
func (s *Scheduler) ownerToken(ctx context.Context, log *slog.Logger, task map[string]any, taskID, queueID string) (clearml.OwnerToken, bool) {
	owner, _ := task["user"].(string)
	company, _ := task["company"].(string)
	tok, err := s.opts.Client.LoginAs(ctx, owner, company)
	if err == nil {
		log.Debug("got the owner's token", "owner", owner, "expires", tok.Claims.Expires)
		return tok, true
	}
	metrics.ClearMLErrors.WithLabelValues("auth.login").Inc()
	if ownerTokenTransient(err) {
		log.Warn("could not get the task owner's token; task goes back to the front of its queue", "owner", owner, "err", err)
		s.giveBack(ctx, taskID, queueID, "could not get the owner's token")
		return clearml.OwnerToken{}, false
	}
	s.failLaunch(ctx, taskID, OwnerTokenFailure(owner, err))
	return clearml.OwnerToken{}, false
}

// OwnerTokenFailure is the reason a task fails with when its owner cannot be impersonated: it
// names the owner and what the server said, never a token.
func OwnerTokenFailure(owner string, err error) string {
	if owner == "" {
		return "cannot run the task as its owner (agentk8sglue.useOwnerToken): the task has no owner"
	}
	why := err.Error()
	var apiErr *clearml.APIError
	if errors.As(err, &apiErr) {
		why = fmt.Sprintf("ClearML answered %d/%d %s", apiErr.ResultCode, apiErr.Subcode, apiErr.Msg)
	}
	return fmt.Sprintf("cannot run the task as its owner, user %s (agentk8sglue.useOwnerToken): %s", owner, why)
}

// ownerTokenTransient says whether a failed impersonation may pass by itself: ClearML
// unreachable, throttling or unavailable, or the glue's own session rejected (401), none of
// which says anything about the task's owner. The server's refusals (400/6 and other 4xx) and
// answers that are not the owner's token fail the task.
func ownerTokenTransient(err error) bool {
	var apiErr *clearml.APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatus == http.StatusUnauthorized || apiErr.HTTPStatus == http.StatusTooManyRequests || apiErr.HTTPStatus >= 500
	}
	return !errors.Is(err, clearml.ErrNotImpersonated)
}

// ownerTokenSecret is the Secret that hands the owner's token to one object's pod. It belongs
// to the object (ownerReference, without blockOwnerDeletion, which would need a right on the
// object's finalizers), carries the object's agent and task labels, and is immutable.
func ownerTokenSecret(obj podtemplate.Object, name, token string) *corev1.Secret {
	labels := map[string]string{}
	for _, k := range []string{podtemplate.LabelAgent, podtemplate.LabelTaskID} {
		if v, ok := obj.GetLabels()[k]; ok {
			labels[k] = v
		}
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: obj.GetNamespace(), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: obj.GetName(), UID: obj.GetUID(),
			}},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: new(true),
		Data:      map[string][]byte{podtemplate.OwnerTokenKey: []byte(token)},
	}
}

// storeOwnerToken creates the Secret with the owner's token once the object exists, retrying
// while the API server is unreachable. It reports false when the launch ends here: the object
// was deleted again and the task failed with the reason (the Secret's name, never the token).
func (s *Scheduler) storeOwnerToken(ctx context.Context, log *slog.Logger, obj podtemplate.Object, name string, tok clearml.OwnerToken, taskID string) bool {
	secret := ownerTokenSecret(obj, name, tok.Token)
	op := func() (struct{}, error) {
		_, err := s.opts.Clientset.CoreV1().Secrets(secret.Namespace).Create(ctx, secret, metav1.CreateOptions{})
		if err == nil {
			return struct{}{}, nil
		}
		metrics.KubernetesErrors.WithLabelValues("create").Inc()
		if !transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}
	_, err := backoff.Retry(ctx, op, backoff.WithMaxElapsedTime(s.opts.CreateRetry),
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: createRetryInitial, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: createRetryMax}))
	if err == nil {
		log.Info("owner token Secret created", "secret", name, "owner", tok.Claims.Identity.User)
		return true
	}
	// Without its token the pod would wait forever: take the object back.
	log.Error("could not create the owner token Secret; deleting the object", "secret", name, "err", err)
	if derr := s.deleteObject(ctx, obj); derr != nil && !apierrors.IsNotFound(derr) {
		log.Error("could not delete the object left without its token", "object", obj.GetName(), "err", derr)
	}
	s.failLaunch(ctx, taskID, fmt.Sprintf("could not create Secret %s with the owner's token for %s %s: %v", name, kindOf(obj), obj.GetName(), err))
	return false
}

// deleteObject deletes the object this launch created (by UID), with its pods.
func (s *Scheduler) deleteObject(ctx context.Context, obj podtemplate.Object) error {
	bg := metav1.DeletePropagationBackground
	uid := obj.GetUID()
	opts := metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}
	if kindOf(obj) == "Job" {
		return s.opts.Clientset.BatchV1().Jobs(obj.GetNamespace()).Delete(ctx, obj.GetName(), opts)
	}
	return s.opts.Clientset.CoreV1().Pods(obj.GetNamespace()).Delete(ctx, obj.GetName(), opts)
}

// identityNote remembers what the glue last said about the identity of task pods.
type identityNote struct {
	snap     *Snapshot
	identity string
}

// noteIdentity says, at start and whenever a new configuration changes it, what task pods act
// as on ClearML: a warning while they carry the glue's own credentials, and an error when
// owner tokens are on but the glue's session may not impersonate (every task would fail).
// Callers hold s.mu.
func (s *Scheduler) noteIdentity(snap *Snapshot) {
	if s.note.snap == snap {
		return
	}
	s.note.snap = snap
	identity := snap.File.TaskIdentity()
	if identity == s.note.identity {
		return
	}
	s.note.identity = identity
	log := s.opts.Logger
	switch identity {
	case config.TaskIdentityGlue:
		log.Warn(config.GlueIdentityWarning, "credentialsSecret", snap.File.ClearML.CredentialsSecret)
	case config.TaskIdentityTask:
		log.Info("task pods use their own ClearML credentials", "taskCredentialsSecret", snap.File.ClearML.TaskCredentialsSecret)
	case config.TaskIdentityOwner:
		claims, ok := s.opts.Client.Claims()
		if ok && !clearml.CanImpersonate(claims) {
			log.Error("agentk8sglue.useOwnerToken: the glue's ClearML key may not impersonate users, so every task will fail; "+
				"use a key of an admin (or an Enterprise service account allowed to impersonate)",
				"role", claims.Identity.Role, "user", claims.Identity.User)
			return
		}
		log.Info("task pods run as their task's owner, with a token in a Secret of their own (agentk8sglue.useOwnerToken)")
	}
}
