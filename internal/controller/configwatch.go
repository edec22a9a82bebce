package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/scheduler"
)

// configWatch keeps the newest valid glue config. In the cluster it watches only its own ConfigMap
// (a field selector on the name, which is also what lets the chart's Role restrict it by
// resourceNames); run outside the chart it reads a file source instead (filesource.go).
type configWatch struct {
	namespace, name string
	recorder        record.EventRecorder
	logger          *slog.Logger
	current         atomic.Pointer[scheduler.Snapshot]
	configMap       atomic.Pointer[corev1.ConfigMap] // the newest version seen, for Events
	lastVersion     string
	first           chan struct{}
	wake            chan struct{}
	// reloaded is signalled after each version taken, for the preflight checks (wake is the
	// scheduler's).
	reloaded chan struct{}
}

func newConfigWatch(namespace, name string, recorder record.EventRecorder, logger *slog.Logger) *configWatch {
	return &configWatch{namespace: namespace, name: name, recorder: recorder, logger: logger,
		first: make(chan struct{}), wake: make(chan struct{}, 1), reloaded: make(chan struct{}, 1)}
}

// start runs the ConfigMap informer until ctx ends.
func (w *configWatch) start(ctx context.Context, cs kubernetes.Interface) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(w.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.name).String()
		}))
	inf := factory.Core().V1().ConfigMaps().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.load,
		UpdateFunc: func(_, o any) { w.load(o) },
	})
	factory.Start(ctx.Done())
}

// load parses a ConfigMap version; an invalid one is refused with an Event, a log line and the
// config_valid metric at 0, and the last good config keeps serving.
func (w *configWatch) load(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.ResourceVersion == w.lastVersion {
		return
	}
	w.lastVersion = cm.ResourceVersion
	w.configMap.Store(cm)
	snap, err := parseSnapshot(cm)
	w.apply(snap, err, cm, "configmap", w.name, "resourceVersion", cm.ResourceVersion)
}

// apply takes a new version of the config (snap) or refuses it (err != nil) with a log line, the
// config_valid metric at 0 and, when the config has an object (its ConfigMap), a Warning Event on
// it; the last good config keeps serving. where are log attributes naming the version.
func (w *configWatch) apply(snap *scheduler.Snapshot, err error, obj runtime.Object, where ...any) {
	event := func(reason string, err error) {
		if obj != nil {
			w.recorder.Event(obj, corev1.EventTypeWarning, reason, truncate(err.Error(), 1000))
		}
	}
	if err != nil {
		metrics.ConfigReloads.WithLabelValues("invalid").Inc()
		metrics.ConfigValid.Set(0)
		w.logger.Error("glue config refused; the last good config keeps serving", append(where, "err", err)...)
		event("InvalidConfig", err)
		return
	}
	for queue, qerr := range snap.Builder.QueueErrors() {
		w.logger.Error("queue template invalid; its tasks will be failed with this error", "queue", queue, "err", qerr)
		event("InvalidQueueTemplate", qerr)
	}
	first := w.current.Swap(snap) == nil
	metrics.ConfigReloads.WithLabelValues("ok").Inc()
	metrics.ConfigValid.Set(1)
	w.logger.Info("glue config loaded", append(where, "queues", snap.File.QueueNames())...)
	if first {
		close(w.first) // the start reads the first version itself: no reload to signal
		return
	}
	for _, c := range []chan struct{}{w.wake, w.reloaded} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// reportUnresolved tells the user, on the ConfigMap that names it, that a queue is missing on
// the ClearML server (err) or was found again (nil).
func (w *configWatch) reportUnresolved(queue string, err error) {
	cm := w.configMap.Load()
	if err != nil {
		w.logger.Error("queue not served: not found on the ClearML server; looked up again every cycle", "queue", queue, "err", err)
		if cm != nil {
			w.recorder.Event(cm, corev1.EventTypeWarning, "QueueNotFound", truncate(err.Error(), 1000))
		}
		return
	}
	w.logger.Info("queue found on the ClearML server; now served", "queue", queue)
	if cm != nil {
		w.recorder.Event(cm, corev1.EventTypeNormal, "QueueFound", "queue "+queue+" is served")
	}
}

func parseSnapshot(cm *corev1.ConfigMap) (*scheduler.Snapshot, error) {
	data, ok := cm.Data[config.FileKey]
	if !ok {
		return nil, fmt.Errorf("configmap %s/%s has no key %s", cm.Namespace, cm.Name, config.FileKey)
	}
	f, err := config.Parse([]byte(data), fmt.Sprintf("configmap %s/%s key %s", cm.Namespace, cm.Name, config.FileKey))
	if err != nil {
		return nil, err
	}
	b, err := podtemplate.NewBuilder(f)
	if err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return &scheduler.Snapshot{File: f, Builder: b}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
