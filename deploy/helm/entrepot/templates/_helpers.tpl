{{/* The chart's name, and the release's objects' (at most 63 characters). */}}
{{- define "entrepot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "entrepot.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "entrepot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entrepot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "entrepot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "entrepot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "entrepot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "entrepot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The variables entrepot.yaml names (access_key_env, secret_key_env,
secret_env, token_env): the Deployment sets each from its Secret.
*/}}
{{- define "entrepot.env.s3AccessKey" -}}S3_ACCESS_KEY{{- end }}
{{- define "entrepot.env.s3SecretKey" -}}S3_SECRET_KEY{{- end }}
{{- define "entrepot.env.peerSecret" -}}ENTREPOT_PEER_SECRET{{- end }}
{{- define "entrepot.env.redisURL" -}}ENTREPOT_REDIS_URL{{- end }}
{{/* Whether the replicas form a cluster: a Redis URL, inline or from a Secret. */}}
{{- define "entrepot.clustered" -}}{{ if or .Values.redis.url .Values.redis.existingSecret }}true{{ end }}{{- end }}
{{- define "entrepot.env.adminToken" -}}ENTREPOT_ADMIN_TOKEN{{- end }}

{{/* The registry API's port in the container, and the admin API's. */}}
{{- define "entrepot.port" -}}5000{{- end }}
{{- define "entrepot.adminPort" -}}5001{{- end }}
