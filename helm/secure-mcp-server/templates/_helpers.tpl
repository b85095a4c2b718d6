{{/*
Chart name, truncated to the 63 characters Kubernetes allows in names.
*/}}
{{- define "secure-mcp-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Uses the release name alone when it already contains the chart name.
*/}}
{{- define "secure-mcp-server.fullname" -}}
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

{{- define "secure-mcp-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels on every object.
*/}}
{{- define "secure-mcp-server.labels" -}}
helm.sh/chart: {{ include "secure-mcp-server.chart" . }}
{{ include "secure-mcp-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secure-mcp-server
{{- end }}

{{/*
Selector labels: immutable on a Deployment, so never add version-dependent labels here.
*/}}
{{- define "secure-mcp-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secure-mcp-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "secure-mcp-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "secure-mcp-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret the pods read: the existing one, or the one this chart renders.
*/}}
{{- define "secure-mcp-server.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "secure-mcp-server.fullname" . }}
{{- end }}
{{- end }}

{{- define "secure-mcp-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
Render-time checks that would otherwise surface as a crash-looping pod.
*/}}
{{- define "secure-mcp-server.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.secrets.existingSecret) (not .Values.secrets.databaseUrl) }}
{{- fail "replicaCount > 1 needs an external PostgreSQL: set secrets.databaseUrl (or DATABASE_URL in secrets.existingSecret). The embedded database is private to each pod." }}
{{- end }}
{{- if ge (int64 .Values.config.shutdownGraceMs) (mul (int64 .Values.terminationGracePeriodSeconds) 1000) }}
{{- fail "terminationGracePeriodSeconds must be longer than config.shutdownGraceMs, or Kubernetes kills the pod before it has drained." }}
{{- end }}
{{- end }}
