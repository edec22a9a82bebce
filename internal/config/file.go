package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// FileKey is the ConfigMap key that holds the glue file.
const FileKey = "glue.yaml"

// Keys inside the Secrets named by ClearMLRefs.
const (
	CredentialsAccessKeyKey = "agentk8sglue_key"
	CredentialsSecretKeyKey = "agentk8sglue_secret"
	ConfigSecretKey         = "clearml.conf"
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
	// PollIntervalSeconds is the sleep after a cycle in which every queue was empty.
	PollIntervalSeconds int `json:"pollIntervalSeconds,omitempty"`
	// CompletedPodDeletionDelayMinutes delays the cleanup of finished objects.
	CompletedPodDeletionDelayMinutes int       `json:"completedPodDeletionDelayMinutes,omitempty"`
	ImagePull                        ImagePull `json:"imagePull,omitempty"`
	// DisruptionRequeueLimit bounds how often a task whose pod was disrupted goes back to pending.
	DisruptionRequeueLimit int         `json:"disruptionRequeueLimit,omitempty"`
	ClearML                ClearMLRefs `json:"clearml,omitempty"`
	// ImagePullSecrets are names of Secrets added to every task pod.
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
	Sessions         Sessions `json:"sessions,omitempty"`
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
}

// MonitoredResources limits the sum of a resource over the glue's live pods.
type MonitoredResources struct {
	// MaxResources is the limit; 0 means no limit.
	MaxResources int `json:"maxResources,omitempty"`
	// Field names are paths into the pod template separated by "|", for example
	// "resources.limits.nvidia.com/gpu".
	MinResourcesFieldName string `json:"minResourcesFieldName,omitempty"`
	MaxResourcesFieldName string `json:"maxResourcesFieldName,omitempty"`
}

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
	"extraVolumes", "extraVolumeMounts", "podSpec", "container",
}

// Default returns a File with every default applied.
func Default() File {
	var f File
	f.applyDefaults()
	return f
}

func (f *File) applyDefaults() {
	if f.TaskKind == "" {
		f.TaskKind = TaskKindJob
	}
	if f.PendingQueue == "" {
		f.PendingQueue = "k8s_scheduler"
	}
	if f.PollIntervalSeconds == 0 {
		f.PollIntervalSeconds = 5
	}
	if f.AgentName == "" {
		f.AgentName = "clearml-agent"
	}
	if f.WorkerID == "" {
		f.WorkerID = f.AgentName
	}
	if f.MonitoredResources.MaxResourcesFieldName == "" {
		f.MonitoredResources.MaxResourcesFieldName = "resources.limits.nvidia.com/gpu"
	}
	if f.MonitoredResources.MinResourcesFieldName == "" {
		f.MonitoredResources.MinResourcesFieldName = f.MonitoredResources.MaxResourcesFieldName
	}
	if f.ImagePull.FailFastReasons == nil {
		f.ImagePull.FailFastReasons = []string{"InvalidImageName"}
	}
	if f.ImagePull.GraceReasons == nil {
		f.ImagePull.GraceReasons = []string{"ImagePullBackOff", "ErrImagePull"}
	}
	if f.ImagePull.BackOffGraceSeconds == 0 {
		f.ImagePull.BackOffGraceSeconds = 120
	}
	if f.DisruptionRequeueLimit == 0 {
		f.DisruptionRequeueLimit = 3
	}
	if f.DefaultContainerImage == "" {
		f.DefaultContainerImage = "allegroai/clearml-agent-k8s-base:1.24-21"
	}
}

// queueNameRE accepts ClearML queue names the server takes (at least 3 characters) that are safe
// in labels after sanitizing.
var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{2,}$`)

// Validate reports every problem in f, each prefixed with its path (the values key it comes from).
func (f *File) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if f.Namespace == "" {
		add("namespace", "must be set")
	}
	if f.TaskKind != TaskKindJob && f.TaskKind != TaskKindPod {
		add("taskKind", "%q is not Job or Pod", f.TaskKind)
	}
	if len(f.Queues) == 0 && strings.TrimSpace(f.Queue) == "" {
		add("queues", "no queue to serve: set agentk8sglue.queues or agentk8sglue.queue")
	}
	for _, name := range f.legacyQueueNames() {
		if !queueNameRE.MatchString(name) {
			add("queue", "%q is not a valid queue name (at least 3 of letters, digits, '_', '.', '-')", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Queues)) {
		q := f.Queues[name]
		path := "queues." + name
		if !queueNameRE.MatchString(name) {
			add(path, "%q is not a valid queue name (at least 3 of letters, digits, '_', '.', '-')", name)
		}
		if q.QueueSettings.MaxPods < 0 {
			add(path+".queueSettings.maxPods", "must not be negative, got %d", q.QueueSettings.MaxPods)
		}
		errs = append(errs, validateTemplate(path+".templateOverrides", q.TemplateOverrides)...)
	}
	errs = append(errs, validateTemplate("basePodTemplate", f.BasePodTemplate)...)
	for path, v := range map[string]int{
		"maxPods":                          f.MaxPods,
		"monitoredResources.maxResources":  f.MonitoredResources.MaxResources,
		"pollIntervalSeconds":              f.PollIntervalSeconds,
		"completedPodDeletionDelayMinutes": f.CompletedPodDeletionDelayMinutes,
		"imagePull.backOffGraceSeconds":    f.ImagePull.BackOffGraceSeconds,
		"disruptionRequeueLimit":           f.DisruptionRequeueLimit,
	} {
		if v < 0 {
			add(path, "must not be negative, got %d", v)
		}
	}
	if f.PollIntervalSeconds == 0 {
		add("pollIntervalSeconds", "must be at least 1")
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func validateTemplate(path string, t map[string]any) []error {
	var errs []error
	known := map[string]bool{}
	for _, k := range TemplateKeys {
		known[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(t)) {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%s.%s: unknown template key (known: %s)", path, k, strings.Join(TemplateKeys, ", ")))
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
	var f File
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(data), &f); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	f.applyDefaults()
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%s: invalid glue config:\n%w", source, err)
	}
	return &f, nil
}

// Load reads and parses a glue file from disk.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}
