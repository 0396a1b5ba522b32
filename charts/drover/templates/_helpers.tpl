{{/*
Names and labels shared by every Drover template.
*/}}

{{/* The chart name, overridable. */}}
{{- define "drover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name prefix: <release>-drover, or the release name when it already says drover. */}}
{{- define "drover.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "drover.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels of every object the chart creates. */}}
{{- define "drover.labels" -}}
helm.sh/chart: {{ include "drover.chart" . }}
{{ include "drover.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: drover
{{- end }}

{{/* Labels that select the operator pods (never change them: Deployment selectors are immutable). */}}
{{- define "drover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drover.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "drover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "drover.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "drover.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "drover.peeringName" -}}
{{- default (include "drover.fullname" .) .Values.operator.peeringName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The operator configuration (drover.config.OperatorConfig, camelCase), as YAML: `config` values
(the workers images' empty tags filled in from appVersion) plus watchNamespaces and the
operator's ports and peering.
*/}}
{{- define "drover.operatorConfig" -}}
{{- $operator := dict "healthPort" .Values.operator.healthPort "metricsPort" .Values.operator.metricsPort "peeringName" (include "drover.peeringName" .) "peeringPriority" .Values.operator.peeringPriority "readSecrets" .Values.rbac.readSecrets }}
{{- $cfg := deepCopy .Values.config }}
{{- $images := $cfg.images }}
{{- $_ := set $images.workers "tag" (default .Chart.AppVersion $images.workers.tag) }}
{{- $_ := set $images.workersCpu "tag" (default (printf "%s-cpu" .Chart.AppVersion) $images.workersCpu.tag) }}
{{- $_ := set $cfg "watchNamespaces" .Values.watchNamespaces }}
{{- $_ := set $cfg "operator" $operator }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Rules for the namespaced resources the operator reconciles. Used by the ClusterRole (cluster-wide
mode) and by one Role per watched namespace. Each rule says why the operator needs it.
*/}}
{{- define "drover.namespacedRules" -}}
# Drover's own resources: watch them, patch metadata (kopf finalizers and progress annotations),
# create the FoundationModel a successful FineTuneJob produces.
- apiGroups: ["drover.dev"]
  resources: ["foundationmodels", "finetunejobs", "vectorindexes", "inferenceservices"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Conditions, phase, progress, autoscaling and rollout state live in status.
- apiGroups: ["drover.dev"]
  resources: ["foundationmodels/status", "finetunejobs/status", "vectorindexes/status", "inferenceservices/status"]
  verbs: ["get", "patch"]
# Owner references with blockOwnerDeletion on children need update on the owner's finalizers.
- apiGroups: ["drover.dev"]
  resources: ["foundationmodels/finalizers", "finetunejobs/finalizers", "vectorindexes/finalizers", "inferenceservices/finalizers"]
  verbs: ["update"]
# The Ray children: fetch / fine-tune / index RayJobs and one RayService per InferenceService;
# delete removes a superseded RayJob (a new fetch or rebuild replaces it).
- apiGroups: ["ray.io"]
  resources: ["rayjobs", "rayservices"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# KubeRay's status (jobDeploymentStatus, application statuses) is read, never written.
- apiGroups: ["ray.io"]
  resources: ["rayjobs/status", "rayservices/status"]
  verbs: ["get"]
# Weight caches and index storage; delete frees a cache nothing uses any more.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Progress reports the workers write (read only: workers never get API rights from the operator).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- if .Values.rbac.readSecrets }}
# rbac.readSecrets: check that referenced Secrets exist; never list or watch their contents.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
# An event for every decision (kopf posts core events; newer clients use events.k8s.io).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
