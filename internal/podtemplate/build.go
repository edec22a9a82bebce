package podtemplate

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/config"
)

// Object is what Build returns: a *batchv1.Job or a *corev1.Pod.
type Object interface {
	metav1.Object
	runtime.Object
}

// Input is one task to build an object for.
type Input struct {
	// Task is the task object as tasks.get_by_id returns it (its "task" field).
	Task               map[string]any
	QueueID, QueueName string
	// WorkerID is the glue's ClearML worker id; empty means config.File.WorkerID.
	WorkerID string
	// User is the task owner's user object, for ${CLEARML_USER.<path>} and {{ .User }}.
	User map[string]any
	// ProjectName is the name of the task's project; the task only holds its id.
	ProjectName string
	// PodNumber is the free session slot (1..maxServices) in sessions port mode, which the caller
	// picks; it is ignored otherwise.
	PodNumber int
	// OwnerTokenSecret names the Secret with the owner's token the task container reads, with
	// config.File.UseOwnerToken (default OwnerTokenSecretName(task, "")); ignored otherwise.
	OwnerTokenSecret string
}

// Paths and names the built objects use.
const (
	clearmlConfPath    = "/root/clearml.conf"
	confVolume         = "clearml-glue-conf"
	filesVolume        = "clearml-glue-files"
	fileAnnotation     = "clearml-glue/file-"
	sessionPort        = 10022
	setupScriptEnv     = "CLEARML_GLUE_SETUP_SHELL_SCRIPT"
	extraBashScriptEnv = "CLEARML_GLUE_EXTRA_BASH_SCRIPT"
	serviceTokenPaths  = "/var/run/secrets"
)

// FileAnnotationPrefix starts the Pod annotations that hold fileMounts contents.
const FileAnnotationPrefix = "clearml-glue/file-"

// probeTaskID is the task id of the build that checks a queue's template at load time.
const probeTaskID = "00000000000000000000000000000000"

//go:embed bootstrap.sh
var bootstrapScript string

// workerIDBraces are the placeholders ClearML documents for customWorkerIdTemplate and
// taskWorkerIdOverride: {task_id}, {task_name}, {project} (the project's name), {queue} (its
// name), {worker_id} (the glue's), {worker_id_parts[n]} (its n-th ":"-separated part), {pod_name}
// and {namespace}.
func workerIDBraces(namespace string) map[string]string {
	m := map[string]string{
		"task_id":   "{{.Task.ID}}",
		"task_name": "{{.Task.Name}}",
		"project":   "{{.Task.ProjectName}}",
		"queue":     "{{.Queue.Name}}",
		"worker_id": "{{.WorkerID}}",
		"pod_name":  fmt.Sprintf("{{print %q .Task.ID}}", objectNamePrefix),
		"namespace": fmt.Sprintf("{{print %q}}", namespace),
	}
	for i := range 10 {
		m[fmt.Sprintf("worker_id_parts[%d]", i)] = fmt.Sprintf(`{{index (splitList ":" .WorkerID) %d}}`, i)
	}
	return m
}

// Builder builds the Job or Pod for a task of a served queue. It is safe for concurrent use.
type Builder struct {
	cfg      *config.File
	compiler *compiler
	queues   map[string]*queueTemplate
	errs     map[string]error
	// containerScript is the compiled containerCustomBashScript, or nil for the built-in one.
	containerScript *containerScript
	// need and hold are the parsed monitoredResources paths.
	need, hold admission.Path
}

// queueTemplate is a queue's template, merged, assembled into a pod template and compiled.
type queueTemplate struct {
	name     string
	settings config.QueueSettings
	// pod is the pod template tree ({metadata, spec}); template strings are *leaf.
	pod map[string]any
	// files is the fileMounts list, or nil.
	files any
	// workerID is the compiled customWorkerIdTemplate (or taskWorkerIdTemplate), or nil.
	workerID *leaf
	// need and hold are what a task of the queue needs and holds of the monitored resource, as
	// far as the template says before a task is rendered (MonitoredAmounts).
	need, hold Amount
	// usesProject and usesUser say whether a template string reads the project's name or the
	// owner's user object, which the caller then looks up (Lookups).
	usesProject, usesUser bool
	// monitoredLabels are label keys the monitoredResources paths read: a rendered value there is
	// kept when it is a valid label value, so "0.5" stays a quantity.
	monitoredLabels map[string]bool
}

// Amount is what a queue's template says of a monitored resource before a task is rendered.
type Amount struct {
	Quantity resource.Quantity
	// PerTask says the value is rendered for each task: known only once the object is built.
	PerTask bool
}

// MonitoredAmounts returns what a task of the queue needs (minResourcesFieldName) and holds
// (maxResourcesFieldName) of the monitored resource, read from the merged template. A value
// rendered per task is PerTask: the caller reads it from the built object (admission.Path.Object).
func (b *Builder) MonitoredAmounts(queueName string) (need, hold Amount) {
	q, ok := b.queues[queueName]
	if !ok {
		return Amount{}, Amount{}
	}
	return q.need, q.hold
}

// ObjectAmounts reads what a built object needs (minResourcesFieldName) and holds
// (maxResourcesFieldName) of the monitored resource, as admission and the monitor count it.
func (b *Builder) ObjectAmounts(obj Object) (need, hold resource.Quantity, err error) {
	if need, err = b.need.Object(obj); err != nil {
		return need, hold, err
	}
	hold, err = b.hold.Object(obj)
	return need, hold, err
}

// Lookups says which data a queue's templates read that the task does not hold: the project's
// name (${CLEARML_PROJECT_NAME}, {{ .Task.ProjectName }}, {project}) and the owner's user object
// (${CLEARML_USER.<path>}, {{ .User }}). The caller looks them up only then.
func (b *Builder) Lookups(queueName string) (project, user bool) {
	q, ok := b.queues[queueName]
	if !ok {
		return false, false
	}
	return q.usesProject, q.usesUser
}

// NewBuilder merges and compiles every served queue's template once. cfg must be a validated
// config (config.Parse). A queue whose template is invalid does not stop the others: its error is
// in QueueErrors and Build returns it for each of its tasks. NewBuilder itself fails only on
// settings every object depends on.
func NewBuilder(cfg *config.File) (*Builder, error) {
	if cfg == nil {
		return nil, errors.New("no glue config")
	}
	if msgs := content.IsLabelValue(cfg.AgentName); cfg.AgentName == "" || len(msgs) > 0 {
		return nil, fmt.Errorf("agentName %q is not a valid label value: %s", cfg.AgentName, strings.Join(msgs, "; "))
	}
	if cfg.TaskKind != config.TaskKindJob && cfg.TaskKind != config.TaskKindPod {
		return nil, fmt.Errorf("taskKind %q is not Job or Pod", cfg.TaskKind)
	}
	b := &Builder{cfg: cfg, compiler: newCompiler(), queues: map[string]*queueTemplate{}, errs: map[string]error{}}
	if cfg.ContainerCustomBashScript != "" {
		cs, err := compileContainerScript(cfg.ContainerCustomBashScript, cfg.CustomBashScript)
		if err != nil {
			return nil, fmt.Errorf("containerCustomBashScript: %w", err)
		}
		b.containerScript = cs
	}
	var err error
	if b.need, err = admission.ParsePath(cmp.Or(cfg.MonitoredResources.MinResourcesFieldName, cfg.MonitoredResources.MaxResourcesFieldName, config.DefaultResourcesFieldName)); err != nil {
		return nil, fmt.Errorf("monitoredResources.minResourcesFieldName: %w", err)
	}
	if b.hold, err = admission.ParsePath(cmp.Or(cfg.MonitoredResources.MaxResourcesFieldName, config.DefaultResourcesFieldName)); err != nil {
		return nil, fmt.Errorf("monitoredResources.maxResourcesFieldName: %w", err)
	}
	for _, name := range cfg.QueueNames() {
		q, _ := cfg.QueueConfig(name)
		qt, problems := b.compileQueue(name, q)
		if len(problems) > 0 {
			b.errs[name] = describe(name, qt, problems)
			continue
		}
		b.queues[name] = qt
	}
	return b, nil
}

// QueueErrors returns the error of each queue whose template is invalid, by queue name.
func (b *Builder) QueueErrors() map[string]error { return maps.Clone(b.errs) }

// Build returns the object that runs in.Task for the queue: a *batchv1.Job or a *corev1.Pod, as
// config.File.TaskKind says. Errors start with the queue and name the field and the bad value.
func (b *Builder) Build(queueName string, in Input) (Object, error) {
	if err, ok := b.errs[queueName]; ok {
		return nil, err
	}
	q, ok := b.queues[queueName]
	if !ok {
		return nil, fmt.Errorf("queue %q is not served by this glue", queueName)
	}
	d, err := b.templateData(queueName, in)
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", queueName, err)
	}
	obj, problems := b.build(q, in, d, func(l *leaf) (string, error) { return l.execute(d) })
	if len(problems) > 0 {
		return nil, describe(queueName, q, problems)
	}
	return obj, nil
}

func (b *Builder) templateData(queueName string, in Input) (*templateData, error) {
	task, err := newTaskData(in.Task, in.ProjectName)
	if err != nil {
		return nil, err
	}
	d := &templateData{
		Task:     task,
		Queue:    queueData{ID: in.QueueID, Name: cmp.Or(in.QueueName, queueName)},
		WorkerID: cmp.Or(in.WorkerID, b.cfg.WorkerID),
		User:     in.User,
		rawTask:  in.Task,
	}
	if d.User == nil {
		d.User = map[string]any{}
	}
	return d, nil
}

// describe turns problems into one error. A problem in a value rendered from a template string is
// named after where that string is written (templateOverrides.resources.limits.memory).
func describe(queueName string, q *queueTemplate, problems []*fieldError) error {
	for _, p := range problems {
		if l := q.leafAt(p.path); p.where == "" && l != nil {
			p.where = l.src
		}
	}
	slices.SortFunc(problems, func(a, b *fieldError) int { return strings.Compare(a.Error(), b.Error()) })
	return joinErrors(fmt.Sprintf("queue %q: ", queueName), problems)
}

// leafAt returns the template string the value at p (a pod template or fileMounts path) was
// rendered from, or nil.
func (q *queueTemplate) leafAt(p fieldPath) *leaf {
	if q == nil || len(p) == 0 {
		return nil
	}
	tree := any(q.pod)
	if p[0] == "fileMounts" {
		tree, p = q.files, p[1:]
	}
	l, _ := lookup(tree, p).(*leaf)
	return l
}

// build renders q for one task, decodes the result into a pod template, adds what the glue owns
// and validates it.
func (b *Builder) build(q *queueTemplate, in Input, d *templateData, exec func(*leaf) (string, error)) (Object, []*fieldError) {
	pt, files, workerID, problems := q.render(exec, d)
	if len(problems) > 0 {
		return nil, problems
	}
	name := ObjectName(d.Task.ID)
	if msgs := content.IsDNS1123Label(name); len(msgs) > 0 {
		return nil, []*fieldError{invalid(fieldPath{"metadata", "name"}, name, "made from the task id is not a valid name: "+strings.Join(msgs, "; "))}
	}
	main := &pt.Spec.Containers[0]
	if err := b.setUpTaskContainer(q, d, &pt.Spec, main, name, workerID, in.OwnerTokenSecret); err != nil {
		return nil, []*fieldError{{problem: err.Error()}}
	}
	pt.Spec.RestartPolicy = corev1.RestartPolicyNever
	if pt.Spec.ServiceAccountName == "" && pt.Spec.DeprecatedServiceAccount == "" && pt.Spec.AutomountServiceAccountToken == nil {
		// No ServiceAccount chosen: the namespace's default one, whose token a task has no use for.
		pt.Spec.AutomountServiceAccountToken = new(false)
	}
	for _, s := range b.cfg.ImagePullSecrets {
		if !slices.ContainsFunc(pt.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == s }) {
			pt.Spec.ImagePullSecrets = append(pt.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
	}
	if pt.Labels == nil {
		pt.Labels = map[string]string{}
	}
	maps.Copy(pt.Labels, b.labels(d))
	if b.cfg.Sessions.PortModeEnabled {
		if in.PodNumber < 1 {
			problems = append(problems, &fieldError{problem: "sessions port mode needs the task's pod number (Input.PodNumber)"})
		}
		pt.Labels[LabelPortSlot] = fmt.Sprintf("pod-%d", in.PodNumber)
		if !slices.ContainsFunc(main.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == sessionPort }) {
			main.Ports = append(main.Ports, corev1.ContainerPort{ContainerPort: sessionPort})
		}
	}
	objectAnnotations := maps.Clone(pt.Annotations)
	problems = append(problems, addFileMounts(&pt, main, files)...)
	problems = append(problems, validatePodTemplate(&pt)...)
	problems = append(problems, b.glueSecretRefs(&pt.Spec)...)
	if len(problems) > 0 {
		return nil, problems
	}

	meta := metav1.ObjectMeta{Name: name, Namespace: b.cfg.Namespace, Labels: maps.Clone(pt.Labels)}
	if b.cfg.TaskKind == config.TaskKindPod {
		meta.Annotations = pt.Annotations
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta, Spec: pt.Spec}, nil
	}
	// File contents are for the Pod's downward API only.
	meta.Annotations = objectAnnotations
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		// Always set: 0 deletes a finished Job at once, as the Python glue deletes finished pods.
		Spec: batchv1.JobSpec{BackoffLimit: new(int32(0)), Template: pt,
			TTLSecondsAfterFinished: new(int32(min(b.cfg.CompletedPodDeletionDelayMinutes, math.MaxInt32/60) * 60)), //nolint:gosec // bounded just before
			PodFailurePolicy:        disruptionsReplaced.DeepCopy()},
	}
	return job, nil
}

// disruptionsReplaced lets the Job controller replace a pod that was evicted or preempted (the
// DisruptionTarget condition) without failing the Job: the Job stays the glue's record of the
// task while the monitor puts the task back into the pending queue for the new pod's agent, and
// fails it after disruptionRequeueLimit disruptions. Any other pod failure fails the Job.
var disruptionsReplaced = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
	Action:          batchv1.PodFailurePolicyActionIgnore,
	OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
}}}

// render renders the queue's template strings for one task and decodes the pod template and the
// file mounts; it also returns the task's worker id.
func (q *queueTemplate) render(exec func(*leaf) (string, error), d *templateData) (corev1.PodTemplateSpec, []fileMount, string, []*fieldError) {
	var pt corev1.PodTemplateSpec
	var files []fileMount
	rendered, problems := render(q.pod, exec)
	if len(problems) > 0 {
		return pt, nil, "", problems
	}
	sanitizeRenderedLabels(q.pod, rendered.(map[string]any), q.monitoredLabels)
	if problems := decodeStrict(nil, rendered, &pt); len(problems) > 0 {
		return pt, nil, "", problems
	}
	if q.files != nil {
		rendered, problems := render(q.files, exec)
		if len(problems) > 0 {
			return pt, nil, "", problems
		}
		if problems := decodeStrict(fieldPath{"fileMounts"}, rendered, &files); len(problems) > 0 {
			return pt, nil, "", problems
		}
	}
	workerID := d.WorkerID + ":" + d.Task.ID
	if q.workerID != nil {
		id, problems := render(q.workerID, exec)
		if len(problems) > 0 {
			return pt, nil, "", problems
		}
		workerID = id.(string)
	}
	return pt, files, workerID, nil
}

// setUpTaskContainer names the task's container, picks its image and sets its environment and
// command.
func (b *Builder) setUpTaskContainer(q *queueTemplate, d *templateData, spec *corev1.PodSpec, c *corev1.Container, name, workerID, tokenSecret string) error {
	env, err := envFromArguments(d.Task.Container["arguments"])
	if err != nil {
		return err
	}
	c.Name = name
	image, _ := d.Task.Container["image"].(string)
	c.Image = cmp.Or(strings.TrimSpace(image), q.settings.DefaultImage, b.cfg.DefaultContainerImage)
	for _, e := range env {
		setEnv(c, e)
	}
	b.addClearMLAccess(spec, c, workerID, d.Task.ID, tokenSecret)
	if q.settings.UseImageEntrypoint {
		setEnv(c, corev1.EnvVar{Name: "CLEARML_TASK_ID", Value: d.Task.ID})
		return nil
	}
	script := bootstrapScript
	if b.containerScript != nil {
		script = b.containerScript.format(d.Task.ID)
	} else if b.cfg.CustomBashScript != "" {
		setEnv(c, corev1.EnvVar{Name: extraBashScriptEnv, Value: b.cfg.CustomBashScript})
	}
	c.Command = []string{"/bin/bash"}
	c.Args = []string{"-c", script, "clearml-glue-bootstrap", d.Task.ID}
	if script, _ := d.Task.Container["setup_shell_script"].(string); script != "" {
		setEnv(c, corev1.EnvVar{Name: setupScriptEnv, Value: script})
	}
	return nil
}

// labels are the labels the glue sets on every object; values from ClearML are sanitized.
func (b *Builder) labels(d *templateData) map[string]string {
	labels := map[string]string{LabelAgent: b.cfg.AgentName, LabelTaskID: d.Task.ID}
	for key, value := range map[string]string{LabelQueue: d.Queue.ID, LabelQueueName: d.Queue.Name, LabelParentTaskID: d.Task.Parent} {
		if v := SanitizeLabelValue(value); v != "" {
			labels[key] = v
		}
	}
	return labels
}

// sanitizeRenderedLabels makes label values rendered from template strings valid label values.
// A label that monitoredResources reads keeps a rendered value that is valid already ("0.5").
func sanitizeRenderedLabels(compiled, rendered map[string]any, keep map[string]bool) {
	compiledLabels, _ := lookup(compiled, fieldPath{"metadata", "labels"}).(map[string]any)
	renderedLabels, _ := lookup(rendered, fieldPath{"metadata", "labels"}).(map[string]any)
	for k, v := range compiledLabels {
		if _, ok := v.(*leaf); ok {
			value := renderedLabels[k].(string)
			if keep[k] && len(content.IsLabelValue(value)) == 0 {
				continue
			}
			renderedLabels[k] = SanitizeLabelValue(value)
		}
	}
}

// addClearMLAccess gives the task's container what it needs to reach ClearML. Server addresses
// are defaults a template may override; the worker id is the glue's, the credentials those
// addCredentials picks. Credentials and clearml.conf are Secret references, never values.
func (b *Builder) addClearMLAccess(spec *corev1.PodSpec, c *corev1.Container, workerID, taskID, tokenSecret string) {
	refs := b.cfg.ClearML
	hosts := []corev1.EnvVar{
		{Name: "CLEARML_API_HOST", Value: refs.APIServerURL},
		{Name: "CLEARML_WEB_HOST", Value: refs.WebServerURL},
		{Name: "CLEARML_FILES_HOST", Value: refs.FileServerURL},
	}
	if refs.CheckCertificate != nil {
		hosts = append(hosts, corev1.EnvVar{Name: "CLEARML_API_HOST_VERIFY_CERT", Value: strconv.FormatBool(*refs.CheckCertificate)})
	}
	for _, e := range hosts {
		if e.Value != "" && !slices.ContainsFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name }) {
			c.Env = append(c.Env, e)
		}
	}
	setEnv(c, corev1.EnvVar{Name: "CLEARML_WORKER_ID", Value: workerID})
	b.addCredentials(c, taskID, tokenSecret)
	if refs.ConfigSecret != "" {
		setEnv(c, corev1.EnvVar{Name: "CLEARML_CONFIG_FILE", Value: clearmlConfPath})
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: confVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: refs.ConfigSecret,
			Items:      []corev1.KeyToPath{{Key: config.ConfigSecretKey, Path: config.ConfigSecretKey}},
		}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{
			Name: confVolume, MountPath: clearmlConfPath, SubPath: config.ConfigSecretKey, ReadOnly: true,
		})
	}
}

// addFileMounts writes each fileMounts entry into the task's container: the content goes into a
// pod annotation, which a downward API volume projects as a read-only file at folderPath/name. No
// ConfigMap per task, no init container, and the content never passes through a shell.
func addFileMounts(pt *corev1.PodTemplateSpec, c *corev1.Container, files []fileMount) []*fieldError {
	if len(files) == 0 {
		return nil
	}
	var problems []*fieldError
	volume := &corev1.DownwardAPIVolumeSource{}
	if pt.Annotations == nil {
		pt.Annotations = map[string]string{}
	}
	for i, f := range files {
		p := fieldPath{"fileMounts"}.index(i)
		if msgs := content.IsPathSegmentName(f.Name); f.Name == "" || len(msgs) > 0 {
			problems = append(problems, invalid(p.child("name"), f.Name, "is not a valid file name: "+strings.Join(append(msgs, "must be one non-empty path segment"), "; ")))
		}
		mountPath := path.Join(f.FolderPath, f.Name)
		switch {
		case !path.IsAbs(f.FolderPath):
			problems = append(problems, invalid(p.child("folderPath"), f.FolderPath, "must be an absolute path"))
		case mountPath == clearmlConfPath || strings.HasPrefix(mountPath+"/", serviceTokenPaths+"/"):
			problems = append(problems, invalid(p.child("folderPath"), f.FolderPath, "would hide credentials the pod mounts"))
		}
		if len(problems) > 0 {
			continue // the build fails; a mount of a bad entry would only add noise
		}
		key := fileAnnotation + strconv.Itoa(i)
		pt.Annotations[key] = f.FileContent
		item := "file-" + strconv.Itoa(i)
		volume.Items = append(volume.Items, corev1.DownwardAPIVolumeFile{
			Path:     item,
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.annotations['%s']", key)},
		})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: filesVolume, MountPath: mountPath, SubPath: item, ReadOnly: true})
	}
	pt.Spec.Volumes = append(pt.Spec.Volumes, corev1.Volume{Name: filesVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: volume}})
	return problems
}

// setEnv sets e in c's environment, replacing a variable of the same name in place.
func setEnv(c *corev1.Container, e corev1.EnvVar) {
	for i := range c.Env {
		if c.Env[i].Name == e.Name {
			c.Env[i] = e
			return
		}
	}
	c.Env = append(c.Env, e)
}
