package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/admission"
)

// FileKey is the ConfigMap key that holds the glue file.
const FileKey = "glue.yaml"

// Keys inside the Secrets named by ClearMLRefs.
const (
	CredentialsAccessKeyKey = "agentk8sglue_key"
	CredentialsSecretKeyKey = "agentk8sglue_secret"
	ConfigSecretKey         = "clearml.conf"
	// Keys of ClearMLRefs.TaskCredentialsSecret (the chart's clearml.taskCredentials).
	TaskCredentialsAccessKeyKey = "access_key"
	TaskCredentialsSecretKeyKey = "secret_key"
)

// Task kinds the glue can launch.
const (
	TaskKindJob = "Job"
	TaskKindPod = "Pod"
)

// File is the glue configuration: what the chart renders from values into the ConfigMap. Field
// names follow the chart's values so a values key and a config path read the same.
type File struct {
	// Namespace is where task objects are created (the release namespace).
	Namespace string `json:"namespace"`
	// AgentName identifies this glue instance; it is the value of the agent label on every object.
	AgentName string `json:"agentName"`
	// WorkerID is the glue's ClearML worker id; task pods get "<WorkerID>:<task id>".
	WorkerID string `json:"workerId,omitempty"`
	// TaskWorkerIDTemplate is the worker id template of every queue without its own
	// customWorkerIdTemplate (the chart's taskWorkerIdOverride).
	TaskWorkerIDTemplate string `json:"taskWorkerIdTemplate,omitempty"`
	// CustomBashScript runs in the task container before clearml-agent is installed (ClearML's
	// {extra_bash_init_cmd}).
	CustomBashScript string `json:"customBashScript,omitempty"`
	// ContainerCustomBashScript replaces the task container's start script (ClearML's
	// containerCustomBashScript, with its {placeholders}).
	ContainerCustomBashScript string `json:"containerCustomBashScript,omitempty"`
	// TaskKind is Job (default) or Pod.
	TaskKind string `json:"taskKind,omitempty"`
	// Queue is the open-source chart's comma list, served with the base template when Queues is empty.
	Queue string `json:"queue,omitempty"`
	// Queues maps a ClearML queue name to its template overrides and settings.
	Queues map[string]Queue `json:"queues,omitempty"`
	// CreateQueues creates missing queues (Enterprise key); CreateQueueIfNotExists is the open-source one.
	CreateQueues           bool `json:"createQueues,omitempty"`
	CreateQueueIfNotExists bool `json:"createQueueIfNotExists,omitempty"`
	// PendingQueue is the hidden queue tasks wait in while their pod is pending.
	PendingQueue string `json:"pendingQueue,omitempty"`
	// BasePodTemplate is the template every queue starts from (keys of TemplateKeys).
	BasePodTemplate map[string]any `json:"basePodTemplate,omitempty"`
	// DefaultContainerImage is used when neither the task nor the queue names an image.
	DefaultContainerImage string `json:"defaultContainerImage,omitempty"`
	// MaxPods bounds the glue's live task pods over all queues; 0 means no limit.
	MaxPods            int                `json:"maxPods,omitempty"`
	MonitoredResources MonitoredResources `json:"monitoredResources,omitempty"`
	// PollIntervalSeconds is the sleep after a cycle in which every queue was empty (PollInterval).
	PollIntervalSeconds float64 `json:"pollIntervalSeconds,omitempty"`
	// CompletedPodDeletionDelayMinutes delays the cleanup of finished objects.
	CompletedPodDeletionDelayMinutes int       `json:"completedPodDeletionDelayMinutes,omitempty"`
	ImagePull                        ImagePull `json:"imagePull,omitempty"`
	// DisruptionRequeueLimit bounds how often a task whose pod was disrupted goes back to pending.
	DisruptionRequeueLimit int         `json:"disruptionRequeueLimit,omitempty"`
	ClearML                ClearMLRefs `json:"clearml,omitempty"`
	// ImagePullSecrets are names of Secrets added to every task pod.
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
	Sessions         Sessions `json:"sessions,omitempty"`
	// PythonGlueNamespaces are namespaces where ClearML's Python glue created task objects
	// (Pods or Jobs named clearml-id-<task> with its CLEARML=agent-<hash> label): a task that has
	// one there is left to that glue, never launched a second time.
	PythonGlueNamespaces []string `json:"pythonGlueNamespaces,omitempty"`
	// UseOwnerToken runs each task as its owner (ClearML's --use-owner-token): the glue
	// impersonates the owner and gives the task pod only a token of that user, in a Secret it
	// creates per object (internal/scheduler/ownertoken.go). Task pods get no glue credentials.
	UseOwnerToken bool `json:"useOwnerToken,omitempty"`
}

// Queue is one entry of File.Queues.
type Queue struct {
	// Priority orders polling: higher first, then by name. Helm maps lose order, hence a field.
	Priority          int            `json:"priority,omitempty"`
	TemplateOverrides map[string]any `json:"templateOverrides,omitempty"`
	QueueSettings     QueueSettings  `json:"queueSettings,omitempty"`
}

// QueueSettings are the Enterprise per-queue settings.
type QueueSettings struct {
	MaxPods                int    `json:"maxPods,omitempty"`
	DefaultImage           string `json:"defaultImage,omitempty"`
	UseImageEntrypoint     bool   `json:"useImageEntrypoint,omitempty"`
	CustomWorkerIDTemplate string `json:"customWorkerIdTemplate,omitempty"`
	// MultiNode is ClearML's multi-node layout; multi-node scheduling is not built yet, so a
	// queue that sets it is refused rather than run on one pod.
	MultiNode any `json:"multiNode,omitempty"`
}

// MonitoredResources limits the sum of a resource over the glue's live pods.
type MonitoredResources struct {
	// MaxResources is the limit, decimal allowed ("1", 0.5); 0 means no limit.
	MaxResources resource.Quantity `json:"maxResources,omitzero"`
	// Field names are ONE path into the Pod each, segments separated by "|"
	// (admission.ParsePath): "metadata|labels|clear.ml/resource-usage", or the default
	// "resources|limits|nvidia.com/gpu" (the task container). MinResourcesFieldName is what a task
	// needs to start, MaxResourcesFieldName what a live one holds.
	MinResourcesFieldName string `json:"minResourcesFieldName,omitempty"`
	MaxResourcesFieldName string `json:"maxResourcesFieldName,omitempty"`
}

// Limited says whether MaxResources limits anything.
func (m MonitoredResources) Limited() bool { return m.MaxResources.Sign() > 0 }

// DefaultResourcesFieldName is ClearML's default: the task container's GPU limit.
const DefaultResourcesFieldName = "resources|limits|nvidia.com/gpu"

// ImagePull says when an image problem fails the task.
type ImagePull struct {
	// FailFastReasons fail the task as soon as a container waits with one of them.
	FailFastReasons []string `json:"failFastReasons,omitempty"`
	// GraceReasons fail the task only after BackOffGraceSeconds in that state.
	GraceReasons        []string `json:"graceReasons,omitempty"`
	BackOffGraceSeconds int      `json:"backOffGraceSeconds,omitempty"`
}

// ClearMLRefs is what task pods need to reach ClearML. Credentials are Secret names, never values.
type ClearMLRefs struct {
	APIServerURL  string `json:"apiServerUrl,omitempty"`
	WebServerURL  string `json:"webServerUrl,omitempty"`
	FileServerURL string `json:"fileServerUrl,omitempty"`
	// CredentialsSecret holds the keys CredentialsAccessKeyKey and CredentialsSecretKeyKey (the
	// open-source chart's names, so existingAgentk8sglueSecret keeps working).
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// TaskCredentialsSecret holds the task pods' own credentials (keys
	// TaskCredentialsAccessKeyKey and TaskCredentialsSecretKeyKey); empty gives task pods the
	// CredentialsSecret, the glue's own identity, as the open-source chart does.
	TaskCredentialsSecret string `json:"taskCredentialsSecret,omitempty"`
	// ConfigSecret holds clearml.conf (key ConfigSecretKey), mounted into task pods when set.
	ConfigSecret     string `json:"configSecret,omitempty"`
	CheckCertificate *bool  `json:"checkCertificate,omitempty"`
}

// Sessions is the open-source chart's port mode for interactive sessions.
type Sessions struct {
	PortModeEnabled bool              `json:"portModeEnabled,omitempty"`
	SvcAnnotations  map[string]string `json:"svcAnnotations,omitempty"`
	SvcType         string            `json:"svcType,omitempty"`
	ExternalIP      string            `json:"externalIP,omitempty"`
	StartingPort    int               `json:"startingPort,omitempty"`
	MaxServices     int               `json:"maxServices,omitempty"`
}

// TemplateKeys are the keys a basePodTemplate or templateOverrides may hold: the open-source
// chart's basePodTemplate keys, the Enterprise extras, and the raw pass-through keys podSpec and
// container (any PodSpec or Container field, merged strategic-merge style).
var TemplateKeys = []string{
	"labels", "annotations", "initContainers", "schedulerName", "volumes", "volumeMounts",
	"fileMounts", "env", "resources", "priorityClassName", "nodeSelector", "tolerations",
	"affinity", "podSecurityContext", "containerSecurityContext", "hostAliases",
	"extraVolumes", "extraVolumeMounts", "serviceAccountName", "podSpec", "container",
}

// DefaultPollIntervalSeconds is the idle poll interval: one queues.get_all per interval serves
// every queue, so an idle glue makes 50 calls a minute whatever the number of queues (52 with its
// worker reports, under the 60 the glue allows itself), and a task enqueued at a random moment
// waits 0.6 s on average before it is pulled (ClearML's Python glue: one queues.get_next_task per
// queue every 5 s). At 1.5 s the median queue-to-Job time sat at the 1 s target on a slow day.
const DefaultPollIntervalSeconds = 1.2

// minPollIntervalSeconds keeps an idle glue from polling the server in a tight loop.
const minPollIntervalSeconds = 0.1

// PollInterval is PollIntervalSeconds as a duration.
func (f *File) PollInterval() time.Duration {
	return time.Duration(f.PollIntervalSeconds * float64(time.Second))
}

// minAbortCheck is the shortest period of the check for aborted tasks: it reads every live task
// (one tasks.get_all per 500), so at 10,000 live tasks a 1.2 s period alone would cost 1,000 calls
// a minute; a task aborted in the UI stops within 5 s.
const minAbortCheck = 5 * time.Second

// AbortCheckInterval is how often the monitor looks for tasks aborted in ClearML: the poll
// interval, but not more often than every 5 s.
func (f *File) AbortCheckInterval() time.Duration { return max(f.PollInterval(), minAbortCheck) }

// Default returns a File with every default applied.
func Default() File {
	f := File{
		TaskKind:            TaskKindJob,
		PendingQueue:        PendingQueueDefault,
		PollIntervalSeconds: DefaultPollIntervalSeconds,
		AgentName:           "clearml-agent",
		MonitoredResources:  MonitoredResources{MaxResourcesFieldName: DefaultResourcesFieldName},
		ImagePull: ImagePull{
			FailFastReasons:     []string{"InvalidImageName"},
			GraceReasons:        []string{"ImagePullBackOff", "ErrImagePull"},
			BackOffGraceSeconds: 120,
		},
		DisruptionRequeueLimit: 3,
		DefaultContainerImage:  "allegroai/clearml-agent-k8s-base:1.24-21",
	}
	f.deriveDefaults()
	return f
}

// PendingQueueDefault is the Python glue's pending queue name, shared by every glue that keeps it.
const PendingQueueDefault = "k8s_scheduler"

// deriveDefaults fills the defaults that follow other fields. Other defaults are set before
// decoding (Default), so an explicit zero in the file is kept, never replaced.
func (f *File) deriveDefaults() {
	if f.WorkerID == "" {
		f.WorkerID = f.AgentName
	}
	if f.MonitoredResources.MinResourcesFieldName == "" {
		f.MonitoredResources.MinResourcesFieldName = f.MonitoredResources.MaxResourcesFieldName
	}
}

// ValidQueueName says whether ClearML takes name as a queue name: the server's only rule is at
// least 3 characters once white space at the ends is stripped. Labels made from it are sanitized.
func ValidQueueName(name string) bool {
	return utf8.RuneCountInString(strings.TrimSpace(name)) >= 3
}

// QueueNameRule is the message of a refused queue name.
const QueueNameRule = "not a ClearML queue name: it needs at least 3 characters besides white space at the ends"

// Validate reports every problem in f, each with its path (the values key it comes from).
func (f *File) Validate() error {
	var errs field.ErrorList
	if f.Namespace == "" {
		errs = append(errs, field.Required(field.NewPath("namespace"), ""))
	}
	if f.TaskKind != TaskKindJob && f.TaskKind != TaskKindPod {
		errs = append(errs, field.NotSupported(field.NewPath("taskKind"), f.TaskKind, []string{TaskKindJob, TaskKindPod}))
	}
	if len(f.Queues) == 0 && strings.TrimSpace(f.Queue) == "" {
		errs = append(errs, field.Required(field.NewPath("queues"), "no queue to serve: set agentk8sglue.queues or agentk8sglue.queue"))
	}
	for _, name := range f.legacyQueueNames() {
		if !ValidQueueName(name) {
			errs = append(errs, field.Invalid(field.NewPath("queue"), name, QueueNameRule))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Queues)) {
		q := f.Queues[name]
		path := field.NewPath("queues").Key(name)
		if !ValidQueueName(name) {
			errs = append(errs, field.Invalid(path, name, QueueNameRule))
		}
		if q.QueueSettings.MultiNode != nil {
			errs = append(errs, field.Forbidden(path.Child("queueSettings", "multiNode"), MultiNodeRefusal))
		}
		errs = append(errs, nonNegative(path.Child("queueSettings", "maxPods"), q.QueueSettings.MaxPods)...)
		errs = append(errs, validateTemplate(path.Child("templateOverrides"), q.TemplateOverrides)...)
	}
	errs = append(errs, validateTemplate(field.NewPath("basePodTemplate"), f.BasePodTemplate)...)
	errs = append(errs, nonNegative(field.NewPath("maxPods"), f.MaxPods)...)
	if m := f.MonitoredResources.MaxResources; m.Sign() < 0 {
		errs = append(errs, field.Invalid(field.NewPath("monitoredResources", "maxResources"), m.String(), "must not be negative"))
	}
	errs = append(errs, nonNegative(field.NewPath("completedPodDeletionDelayMinutes"), f.CompletedPodDeletionDelayMinutes)...)
	errs = append(errs, nonNegative(field.NewPath("imagePull", "backOffGraceSeconds"), f.ImagePull.BackOffGraceSeconds)...)
	errs = append(errs, nonNegative(field.NewPath("disruptionRequeueLimit"), f.DisruptionRequeueLimit)...)
	if f.PollIntervalSeconds < minPollIntervalSeconds {
		errs = append(errs, field.Invalid(field.NewPath("pollIntervalSeconds"), f.PollIntervalSeconds, fmt.Sprintf("must be at least %g", minPollIntervalSeconds)))
	}
	if strings.TrimSpace(f.PendingQueue) == "" || len(strings.TrimSpace(f.PendingQueue)) < 3 {
		errs = append(errs, field.Invalid(field.NewPath("pendingQueue"), f.PendingQueue, "a ClearML queue name has at least 3 characters"))
	}
	for _, p := range []struct {
		path  *field.Path
		value string
	}{
		{field.NewPath("monitoredResources", "maxResourcesFieldName"), f.MonitoredResources.MaxResourcesFieldName},
		{field.NewPath("monitoredResources", "minResourcesFieldName"), f.MonitoredResources.MinResourcesFieldName},
	} {
		if _, err := admission.ParsePath(p.value); err != nil {
			errs = append(errs, field.Invalid(p.path, p.value, err.Error()))
		}
	}
	errs = append(errs, f.validateTaskIdentity()...)
	// One error a line, sorted by path, so a user reads them like a list of values keys.
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

func nonNegative(path *field.Path, v int) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(path, v, "must not be negative")}
	}
	return nil
}

// MultiNodeRefusal says why queueSettings.multiNode is refused.
const MultiNodeRefusal = "multi-node scheduling (ClearML's queueSettings.multiNode) is not built in this glue yet; " +
	"remove the key: a task of this queue would otherwise run on a single pod"

func validateTemplate(path *field.Path, t map[string]any) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if !slices.Contains(TemplateKeys, k) {
			errs = append(errs, field.NotSupported(path.Child(k), k, TemplateKeys))
		}
	}
	return errs
}

// QueueNames returns the served queues in polling order: Queues by priority (higher first) then
// name, or the legacy comma list in its own order.
func (f *File) QueueNames() []string {
	if len(f.Queues) == 0 {
		return f.legacyQueueNames()
	}
	names := slices.Sorted(maps.Keys(f.Queues))
	sort.SliceStable(names, func(i, j int) bool {
		return f.Queues[names[i]].Priority > f.Queues[names[j]].Priority
	})
	return names
}

// QueueConfig returns the queue's entry; legacy queues get an empty one (base template only).
func (f *File) QueueConfig(name string) (Queue, bool) {
	if len(f.Queues) == 0 {
		for _, n := range f.legacyQueueNames() {
			if n == name {
				return Queue{}, true
			}
		}
		return Queue{}, false
	}
	q, ok := f.Queues[name]
	return q, ok
}

// ShouldCreateQueues says whether missing queues are created rather than refused.
func (f *File) ShouldCreateQueues() bool { return f.CreateQueues || f.CreateQueueIfNotExists }

func (f *File) legacyQueueNames() []string {
	var names []string
	for _, n := range strings.Split(f.Queue, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// Parse decodes a glue file strictly (an unknown key is an error), applies defaults and validates.
// source names where the data came from (a path or "configmap ns/name") for error messages.
func Parse(data []byte, source string) (*File, error) {
	f := Default()
	f.WorkerID, f.MonitoredResources.MinResourcesFieldName = "", ""
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(data), &f); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := f.trimQueueNames(); err != nil {
		return nil, fmt.Errorf("%s: invalid glue config:\n%w", source, err)
	}
	f.deriveDefaults()
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%s: invalid glue config:\n%w", source, err)
	}
	return &f, nil
}

// trimQueueNames names each queue as ClearML stores it: without white space at the ends.
func (f *File) trimQueueNames() error {
	if len(f.Queues) == 0 {
		return nil
	}
	out := make(map[string]Queue, len(f.Queues))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(f.Queues)) {
		trimmed := strings.TrimSpace(name)
		if _, dup := out[trimmed]; dup && trimmed != "" {
			errs = append(errs, field.Duplicate(field.NewPath("queues").Key(name), trimmed))
			continue
		}
		out[trimmed] = f.Queues[name]
	}
	f.Queues = out
	return errors.Join(errs...)
}

// Load reads and parses a glue file from disk.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}
