package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// lookupTTL is how long a project name or a user object read from ClearML is reused.
const lookupTTL = 5 * time.Minute

// lookupCacheMax bounds each cache; past it the cache starts afresh.
const lookupCacheMax = 10000

// lookupCache keeps project names (projects.get_all by id) and task owners (users.get_by_id)
// for the templates that read them. The zero value is ready.
type lookupCache struct {
	mu       sync.Mutex
	projects map[string]cached[string]
	users    map[string]cached[map[string]any]
}

type cached[T any] struct {
	value T
	at    time.Time
}

func get[T any](c *lookupCache, m map[string]cached[T], key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := m[key]
	if !ok || time.Since(e.at) > lookupTTL {
		var zero T
		return zero, false
	}
	return e.value, true
}

func put[T any](c *lookupCache, m *map[string]cached[T], key string, value T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil || len(*m) >= lookupCacheMax {
		*m = map[string]cached[T]{}
	}
	(*m)[key] = cached[T]{value: value, at: time.Now()}
}

// lookUp fills in the project name and the owner's user object when a template of the queue
// reads them (podtemplate.Builder.Lookups), from the cache or from ClearML. A project or user
// that no longer exists is left empty (templates fall back to their defaults); any other error is
// returned, and the launch gives the task back.
func (s *Scheduler) lookUp(ctx context.Context, snap *Snapshot, queue string, task map[string]any, in *podtemplate.Input) error {
	wantProject, wantUser := snap.Builder.Lookups(queue)
	if id, _ := task["project"].(string); wantProject && id != "" {
		name, ok := get(&s.lookups, s.lookups.projects, id)
		if !ok {
			projects, err := s.opts.Client.ProjectsGetAll(ctx, clearml.ProjectsGetAllRequest{ID: []string{id}, OnlyFields: []string{"id", "name"}})
			if err != nil {
				return fmt.Errorf("project %s: %w", id, err)
			}
			for _, p := range projects {
				if p.ID == id {
					name = p.Name
				}
			}
			put(&s.lookups, &s.lookups.projects, id, name)
		}
		in.ProjectName = name
	}
	if id, _ := task["user"].(string); wantUser && id != "" {
		user, ok := get(&s.lookups, s.lookups.users, id)
		if !ok {
			var out struct {
				User map[string]any `json:"user"`
			}
			err := s.opts.Client.Call(ctx, "users.get_by_id", map[string]string{"user": id}, &out)
			switch {
			case clearml.IsInvalidUserID(err):
				out.User = nil
			case err != nil:
				return fmt.Errorf("user %s: %w", id, err)
			}
			user = out.User
			put(&s.lookups, &s.lookups.users, id, user)
		}
		in.User = user
	}
	return nil
}

// setProperties records the task's user properties as the Python glue does: k8s-queue (the UI
// and clearml-session read it; the glue itself trusts only its objects' labels) and, in sessions
// port mode, what clearml-session connects with: k8s-pod-port (the port of the Service that
// selects the pod), k8s-gateway-address (sessions.externalIP), k8s-pod-number, k8s-agent,
// k8s-pod-label and k8s-internal-pod-count.
func (s *Scheduler) setProperties(ctx context.Context, snap *Snapshot, taskID, queue string, slot int, log *slog.Logger) {
	props := []clearml.HyperParam{{Section: "properties", Name: "k8s-queue", Value: queue}}
	if sess := snap.File.Sessions; sess.PortModeEnabled && slot > 0 {
		agent := podtemplate.LabelAgent + "=" + podtemplate.SanitizeLabelValue(snap.File.AgentName)
		props = append(props,
			clearml.HyperParam{Section: "properties", Name: "k8s-pod-number", Value: strconv.Itoa(slot)},
			clearml.HyperParam{Section: "properties", Name: "k8s-pod-label", Value: agent},
			clearml.HyperParam{Section: "properties", Name: "k8s-internal-pod-count", Value: strconv.Itoa(slot - 1)},
			clearml.HyperParam{Section: "properties", Name: "k8s-agent", Value: agent},
			clearml.HyperParam{Section: "properties", Name: "k8s-pod-port", Value: strconv.Itoa(s.sessionPort(ctx, snap, slot, log))},
		)
		if sess.ExternalIP != "" {
			props = append(props, clearml.HyperParam{Section: "properties", Name: "k8s-gateway-address", Value: sess.ExternalIP})
		}
	}
	if err := s.opts.Ops.SetProperties(ctx, taskID, props); err != nil {
		log.Warn("could not set the task's k8s properties", "err", err)
	}
}

// sessionPort returns the port clients reach the pod of slot on: the nodePort (else the port)
// of the Service that selects it, as the chart renders them (startingPort + slot).
func (s *Scheduler) sessionPort(ctx context.Context, snap *Snapshot, slot int, log *slog.Logger) int {
	want := fmt.Sprintf("pod-%d", slot)
	list, err := s.opts.Clientset.CoreV1().Services(snap.File.Namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, svc := range list.Items {
			if len(svc.Spec.Selector) == 1 && svc.Spec.Selector[podtemplate.LabelPortSlot] == want && len(svc.Spec.Ports) > 0 {
				if p := sessionServicePort(svc); p > 0 {
					return p
				}
			}
		}
		err = fmt.Errorf("no Service selects %s=%s", podtemplate.LabelPortSlot, want)
	}
	port := snap.File.Sessions.StartingPort + slot
	log.Warn("session Service not found; k8s-pod-port is startingPort + pod number", "port", port, "err", err)
	return port
}

func sessionServicePort(svc corev1.Service) int {
	for _, p := range svc.Spec.Ports {
		if p.NodePort > 0 {
			return int(p.NodePort)
		}
	}
	return int(svc.Spec.Ports[0].Port)
}

// recordImage writes the image that runs back to a task that named none, as the Python glue
// does, so the task's container section shows it. Arguments and setup script are kept.
func (s *Scheduler) recordImage(ctx context.Context, task map[string]any, obj podtemplate.Object, log *slog.Logger) {
	container, _ := task["container"].(map[string]any)
	if image, _ := container["image"].(string); strings.TrimSpace(image) != "" {
		return
	}
	spec := podSpec(obj)
	if spec == nil || len(spec.Containers) == 0 {
		return
	}
	c := &clearml.Container{Image: spec.Containers[0].Image}
	c.Arguments, _ = container["arguments"].(string)
	c.SetupShellScript, _ = container["setup_shell_script"].(string)
	id, _ := task["id"].(string)
	if err := s.opts.Ops.SetContainer(ctx, id, c); err != nil {
		log.Warn("could not record the image on the task", "image", c.Image, "err", err)
	}
}

func podSpec(obj podtemplate.Object) *corev1.PodSpec {
	switch o := obj.(type) {
	case *batchv1.Job:
		return &o.Spec.Template.Spec
	case *corev1.Pod:
		return &o.Spec
	}
	return nil
}
