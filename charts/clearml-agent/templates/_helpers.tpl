{{/* Chart name, or nameOverride. */}}
{{- define "clearml-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every object and the glue's agent name. Truncated to 52 characters so
that suffixed names (-credentials, -session-NN, -test) stay within 63.
*/}}
{{- define "clearml-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label value. */}}
{{- define "clearml-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name and instance only, so they never change on upgrade. */}}
{{- define "clearml-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clearml-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object; agentk8sglue.labels last so users can add their own. */}}
{{- define "clearml-agent.labels" -}}
helm.sh/chart: {{ include "clearml-agent.chart" . }}
{{ include "clearml-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.agentk8sglue.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* ServiceAccount of the controller. */}}
{{- define "clearml-agent.serviceAccountName" -}}
{{- default (include "clearml-agent.fullname" .) .Values.agentk8sglue.serviceExistingAccountName }}
{{- end }}

{{/* Image reference from an image block: its registry, else global.imageRegistry. Takes (list $ image defaultTag). */}}
{{- define "clearml-agent.image" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- $registry := default $root.Values.global.imageRegistry $image.registry }}
{{- $ref := $image.repository }}
{{- with $registry }}{{ $ref = printf "%s/%s" . $ref }}{{ end }}
{{- with default (index . 2) $image.tag }}{{ $ref = printf "%s:%s" $ref . }}{{ end }}
{{- $ref }}
{{- end }}

{{/* Secret names: the existing one when named, else the chart's. */}}
{{- define "clearml-agent.credentialsSecretName" -}}
{{- default (printf "%s-credentials" (include "clearml-agent.fullname" .)) .Values.clearml.existingAgentk8sglueSecret }}
{{- end }}

{{- define "clearml-agent.configSecretName" -}}
{{- if .Values.clearml.existingClearmlConfigSecret }}
{{- .Values.clearml.existingClearmlConfigSecret }}
{{- else if .Values.clearml.clearmlConfig }}
{{- printf "%s-clearml-conf" (include "clearml-agent.fullname" .) }}
{{- end }}
{{- end }}

{{/* Task pods' own credentials (clearml.taskCredentials), empty when task pods get the glue's. */}}
{{- define "clearml-agent.taskCredentialsSecretName" -}}
{{- with .Values.clearml.taskCredentials }}
{{- if .existingSecret }}
{{- .existingSecret }}
{{- else if or .accessKey .secretKey }}
{{- printf "%s-task-credentials" (include "clearml-agent.fullname" $) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "clearml-agent.registrySecretName" -}}
{{- if .Values.imageCredentials.enabled }}
{{- default (printf "%s-registry" (include "clearml-agent.fullname" .)) .Values.imageCredentials.existingSecret }}
{{- end }}
{{- end }}

{{- define "clearml-agent.filesSecretName" -}}
{{- printf "%s-files" (include "clearml-agent.fullname" .) }}
{{- end }}

{{/*
Secret data, one helper per Secret the chart may create, empty when it creates none. The
Secrets render them and the Deployment hashes them, so the controller restarts exactly when a
Secret it was started with changes.
*/}}
{{- define "clearml-agent.credentialsSecretData" -}}
{{- if not .Values.clearml.existingAgentk8sglueSecret }}
{{- if not (and .Values.clearml.agentk8sglueKey .Values.clearml.agentk8sglueSecret) }}
{{- fail "clearml.agentk8sglueKey and clearml.agentk8sglueSecret are required unless clearml.existingAgentk8sglueSecret names an existing Secret (keys agentk8sglue_key, agentk8sglue_secret)" }}
{{- end }}
agentk8sglue_key: {{ .Values.clearml.agentk8sglueKey | b64enc }}
agentk8sglue_secret: {{ .Values.clearml.agentk8sglueSecret | b64enc }}
{{- end }}
{{- end }}

{{/*
What task pods run as: the glue's identity (the open-source chart's behaviour), their own
credentials (clearml.taskCredentials) or each task's owner (agentk8sglue.useOwnerToken). Fails on
settings that would give task pods the glue's identity anyway. Prints glue, task or owner.
*/}}
{{- define "clearml-agent.taskIdentity" -}}
{{- $c := .Values.clearml }}
{{- $t := $c.taskCredentials }}
{{- $own := include "clearml-agent.taskCredentialsSecretName" . }}
{{- if and .Values.agentk8sglue.useOwnerToken $own }}
{{- fail "clearml.taskCredentials and agentk8sglue.useOwnerToken both say what task pods run as: set one (with useOwnerToken a task pod gets only its owner's token)" }}
{{- end }}
{{- if and $own (eq $own (include "clearml-agent.credentialsSecretName" .)) }}
{{- fail (printf "clearml.taskCredentials.existingSecret names the glue's own credentials Secret %s: task pods would act as the glue" $own) }}
{{- end }}
{{- if and $t (not $t.existingSecret) (or $t.accessKey $t.secretKey) }}
{{- if not (and $t.accessKey $t.secretKey) }}
{{- fail "clearml.taskCredentials.accessKey and clearml.taskCredentials.secretKey go together (or name an existing Secret with clearml.taskCredentials.existingSecret, keys access_key and secret_key)" }}
{{- end }}
{{- if and $c.agentk8sglueKey (eq $t.accessKey $c.agentk8sglueKey) }}
{{- fail "clearml.taskCredentials.accessKey is the glue's own key (clearml.agentk8sglueKey): task pods would act as the glue; use a key of a user with only the rights tasks need" }}
{{- end }}
{{- end }}
{{- if and (or $own .Values.agentk8sglue.useOwnerToken) $c.clearmlConfig (not $c.existingClearmlConfigSecret) }}
{{- range $what, $v := dict "agentk8sglueKey" $c.agentk8sglueKey "agentk8sglueSecret" $c.agentk8sglueSecret }}
{{- if and $v (contains $v $c.clearmlConfig) }}
{{- fail (printf "clearml.clearmlConfig holds the glue's own credentials (clearml.%s); it is mounted into every task pod: remove them from it" $what) }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.agentk8sglue.useOwnerToken }}owner{{ else if $own }}task{{ else }}glue{{ end }}
{{- end }}

{{- define "clearml-agent.taskCredentialsSecretData" -}}
{{- with .Values.clearml.taskCredentials }}
{{- if and (not .existingSecret) .accessKey .secretKey }}
access_key: {{ .accessKey | b64enc }}
secret_key: {{ .secretKey | b64enc }}
{{- end }}
{{- end }}
{{- end }}

{{- define "clearml-agent.configSecretData" -}}
{{- if and .Values.clearml.clearmlConfig (not .Values.clearml.existingClearmlConfigSecret) }}
clearml.conf: {{ .Values.clearml.clearmlConfig | b64enc }}
{{- end }}
{{- end }}

{{- define "clearml-agent.registrySecretData" -}}
{{- with .Values.imageCredentials }}
{{- if and .enabled (not .existingSecret) }}
{{- if not (and .registry .username .password) }}
{{- fail "imageCredentials.registry, imageCredentials.username and imageCredentials.password are required when imageCredentials.enabled is true and imageCredentials.existingSecret is empty" }}
{{- end }}
{{- $auth := dict "username" .username "password" .password "auth" (printf "%s:%s" .username .password | b64enc) }}
{{- with .email }}{{ $_ := set $auth "email" . }}{{ end }}
.dockerconfigjson: {{ dict "auths" (dict .registry $auth) | toJson | b64enc }}
{{- end }}
{{- end }}
{{- end }}

{{- define "clearml-agent.filesSecretData" -}}
{{- range .Values.agentk8sglue.fileMounts }}
{{ .name }}: {{ .fileContent | default "" | b64enc }}
{{- end }}
{{- end }}

{{/* Hash of every Secret the chart creates, for the controller pod template. */}}
{{- define "clearml-agent.secretsChecksum" -}}
{{- list (include "clearml-agent.credentialsSecretData" .) (include "clearml-agent.configSecretData" .) (include "clearml-agent.registrySecretData" .) (include "clearml-agent.filesSecretData" .) | toJson | sha256sum }}
{{- end }}

{{/*
Settings that several keys may give, resolved once: the open-source and Enterprise names of a
value (taskAsJob, debugMode, workerIdOverride), and the settings of ClearML's Python glue found
in agentk8sglue.extraEnvs. A Python-glue variable is honoured when the value that replaces it is
unset (at its default), refused with a message naming that value when they disagree, and refused
outright when nothing here replaces it. YAML; "honoured" lists what NOTES.txt reports.
*/}}
{{- define "clearml-agent.settings" -}}
{{- $g := .Values.agentk8sglue }}
{{- $s := dict "taskKind" $g.taskKind "logLevel" $g.logLevel "workerId" $g.workerId
  "maxPods" $g.maxPods "pollIntervalSeconds" $g.pollIntervalSeconds
  "completedPodDeletionDelayMinutes" $g.completedPodDeletionDelayMinutes "queue" $g.queue
  "customBashScript" $g.customBashScript "containerCustomBashScript" $g.containerCustomBashScript
  "useImageEntrypoint" "" "honoured" list }}
{{- if kindIs "bool" $g.taskAsJob }}
{{- $kind := ternary "Job" "Pod" $g.taskAsJob }}
{{- if and (ne $g.taskKind "Job") (ne $g.taskKind $kind) }}
{{- fail (printf "agentk8sglue.taskAsJob=%v asks for %ss but agentk8sglue.taskKind is %s: set one of them" $g.taskAsJob $kind $g.taskKind) }}
{{- end }}
{{- $_ := set $s "taskKind" $kind }}
{{- end }}
{{- if $g.debugMode }}{{ $_ := set $s "logLevel" "debug" }}{{ end }}
{{- if and $g.workerIdOverride $g.workerId (ne $g.workerIdOverride $g.workerId) }}
{{- fail (printf "agentk8sglue.workerIdOverride (%s) and agentk8sglue.workerId (%s) name the same setting: keep one" $g.workerIdOverride $g.workerId) }}
{{- end }}
{{- $_ := set $s "workerId" (coalesce $g.workerIdOverride $g.workerId) }}
{{- if and $g.multiNode $g.multiNode.enabled }}
{{- fail "agentk8sglue.multiNode.enabled: multi-node scheduling is not built in this glue yet; remove the key (tasks would run on a single pod)" }}
{{- end }}
{{- range $name, $q := $g.queues }}
{{- if and $q $q.queueSettings (hasKey $q.queueSettings "multiNode") }}
{{- fail (printf "agentk8sglue.queues.%s.queueSettings.multiNode: multi-node scheduling is not built in this glue yet; remove the key (a task of this queue would run on a single pod)" $name) }}
{{- end }}
{{- end }}
{{- $refused := dict
  "K8S_GLUE_EXTRA_ARGS" "agentk8sglue.maxPods (--max-pods), agentk8sglue.pendingQueueName (--k8s-pending-queue-name), agentk8sglue.createQueues (--create-queue), sessions.portModeEnabled, sessions.maxServices, sessions.startingPort and sessions.externalIP (--ports-mode, --num-of-services, --base-port, --gateway-address), agentk8sglue.basePodTemplate (--template-yaml, --overrides-yaml) and the release namespace (--namespace)"
  "CLEARML_K8S_GLUE_TEMPLATE_MODULE" "template strings in agentk8sglue.basePodTemplate and queues.<name>.templateOverrides (ClearML string templates and Go templates, see docs/configuration.md)"
  "CLEARML_K8S_GLUE_POD_PRE_APPLY_CMD" "nothing: the glue runs no command around a launch; create what a task needs with an init container in agentk8sglue.basePodTemplate.initContainers"
  "CLEARML_K8S_GLUE_POD_POST_DELETE_CMD" "nothing: the glue runs no command around a launch"
  "K8S_GLUE_DEF_EXEC_AGENT_ARGS" "agentk8sglue.containerCustomBashScript"
  "K8S_GLUE_POD_AGENT_INSTALL_ARGS" "CLEARML_AGENT_UPDATE_VERSION in agentk8sglue.basePodTemplate.env (for example ==1.9.2)"
  "K8S_GLUE_POD_MONITOR_EVICTION_REASONS" "agentk8sglue.imagePull.failFastReasons and graceReasons"
  "K8S_GLUE_POD_MONITOR_DISABLE_ENQUEUE_ON_PREEMPTION" "agentk8sglue.disruptionRequeueLimit (0 fails a task at its first disruption)"
  "K8S_GLUE_DEFAULT_SCHEDULER_QUEUE_TAGS" "nothing: the pending queue keeps the Python glue's tag k8s-glue"
  "K8S_DEFAULT_NAMESPACE" "the release namespace (helm install -n)" }}
{{- $notNeeded := dict
  "CLEARML_K8S_GLUE_START_AGENT_SCRIPT_PATH" "no start script file is written: the script is passed to bash directly"
  "K8S_GLUE_IGNORE_KUBECTL_ERROR" "the glue calls the Kubernetes API, not kubectl" }}
{{- range $e := $g.extraEnvs }}
{{- $name := toString (default "" $e.name) }}
{{- $v := trim (toString (default "" $e.value)) }}
{{- $where := printf "agentk8sglue.extraEnvs: %s is a setting of ClearML's Python glue" $name }}
{{- $truthy := has (lower $v) (list "1" "true" "yes" "y" "on") }}
{{- $number := regexMatch "^[0-9]+(\\.[0-9]+)?$" $v }}
{{- $known := list "K8S_GLUE_MAX_PODS" "CLEARML_K8S_GLUE_KIND" "K8S_GLUE_POD_USE_IMAGE_ENTRYPOINT" "CLEARML_AGENT_QUEUE_POLL_FREQ_SEC" "K8S_GLUE_QUEUE" "CLEARML_K8S_GLUE_DEBUG" "CLEARML_K8S_GLUE_EXTRA_BASH_SCRIPT" "CLEARML_K8S_GLUE_POD_BASH_SCRIPT" "K8S_GLUE_COMPLETED_POD_DELETION_DELAY_MINUTES" "CLEARML_K8S_GLUE_MONITOR_ALL_NAMESPACES" }}
{{- if hasKey $refused $name }}
{{- if and (eq $name "K8S_DEFAULT_NAMESPACE") (eq $v $.Release.Namespace) }}
{{- $_ := set $s "honoured" (append $s.honoured (printf "%s: not needed, tasks run in the release namespace" $name)) }}
{{- else }}
{{- fail (printf "%s, which this chart does not run; use %s instead" $where (get $refused $name)) }}
{{- end }}
{{- else if hasKey $notNeeded $name }}
{{- $_ := set $s "honoured" (append $s.honoured (printf "%s: not needed, %s" $name (get $notNeeded $name))) }}
{{- else if has $name $known }}
{{- if and (not (hasKey $e "value")) (hasKey $e "valueFrom") }}
{{- fail (printf "%s and is read from valueFrom, which the chart cannot see; set the value that replaces it instead (docs/configuration.md)" $where) }}
{{- end }}
{{- $replaces := "" }}{{ $ok := true }}{{ $same := false }}
{{- if eq $name "K8S_GLUE_MAX_PODS" }}
{{- $replaces = "agentk8sglue.maxPods" }}{{ $ok = regexMatch "^[0-9]+$" $v }}
{{- if $ok }}{{ $same = eq (int $v) (int $g.maxPods) }}{{ if eq (int $g.maxPods) 0 }}{{ $_ := set $s "maxPods" (int $v) }}{{ $same = true }}{{ end }}{{ end }}
{{- else if eq $name "CLEARML_K8S_GLUE_KIND" }}
{{- $replaces = "agentk8sglue.taskKind" }}{{ $ok = has (lower $v) (list "pod" "job") }}
{{- $kind := ternary "Pod" "Job" (eq (lower $v) "pod") }}
{{- if $ok }}{{ $same = eq $kind $s.taskKind }}{{ if and (eq $g.taskKind "Job") (not (kindIs "bool" $g.taskAsJob)) }}{{ $_ := set $s "taskKind" $kind }}{{ $same = true }}{{ end }}{{ end }}
{{- else if eq $name "K8S_GLUE_POD_USE_IMAGE_ENTRYPOINT" }}
{{- $replaces = "agentk8sglue.queues.<name>.queueSettings.useImageEntrypoint" }}
{{- if not $g.queues }}
{{- fail (printf "%s; with agentk8sglue.queue (a comma list) nothing replaces it: serve the queues with agentk8sglue.queues and set queueSettings.useImageEntrypoint" $where) }}
{{- end }}
{{- $_ := set $s "useImageEntrypoint" $truthy }}{{ $same = true }}
{{- else if eq $name "CLEARML_AGENT_QUEUE_POLL_FREQ_SEC" }}
{{- $replaces = "agentk8sglue.pollIntervalSeconds" }}{{ $ok = $number }}
{{- if $ok }}{{ $secs := float64 $v }}{{ $same = eq $secs (float64 $g.pollIntervalSeconds) }}{{ if eq (float64 $g.pollIntervalSeconds) 1.2 }}{{ $_ := set $s "pollIntervalSeconds" $secs }}{{ $same = true }}{{ end }}{{ end }}
{{- else if eq $name "K8S_GLUE_QUEUE" }}
{{- $replaces = "agentk8sglue.queue" }}
{{- $same = or (eq $v (trim $g.queue)) (and (eq (trim $g.queue) "default") (not $g.queues)) }}
{{- if and $same (not $g.queues) }}{{ $_ := set $s "queue" $v }}{{ end }}
{{- else if eq $name "CLEARML_K8S_GLUE_DEBUG" }}
{{- $replaces = "agentk8sglue.debugMode" }}
{{- $same = or (not $truthy) (eq $s.logLevel "debug") (eq $g.logLevel "info") }}
{{- if $truthy }}{{ $_ := set $s "logLevel" "debug" }}{{ end }}
{{- else if eq $name "CLEARML_K8S_GLUE_EXTRA_BASH_SCRIPT" }}
{{- $replaces = "agentk8sglue.customBashScript" }}
{{- $same = or (not $g.customBashScript) (eq $g.customBashScript $e.value) }}
{{- $_ := set $s "customBashScript" $e.value }}
{{- else if eq $name "CLEARML_K8S_GLUE_POD_BASH_SCRIPT" }}
{{- $replaces = "agentk8sglue.containerCustomBashScript" }}
{{- $same = or (not $g.containerCustomBashScript) (eq $g.containerCustomBashScript $e.value) }}
{{- $_ := set $s "containerCustomBashScript" $e.value }}
{{- else if eq $name "K8S_GLUE_COMPLETED_POD_DELETION_DELAY_MINUTES" }}
{{- $replaces = "agentk8sglue.completedPodDeletionDelayMinutes" }}{{ $ok = $number }}
{{- if $ok }}{{ $mins := int (ceil (float64 $v)) }}{{ $same = eq $mins (int $g.completedPodDeletionDelayMinutes) }}{{ if eq (int $g.completedPodDeletionDelayMinutes) 0 }}{{ $_ := set $s "completedPodDeletionDelayMinutes" $mins }}{{ $same = true }}{{ end }}{{ end }}
{{- else if eq $name "CLEARML_K8S_GLUE_MONITOR_ALL_NAMESPACES" }}
{{- $replaces = "nothing (the glue watches its own namespace only)" }}
{{- $same = not $truthy }}
{{- end }}
{{- if not $ok }}
{{- fail (printf "%s; %q is not a value it takes: set %s instead" $where $v $replaces) }}
{{- end }}
{{- if not $same }}
{{- fail (printf "%s; its value %q disagrees with %s, which replaces it: remove the variable" $where $v $replaces) }}
{{- end }}
{{- $_ := set $s "honoured" (append $s.honoured (printf "%s: honoured as %s" $name $replaces)) }}
{{- end }}
{{- end }}
{{- toYaml $s }}
{{- end }}

{{/* Removes the keys of a dict whose value is empty ("", 0, false, null, {} or []). */}}
{{- define "clearml-agent.dropEmpty" -}}
{{- range $key, $value := . }}
{{- if not $value }}
{{- $_ := unset $ $key }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The glue configuration (internal/config.File) as YAML. Built with toYaml from copies of the
values, never through tpl, so `{{ }}` and `${CLEARML_...}` strings reach the controller as
written; empty keys are dropped so the controller's defaults apply. No credential goes here:
only Secret names.
*/}}
{{- define "clearml-agent.glueConfig" -}}
{{- $g := .Values.agentk8sglue }}
{{- $s := include "clearml-agent.settings" . | fromYaml }}
{{- if and (not $g.queues) (not (trim $s.queue)) }}
{{- fail "no queue to serve: set agentk8sglue.queues (a map of queue names) or agentk8sglue.queue (a comma list)" }}
{{- end }}
{{- $rule := "is not a ClearML queue name: ClearML needs at least 3 characters besides white space at the ends" }}
{{- range $name := splitList "," (ternary "" $s.queue (not (empty $g.queues))) }}
{{- if and (trim $name) (lt (len (splitList "" (trim $name))) 3) }}
{{- fail (printf "agentk8sglue.queue: %q %s" (trim $name) $rule) }}
{{- end }}
{{- end }}
{{- $base := deepCopy $g.basePodTemplate }}
{{- include "clearml-agent.dropEmpty" $base }}
{{- $queues := dict }}
{{- range $name, $queue := $g.queues }}
{{- if lt (len (splitList "" (trim $name))) 3 }}
{{- fail (printf "agentk8sglue.queues: %q %s" $name $rule) }}
{{- end }}
{{- $q := deepCopy $queue }}
{{- if and (kindIs "bool" $s.useImageEntrypoint) (not (and $q.queueSettings (hasKey $q.queueSettings "useImageEntrypoint"))) }}
{{- $_ := set $q "queueSettings" (merge (default dict $q.queueSettings) (dict "useImageEntrypoint" $s.useImageEntrypoint)) }}
{{- end }}
{{- with $q.queueSettings }}{{ include "clearml-agent.dropEmpty" . }}{{ end }}
{{- include "clearml-agent.dropEmpty" $q }}
{{- $_ := set $queues $name $q }}
{{- end }}
{{- $monitored := deepCopy $g.monitoredResources }}
{{- include "clearml-agent.dropEmpty" $monitored }}
{{- $clearml := dict
  "apiServerUrl" $g.apiServerUrlReference
  "webServerUrl" $g.webServerUrlReference
  "fileServerUrl" $g.fileServerUrlReference
  "credentialsSecret" (include "clearml-agent.credentialsSecretName" .)
  "taskCredentialsSecret" (include "clearml-agent.taskCredentialsSecretName" .)
  "configSecret" (include "clearml-agent.configSecretName" .) }}
{{- include "clearml-agent.dropEmpty" $clearml }}
{{- /* Set after dropEmpty: false is meaningful here. */}}
{{- $_ := set $clearml "checkCertificate" $g.clearmlcheckCertificate }}
{{- $sessions := dict }}
{{- if .Values.sessions.portModeEnabled }}
{{- $sessions = deepCopy .Values.sessions }}
{{- include "clearml-agent.dropEmpty" $sessions }}
{{- end }}
{{- $pullSecrets := list }}
{{- with include "clearml-agent.registrySecretName" . }}{{ $pullSecrets = list . }}{{ end }}
{{- $glue := dict
  "namespace" .Release.Namespace
  "agentName" (include "clearml-agent.fullname" .)
  "workerId" $s.workerId
  "taskWorkerIdTemplate" $g.taskWorkerIdOverride
  "customBashScript" $s.customBashScript
  "containerCustomBashScript" $s.containerCustomBashScript
  "taskKind" $s.taskKind
  "queue" (ternary "" (trim $s.queue) (not (empty $g.queues)))
  "queues" $queues
  "createQueues" $g.createQueues
  "createQueueIfNotExists" $g.createQueueIfNotExists
  "basePodTemplate" $base
  "defaultContainerImage" $g.defaultContainerImage
  "maxPods" $s.maxPods
  "monitoredResources" $monitored
  "pendingQueue" $g.pendingQueueName
  "pythonGlueNamespaces" $g.pythonGlueNamespaces
  "useOwnerToken" (eq (include "clearml-agent.taskIdentity" .) "owner")
  "clearml" $clearml
  "imagePullSecrets" $pullSecrets
  "sessions" $sessions }}
{{- include "clearml-agent.dropEmpty" $glue }}
{{- /* Set after dropEmpty: an empty reason list means "none", not "the default", and a zero
means zero (no requeue, no deletion delay; a zero poll interval is refused by the controller). */}}
{{- $_ := set $glue "imagePull" (deepCopy $g.imagePull) }}
{{- $_ := set $glue "pollIntervalSeconds" $s.pollIntervalSeconds }}
{{- $_ := set $glue "completedPodDeletionDelayMinutes" $s.completedPodDeletionDelayMinutes }}
{{- $_ := set $glue "disruptionRequeueLimit" $g.disruptionRequeueLimit }}
{{- toYaml $glue }}
{{- end }}

{{/* Lease of leader election. */}}
{{- define "clearml-agent.leaseName" -}}
{{- default (include "clearml-agent.fullname" .) .Values.agentk8sglue.leaderElection.leaseName }}
{{- end }}

{{/*
Controller image: agentk8sglue.controllerImage. agentk8sglue.image is the open-source chart's key
for the image of ClearML's Python glue, which cannot run this controller (a Deployment running
clearml-glue in that image crash-loops): it is never used. A values file copied from the
open-source chart (its image, or a custom Python-glue image) installs, and NOTES.txt says the key
is ignored; one that names a clearml-glue image there, or only a tag or registry (this chart's
earlier key for the controller), is refused with the key to move it to.
*/}}
{{- define "clearml-agent.ignoredGlueImage" -}}
{{- $image := .Values.agentk8sglue.image | default dict }}
{{- $repo := $image.repository | default "" }}
{{- if or (eq (base $repo) "clearml-glue") (and (not $repo) (or $image.tag $image.registry)) }}
{{- fail (printf "agentk8sglue.image is the open-source chart's key for the Python glue image and no longer sets this chart's controller image: move it to agentk8sglue.controllerImage (registry %q, repository %q, tag %q)" ($image.registry | default "") $repo ($image.tag | default "")) }}
{{- end }}
{{- with $repo }}{{ include "clearml-agent.image" (list $ $image "") }}{{ end }}
{{- end }}

{{- define "clearml-agent.controllerImage" -}}
{{- include "clearml-agent.image" (list . .Values.agentk8sglue.controllerImage .Chart.AppVersion) }}
{{- end }}
