{{/* The chart's name, or nameOverride. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name
when it holds the chart's name (release "herald" gives herald-worker), else
release-chart.
*/}}
{{- define "herald.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: herald
{{- end }}

{{/* Labels that select the release's pods; add app.kubernetes.io/component. */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image every pod runs: a release tag, by default the appVersion. */}}
{{- define "herald.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: latest is not a release; pin one (a pod that restarts must run what the others run)" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The ServiceAccount every long-running pod runs as. */}}
{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret mounted at /secrets: one made outside the chart, or the chart's. */}}
{{- define "herald.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "herald.fullname" .) }}
{{- end }}
{{- end }}

{{/* The port of a listen address such as ":8080" ($addr), else $default. */}}
{{- define "herald.port" -}}
{{- $addr := index . 0 | default (index . 1) | toString }}
{{- regexFind "[0-9]+$" $addr }}
{{- end }}

{{/* herald.yaml as the ConfigMap holds it. */}}
{{- define "herald.config" -}}
{{- toYaml .Values.config }}
{{- end }}

{{/* Pod annotations: yours, and digests that roll the pods when their config or Secret changes. */}}
{{- define "herald.podAnnotations" -}}
checksum/config: {{ include "herald.config" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secrets: {{ toYaml .Values.secrets.data | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod spec fields every herald pod shares. */}}
{{- define "herald.podCommon" -}}
automountServiceAccountToken: false
# herald reads HERALD_* variables as its settings: no HERALD_WORKER_PORT and
# friends from the Services named herald-....
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The container fields every herald container shares. */}}
{{- define "herald.containerCommon" -}}
image: {{ include "herald.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end }}

{{/* HERALD_CONFIG and GOMEMLIMIT, the start of every container's env. */}}
{{- define "herald.env" -}}
- name: HERALD_CONFIG
  value: /etc/herald/herald.yaml
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
      divisor: "1"
{{- end }}

{{/* The config and the Secret, read-only; $cm names the ConfigMap. */}}
{{- define "herald.volumeMounts" -}}
- name: config
  mountPath: /etc/herald
  readOnly: true
- name: secrets
  mountPath: /secrets
  readOnly: true
{{- end }}

{{/* The volumes for herald.volumeMounts: (list $ configMapName secretName). */}}
{{- define "herald.volumes" -}}
- name: config
  configMap:
    name: {{ index . 1 }}
- name: secrets
  secret:
    secretName: {{ index . 2 }}
    defaultMode: 0440
{{- end }}

{{/* A topology spread over zones and nodes for one component. */}}
{{- define "herald.spread" -}}
{{- $ := index . 0 }}
{{- $component := index . 1 -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "herald.selectorLabels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "herald.selectorLabels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
{{- end }}
