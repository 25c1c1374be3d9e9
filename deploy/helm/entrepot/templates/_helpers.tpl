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

{{/* The admission webhook's objects (webhook.enabled). */}}
{{- define "entrepot.webhookName" -}}
{{- printf "%s-webhook" (include "entrepot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Another name than the cache's: the cache's selectors must not find the webhook's pods. */}}
{{- define "entrepot.webhookSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-webhook" (include "entrepot.name" .) }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "entrepot.webhookLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "entrepot.webhookSelectorLabels" . }}
app.kubernetes.io/part-of: {{ include "entrepot.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The namespaces the webhook leaves alone, its own included, as JSON. */}}
{{- define "entrepot.webhookExcluded" -}}
{{- $ns := .Values.webhook.excludeNamespaces | default (list) -}}
{{- if not (has .Release.Namespace $ns) }}{{ $ns = append $ns .Release.Namespace }}{{ end -}}
{{- toJson $ns -}}
{{- end }}

{{/*
The webhook's configuration: the cache's upstreams and the webhook section.
The cache is the address nodes pull from (webhook.cache); its readiness is
asked of the chart's Service, unless webhook.readyURL says otherwise.
*/}}
{{- define "entrepot.webhookConfig" -}}
{{- $w := .Values.webhook -}}
{{- $ready := $w.readyURL | default (printf "http://%s.%s.svc:%v/readyz" (include "entrepot.fullname" .) .Release.Namespace .Values.service.port) -}}
{{- $section := dict
  "listen" ":8443"
  "tls" (dict "cert" "/etc/entrepot-webhook/tls/tls.crt" "key" "/etc/entrepot-webhook/tls/tls.key")
  "cache" (required "webhook.cache is required: the host and port nodes pull from the cache at" $w.cache)
  "exclude" (dict "namespaces" (include "entrepot.webhookExcluded" . | fromJsonArray) "images" ($w.excludeImages | default (list)))
  "require_ready" $w.requireReady
  "ready_url" $ready -}}
{{- with $w.pullSecret }}{{ $_ := set $section "pull_secret" . }}{{ end -}}
{{- $c := dict "webhook" $section "log" (dict "format" .Values.log.format "level" .Values.log.level) -}}
{{- with .Values.upstreams }}
{{- $ups := list -}}
{{- range . }}{{ $ups = append $ups (dict "name" .name "url" .url) }}{{ end -}}
{{- $_ := set $c "upstreams" $ups }}
{{- end }}
{{- toYaml $c }}
{{- end }}
