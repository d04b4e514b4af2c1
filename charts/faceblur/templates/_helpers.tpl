{{/*
Names, labels and images shared by every template.
Kubernetes names are DNS labels: at most 63 characters, so every name is cut there.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "faceblur.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else "<release>-<chart>",
or just the release name when it already contains the chart name.
*/}}
{{- define "faceblur.fullname" -}}
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

{{/*
The name of one component: "<fullname>-<component>", cut so the whole stays within 63 characters.
Call with (dict "root" $ "component" "operator").
*/}}
{{- define "faceblur.componentName" -}}
{{- $suffix := printf "-%s" .component }}
{{- $prefix := include "faceblur.fullname" .root | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $prefix $suffix }}
{{- end }}

{{/* "name-version" of the chart, for the helm.sh/chart label. */}}
{{- define "faceblur.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels that select one component's pods: stable across upgrades, so never the version.
Call with (dict "root" $ "component" "operator").
*/}}
{{- define "faceblur.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faceblur.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The standard labels of every object (app.kubernetes.io/*), plus commonLabels.
Call with (dict "root" $ "component" "operator").
*/}}
{{- define "faceblur.labels" -}}
helm.sh/chart: {{ include "faceblur.chart" .root }}
{{ include "faceblur.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: faceblur
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
An image reference "repository:tag" or "repository@digest"; the tag defaults to appVersion.
Call with (dict "root" $ "image" .Values.image).
*/}}
{{- define "faceblur.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Name of the operator's ServiceAccount. */}}
{{- define "faceblur.operatorServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "faceblur.componentName" (dict "root" . "component" "operator")) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the ServiceAccount the operator gives to worker pods. */}}
{{- define "faceblur.workerServiceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- default (include "faceblur.componentName" (dict "root" . "component" "worker")) .Values.worker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespaces that hold worker pods and so need the worker ServiceAccount: the release namespace,
every watched namespace and worker.serviceAccount.extraNamespaces, without duplicates.
Returned as a JSON list; use with fromJsonArray.
*/}}
{{- define "faceblur.workerNamespaces" -}}
{{- $all := concat (list .Release.Namespace) .Values.operator.watchNamespaces .Values.worker.serviceAccount.extraNamespaces }}
{{- $all | uniq | toJson }}
{{- end }}

{{/* Name of the MinIO objects (Deployment, Service, Secret, claim). */}}
{{- define "faceblur.minioName" -}}
{{- include "faceblur.componentName" (dict "root" . "component" "minio") }}
{{- end }}

{{/* Name of the Secret with the MinIO keys (accessKey, secretKey). */}}
{{- define "faceblur.minioSecretName" -}}
{{- default (include "faceblur.minioName" .) .Values.minio.auth.existingSecret }}
{{- end }}

{{/* The S3 endpoint jobs use by default: the value, else the chart's MinIO Service. */}}
{{- define "faceblur.defaultS3Endpoint" -}}
{{- if .Values.defaults.storage.endpoint }}
{{- .Values.defaults.storage.endpoint }}
{{- else if .Values.minio.enabled }}
{{- printf "%s.%s.svc:%d" (include "faceblur.minioName" .) .Release.Namespace (int .Values.minio.service.port) }}
{{- end }}
{{- end }}

{{/* The credentials Secret jobs use by default: the value, else the chart's MinIO Secret. */}}
{{- define "faceblur.defaultCredentialsSecret" -}}
{{- if .Values.defaults.storage.credentialsSecret.name }}
{{- .Values.defaults.storage.credentialsSecret.name }}
{{- else if .Values.minio.enabled }}
{{- include "faceblur.minioSecretName" . }}
{{- end }}
{{- end }}

{{/* Path inside the operator container of the defaults file (FACEBLUR_DEFAULTS). */}}
{{- define "faceblur.defaultsPath" -}}
/etc/faceblur/defaults.yaml
{{- end }}

{{/*
A map without its empty leaves ("" and null) and without maps and lists left empty, as JSON (use
with fromJson): the defaults file then holds only what is set, so the operator can read it as a
partial FaceBlurJob spec. false and 0 are values, not absences, and are kept.
*/}}
{{- define "faceblur.pruned" -}}
{{- $out := dict }}
{{- range $key, $value := . }}
{{- if kindIs "map" $value }}
{{- $inner := include "faceblur.pruned" $value | fromJson }}
{{- if $inner }}
{{- $_ := set $out $key $inner }}
{{- end }}
{{- else if kindIs "slice" $value }}
{{- if $value }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- else if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
What a job's spec may name (jobPolicy): a dict of comma-free lists, the values' own or, where empty,
the chart's images, default endpoint and default Secret. The admission policy's parameters and the
operator's defaults file both take it from here.
*/}}
{{- define "faceblur.jobPolicy" -}}
{{- $p := .Values.jobPolicy }}
{{- $images := $p.allowedImages | default (list .Values.image.repository .Values.gpuImage.repository) }}
{{- $endpoints := $p.allowedEndpoints | default (compact (list (include "faceblur.defaultS3Endpoint" .))) }}
{{- $secrets := $p.allowedSecrets | default (compact (list (include "faceblur.defaultCredentialsSecret" .))) }}
{{- dict "images" (uniq $images) "endpoints" (uniq $endpoints) "secrets" (uniq $secrets) | toJson }}
{{- end }}
