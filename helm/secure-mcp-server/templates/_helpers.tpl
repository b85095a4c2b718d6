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

{{/*
Name of the migration Job and of its hook-scoped ConfigMap and Secret.
*/}}
{{- define "secure-mcp-server.migrationName" -}}
{{- printf "%s-migrate" (include "secure-mcp-server.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "secure-mcp-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels shared by every object, without the component.
*/}}
{{- define "secure-mcp-server.commonLabels" -}}
helm.sh/chart: {{ include "secure-mcp-server.chart" . }}
app.kubernetes.io/name: {{ include "secure-mcp-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secure-mcp-server
{{- end }}

{{/*
Labels of the server's objects.
*/}}
{{- define "secure-mcp-server.labels" -}}
{{ include "secure-mcp-server.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Labels of the migration Job and its hook objects: a different component, so neither the
Deployment, the Service, the PodDisruptionBudget nor the ServiceMonitor ever selects them.
*/}}
{{- define "secure-mcp-server.migrationLabels" -}}
{{ include "secure-mcp-server.commonLabels" . }}
app.kubernetes.io/component: migrations
{{- end }}

{{/*
Selector labels of the server's pods: immutable on a Deployment, so never add
version-dependent labels here.
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
Service account of the migration Job's pod. A pre-install hook runs before the release's
own ServiceAccount exists, so a chart-created one cannot be used there.
*/}}
{{- define "secure-mcp-server.migrationServiceAccountName" -}}
{{- if .Values.migrations.job.serviceAccountName }}
{{- .Values.migrations.job.serviceAccountName }}
{{- else if .Values.serviceAccount.create }}
{{- "default" }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
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
"true" when an external PostgreSQL is configured, "" otherwise (templates compare strings).
*/}}
{{- define "secure-mcp-server.externalDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/*
"true" when the migration Job runs: migrations.job.enabled true, or "auto" with an
external database.
*/}}
{{- define "secure-mcp-server.migrationJobEnabled" -}}
{{- $enabled := .Values.migrations.job.enabled }}
{{- if kindIs "bool" $enabled }}
{{- if $enabled }}true{{ end }}
{{- else if eq (toString $enabled) "true" }}true
{{- else if or (eq (toString $enabled) "auto") (eq (toString $enabled) "") (kindIs "invalid" $enabled) }}
{{- include "secure-mcp-server.externalDatabase" . }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding JWT_SECRET, ENCRYPTION_KEY and the optional application secrets.
*/}}
{{- define "secure-mcp-server.appSecretName" -}}
{{- default (include "secure-mcp-server.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
"true" when the chart renders a Secret of its own: for the application secrets (no
secrets.existingSecret), or for a database/redis URL given as a value.
*/}}
{{- define "secure-mcp-server.rendersSecret" -}}
{{- $v := .Values }}
{{- if or (not $v.secrets.existingSecret) (and $v.database.url (not $v.database.existingSecret)) (and $v.redis.url (not $v.redis.existingSecret)) }}true{{ end }}
{{- end }}

{{/*
"true" when the migration Job's hook-scoped Secret has something to hold: what the chart's
Secret holds, or a migration URL given as a value.
*/}}
{{- define "secure-mcp-server.rendersJobSecret" -}}
{{- if or (include "secure-mcp-server.rendersSecret" .) (and .Values.database.migrationUrl (not .Values.database.migrationExistingSecret)) }}true{{ end }}
{{- end }}

{{/*
data: of the chart's Secret (.job false) or of its hook-scoped copy for the migration Job
(.job true: without ADMIN_PASSWORD, which the CLI never uses, and with the owner's
DATABASE_MIGRATION_URL, which only the Job ever gets).
Call with (dict "root" $ "job" bool).
*/}}
{{- define "secure-mcp-server.secretData" -}}
{{- $v := .root.Values }}
{{- if not $v.secrets.existingSecret }}
JWT_SECRET: {{ $v.secrets.jwtSecret | b64enc | quote }}
ENCRYPTION_KEY: {{ $v.secrets.encryptionKey | b64enc | quote }}
AUDIT_HMAC_KEY: {{ $v.secrets.auditHmacKey | b64enc | quote }}
{{- if and (not .job) $v.secrets.adminPassword }}
ADMIN_PASSWORD: {{ $v.secrets.adminPassword | b64enc | quote }}
{{- end }}
{{- if and (not .job) $v.secrets.auditExportWebhookSecret }}
AUDIT_EXPORT_WEBHOOK_SECRET: {{ $v.secrets.auditExportWebhookSecret | b64enc | quote }}
{{- end }}
{{- with $v.secrets.smsHttpToken }}
SMS_HTTP_TOKEN: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- if and $v.database.url (not $v.database.existingSecret) }}
DATABASE_URL: {{ $v.database.url | b64enc | quote }}
{{- end }}
{{- if and .job $v.database.migrationUrl (not $v.database.migrationExistingSecret) }}
DATABASE_MIGRATION_URL: {{ $v.database.migrationUrl | b64enc | quote }}
{{- end }}
{{- if and $v.redis.url (not $v.redis.existingSecret) }}
REDIS_URL: {{ $v.redis.url | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
data: of the ConfigMap (and of its hook-scoped copy for the migration Job).
*/}}
{{- define "secure-mcp-server.configData" -}}
{{- $v := .Values }}
NODE_ENV: {{ $v.config.nodeEnv | quote }}
HOST: {{ $v.config.host | quote }}
PORT: {{ $v.containerPort | int64 | quote }}
# A subdirectory of the /data volume: the server creates DATA_DIR itself and restricts it to
# mode 0700, which it cannot do on the volume root (owned by root on an emptyDir).
DATA_DIR: "/data/server"
LOG_LEVEL: {{ $v.config.logLevel | quote }}
BODY_LIMIT: {{ $v.config.bodyLimit | int64 | quote }}
TRUST_PROXY: {{ $v.config.trustProxy | toString | quote }}
SHUTDOWN_GRACE_MS: {{ $v.config.shutdownGraceMs | int64 | quote }}
HTTP_HEADERS_TIMEOUT_MS: {{ $v.config.headersTimeoutMs | int64 | quote }}
HTTP_REQUEST_TIMEOUT_MS: {{ $v.config.requestTimeoutMs | int64 | quote }}
HTTP_KEEP_ALIVE_TIMEOUT_MS: {{ $v.config.keepAliveTimeoutMs | int64 | quote }}
{{- if include "secure-mcp-server.migrationJobEnabled" . }}
# The migration Job (a pre-install/pre-upgrade hook) has already migrated the schema.
RUN_MIGRATIONS: "false"
{{- else }}
RUN_MIGRATIONS: {{ $v.config.runMigrations | toString | quote }}
{{- end }}
DATABASE_POOL_MAX: {{ $v.database.poolMax | int64 | quote }}
DATABASE_SSL: {{ $v.database.ssl | toString | quote }}
CORS_CREDENTIALS: {{ $v.config.corsCredentials | toString | quote }}
SMS_SENDER: {{ $v.config.sms.sender | quote }}
{{- with $v.config.sms.httpUrl }}
SMS_HTTP_URL: {{ . | quote }}
{{- end }}
{{- with $v.config.corsOrigins }}
CORS_ORIGINS: {{ . | quote }}
{{- end }}
{{- with $v.config.adminEmail }}
ADMIN_EMAIL: {{ . | quote }}
{{- end }}
{{- with $v.config.auditExport }}
{{- if .webhookUrl }}
AUDIT_EXPORT_WEBHOOK_URL: {{ .webhookUrl | quote }}
AUDIT_EXPORT_WEBHOOK_TIMEOUT_MS: {{ .webhookTimeoutMs | int64 | quote }}
AUDIT_EXPORT_BATCH_SIZE: {{ .batchSize | int64 | quote }}
AUDIT_EXPORT_INTERVAL_MS: {{ .intervalMs | int64 | quote }}
AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: {{ .checkpointIntervalMs | int64 | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := $v.config.env }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/*
env: entries read from Secrets, for the app (.job false) or the migration Job (.job true,
which reads the chart's values from the hook-scoped copy and needs no ADMIN_PASSWORD: the
CLI never bootstraps the administrator).
Call with (dict "root" $ "job" bool).
*/}}
{{- define "secure-mcp-server.secretEnv" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $own := include "secure-mcp-server.fullname" $root }}
{{- if .job }}
{{- $own = include "secure-mcp-server.migrationName" $root }}
{{- end }}
{{- $app := default $own $v.secrets.existingSecret }}
{{- range $key := list "JWT_SECRET" "ENCRYPTION_KEY" "AUDIT_HMAC_KEY" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $app }}
      key: {{ $key }}
{{- end }}
{{- if $v.database.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.existingSecret }}
      key: {{ $v.database.existingSecretKey }}
{{- else if $v.database.url }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $own }}
      key: DATABASE_URL
{{- end }}
{{- if and .job $v.database.migrationExistingSecret }}
- name: DATABASE_MIGRATION_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.migrationExistingSecret }}
      key: {{ $v.database.migrationExistingSecretKey }}
{{- else if and .job $v.database.migrationUrl }}
- name: DATABASE_MIGRATION_URL
  valueFrom:
    secretKeyRef:
      name: {{ $own }}
      key: DATABASE_MIGRATION_URL
{{- end }}
{{- if $v.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.existingSecret }}
      key: {{ $v.redis.existingSecretKey }}
{{- else if $v.redis.url }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $own }}
      key: REDIS_URL
{{- end }}
{{- if and (not .job) $v.config.auditExport.webhookUrl (or $v.secrets.existingSecret $v.secrets.auditExportWebhookSecret) }}
- name: AUDIT_EXPORT_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $app }}
      key: AUDIT_EXPORT_WEBHOOK_SECRET
      optional: true
{{- end }}
{{- if or $v.secrets.existingSecret $v.secrets.smsHttpToken }}
- name: SMS_HTTP_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $app }}
      key: SMS_HTTP_TOKEN
      optional: true
{{- end }}
{{- if and (not .job) $v.config.adminEmail }}
- name: ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $app }}
      key: ADMIN_PASSWORD
{{- end }}
{{- end }}

{{/*
The smallest number of pods the Deployment runs.
*/}}
{{- define "secure-mcp-server.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
Render-time checks for mistakes that would otherwise surface as a crash-looping pod, a
split-brain embedded database or a blocked node drain. Included by deployment.yaml, which
every render contains.
*/}}
{{- define "secure-mcp-server.validate" -}}
{{- $v := .Values }}
{{- $external := include "secure-mcp-server.externalDatabase" . }}
{{- /* Keys of chart 0.1.0 that moved. */}}
{{- if or $v.secrets.databaseUrl $v.secrets.redisUrl }}
{{- fail "secrets.databaseUrl and secrets.redisUrl have moved to database.url and redis.url (or database.existingSecret / redis.existingSecret)." }}
{{- end }}
{{- /* Secrets. */}}
{{- if not $v.secrets.existingSecret }}
{{- $hint := "or set secrets.existingSecret to a Secret holding JWT_SECRET, ENCRYPTION_KEY and AUDIT_HMAC_KEY" }}
{{- if not $v.secrets.jwtSecret }}
{{- fail (printf "secrets.jwtSecret is required (at least 32 characters, e.g. `openssl rand -base64 48`), %s." $hint) }}
{{- end }}
{{- if not $v.secrets.encryptionKey }}
{{- fail (printf "secrets.encryptionKey is required (at least 32 characters, e.g. `openssl rand -base64 48`), %s." $hint) }}
{{- end }}
{{- if lt (len (toString $v.secrets.jwtSecret)) 32 }}
{{- fail "secrets.jwtSecret must be at least 32 characters long." }}
{{- end }}
{{- if lt (len (toString $v.secrets.encryptionKey)) 32 }}
{{- fail "secrets.encryptionKey must be at least 32 characters long." }}
{{- end }}
{{- if not $v.secrets.auditHmacKey }}
{{- fail (printf "secrets.auditHmacKey is required (at least 32 characters, e.g. `openssl rand -base64 48`; keep a copy outside the cluster: it keys the audit chain), %s." $hint) }}
{{- end }}
{{- if lt (len (toString $v.secrets.auditHmacKey)) 32 }}
{{- fail "secrets.auditHmacKey must be at least 32 characters long." }}
{{- end }}
{{- if and $v.config.adminEmail (not $v.secrets.adminPassword) }}
{{- fail "config.adminEmail needs secrets.adminPassword (or ADMIN_PASSWORD in secrets.existingSecret)." }}
{{- end }}
{{- if and $v.secrets.adminPassword (not $v.config.adminEmail) }}
{{- fail "secrets.adminPassword is set but config.adminEmail is not: the server needs both to create the first administrator." }}
{{- end }}
{{- end }}
{{- /* External services. */}}
{{- if and $v.database.url $v.database.existingSecret }}
{{- fail "Set database.url or database.existingSecret, not both." }}
{{- end }}
{{- if and $v.database.url (not (regexMatch "^postgres(ql)?://" (toString $v.database.url))) }}
{{- fail "database.url must be a postgres:// or postgresql:// URL." }}
{{- end }}
{{- if and $v.database.existingSecret (not $v.database.existingSecretKey) }}
{{- fail "database.existingSecretKey must name the key of database.existingSecret that holds the URL." }}
{{- end }}
{{- if and $v.redis.url $v.redis.existingSecret }}
{{- fail "Set redis.url or redis.existingSecret, not both." }}
{{- end }}
{{- if and $v.redis.url (not (regexMatch "^rediss?://" (toString $v.redis.url))) }}
{{- fail "redis.url must be a redis:// or rediss:// URL." }}
{{- end }}
{{- if and $v.redis.existingSecret (not $v.redis.existingSecretKey) }}
{{- fail "redis.existingSecretKey must name the key of redis.existingSecret that holds the URL." }}
{{- end }}
{{- /* Separate database roles: the owner migrates, the app role serves. */}}
{{- if and $v.database.migrationUrl $v.database.migrationExistingSecret }}
{{- fail "Set database.migrationUrl or database.migrationExistingSecret, not both." }}
{{- end }}
{{- if and $v.database.migrationUrl (not (regexMatch "^postgres(ql)?://" (toString $v.database.migrationUrl))) }}
{{- fail "database.migrationUrl must be a postgres:// or postgresql:// URL." }}
{{- end }}
{{- $ownerUrl := or $v.database.migrationUrl $v.database.migrationExistingSecret }}
{{- if and $ownerUrl (not (include "secure-mcp-server.migrationJobEnabled" .)) }}
{{- fail "database.migrationUrl / migrationExistingSecret are used by the migration Job only: enable it (migrations.job.enabled, with an external database), or the app would migrate as itself." }}
{{- end }}
{{- if and $v.database.appRole (not $ownerUrl) }}
{{- fail "database.appRole needs database.migrationUrl or database.migrationExistingSecret: the owner grants the app role its rights." }}
{{- end }}
{{- if and $v.database.appRole (not (regexMatch "^[a-z_][a-z0-9_]{0,62}$" (toString $v.database.appRole))) }}
{{- fail "database.appRole must be a plain lower-case PostgreSQL role name (letters, digits, _)." }}
{{- end }}
{{- /* Scale needs a shared database. */}}
{{- if and (gt (int $v.replicaCount) 1) (not $external) }}
{{- fail "replicaCount > 1 needs an external PostgreSQL: set database.url or database.existingSecret. The embedded database lives inside a single pod." }}
{{- end }}
{{- if and $v.autoscaling.enabled (not $external) }}
{{- fail "autoscaling.enabled needs an external PostgreSQL: set database.url or database.existingSecret. The embedded database lives inside a single pod." }}
{{- end }}
{{- if and (include "secure-mcp-server.migrationJobEnabled" .) (not $external) }}
{{- fail "migrations.job.enabled needs an external PostgreSQL: the embedded database lives inside the app pod, which migrates it at startup." }}
{{- end }}
{{- /* Production settings the server would refuse at startup. */}}
{{- if eq (toString $v.config.nodeEnv) "production" }}
{{- if ne (toString $v.config.sms.sender) "http" }}
{{- fail "config.sms.sender must be \"http\" when config.nodeEnv is production: the \"log\" sender writes MFA codes to the log." }}
{{- end }}
{{- if not $v.config.sms.httpUrl }}
{{- fail "config.sms.httpUrl is required when config.nodeEnv is production: the server sends MFA codes through this HTTP SMS gateway and refuses to start without it." }}
{{- end }}
{{- end }}
{{- /* Shutdown timing. */}}
{{- $preStopMs := 0 }}
{{- if and (gt (int $v.preStopSleepSeconds) 0) (not (and $v.lifecycle $v.lifecycle.preStop)) }}
{{- $preStopMs = mul (int64 $v.preStopSleepSeconds) 1000 }}
{{- end }}
{{- if ge (add $preStopMs (int64 $v.config.shutdownGraceMs)) (mul (int64 $v.terminationGracePeriodSeconds) 1000) }}
{{- fail "terminationGracePeriodSeconds must be longer than preStopSleepSeconds + config.shutdownGraceMs, or Kubernetes kills the pod before it has drained." }}
{{- end }}
{{- /* Autoscaling. */}}
{{- if $v.autoscaling.enabled }}
{{- if gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas." }}
{{- end }}
{{- if not (or $v.autoscaling.targetCPUUtilizationPercentage $v.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling.enabled needs targetCPUUtilizationPercentage and/or targetMemoryUtilizationPercentage." }}
{{- end }}
{{- $requests := (($v.resources | default dict).requests | default dict) }}
{{- if and $v.autoscaling.targetCPUUtilizationPercentage (not $requests.cpu) }}
{{- fail "autoscaling.targetCPUUtilizationPercentage needs resources.requests.cpu (utilisation is measured against it)." }}
{{- end }}
{{- if and $v.autoscaling.targetMemoryUtilizationPercentage (not $requests.memory) }}
{{- fail "autoscaling.targetMemoryUtilizationPercentage needs resources.requests.memory (utilisation is measured against it)." }}
{{- end }}
{{- end }}
{{- /* Disruption budget. */}}
{{- if $v.podDisruptionBudget.enabled }}
{{- $min := toString $v.podDisruptionBudget.minAvailable }}
{{- $max := toString $v.podDisruptionBudget.maxUnavailable }}
{{- if eq (empty $v.podDisruptionBudget.minAvailable) (empty $v.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget: set exactly one of minAvailable and maxUnavailable." }}
{{- end }}
{{- if and $v.podDisruptionBudget.minAvailable (regexMatch "^[0-9]+$" $min) (ge (int $min) (int (include "secure-mcp-server.minReplicas" .))) }}
{{- fail "podDisruptionBudget.minAvailable must be lower than the number of replicas, or no pod can ever be evicted and node drains hang." }}
{{- end }}
{{- if and $v.podDisruptionBudget.maxUnavailable (regexMatch "^0+%?$" $max) }}
{{- fail "podDisruptionBudget.maxUnavailable must be above 0, or no pod can ever be evicted and node drains hang." }}
{{- end }}
{{- end }}
{{- /* Ingress. */}}
{{- if and $v.ingress.enabled (not $v.ingress.hosts) }}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts." }}
{{- end }}
{{- end }}
