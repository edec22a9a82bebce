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
{{- if and (not $g.queues) (not (trim $g.queue)) }}
{{- fail "no queue to serve: set agentk8sglue.queues (a map of queue names) or agentk8sglue.queue (a comma list)" }}
{{- end }}
{{- $base := deepCopy $g.basePodTemplate }}
{{- include "clearml-agent.dropEmpty" $base }}
{{- $queues := dict }}
{{- range $name, $queue := $g.queues }}
{{- $q := deepCopy $queue }}
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
  "workerId" $g.workerId
  "taskKind" $g.taskKind
  "queue" (ternary "" (trim $g.queue) (not (empty $g.queues)))
  "queues" $queues
  "createQueues" $g.createQueues
  "createQueueIfNotExists" $g.createQueueIfNotExists
  "basePodTemplate" $base
  "defaultContainerImage" $g.defaultContainerImage
  "maxPods" $g.maxPods
  "monitoredResources" $monitored
  "pendingQueue" $g.pendingQueueName
  "pythonGlueNamespaces" $g.pythonGlueNamespaces
  "clearml" $clearml
  "imagePullSecrets" $pullSecrets
  "sessions" $sessions }}
{{- include "clearml-agent.dropEmpty" $glue }}
{{- /* Set after dropEmpty: an empty reason list means "none", not "the default", and a zero
means zero (no requeue, no deletion delay; a zero poll interval is refused by the controller). */}}
{{- $_ := set $glue "imagePull" (deepCopy $g.imagePull) }}
{{- $_ := set $glue "pollIntervalSeconds" $g.pollIntervalSeconds }}
{{- $_ := set $glue "completedPodDeletionDelayMinutes" $g.completedPodDeletionDelayMinutes }}
{{- $_ := set $glue "disruptionRequeueLimit" $g.disruptionRequeueLimit }}
{{- toYaml $glue }}
{{- end }}

{{/* Lease of leader election. */}}
{{- define "clearml-agent.leaseName" -}}
{{- default (include "clearml-agent.fullname" .) .Values.agentk8sglue.leaderElection.leaseName }}
{{- end }}

{{/*
Controller image. The open-source chart's image (the Python glue) cannot run this controller; a
values file copied from that chart names it, so it is replaced by this chart's image (NOTES.txt
says so) rather than failing an install that should work unchanged.
*/}}
{{- define "clearml-agent.isPythonGlueImage" -}}
{{- if contains "clearml-agent-k8s-base" .Values.agentk8sglue.image.repository }}true{{ end }}
{{- end }}

{{- define "clearml-agent.controllerImage" -}}
{{- $image := .Values.agentk8sglue.image }}
{{- if include "clearml-agent.isPythonGlueImage" . }}
{{- $image = dict "registry" $image.registry "repository" "clearml-glue/clearml-glue" }}
{{- end }}
{{- include "clearml-agent.image" (list . $image .Chart.AppVersion) }}
{{- end }}
