{{/*
entrepot.yaml, built as a dictionary and written with toYaml, so that
values are quoted as YAML needs. Each replica's cluster.advertise is its
--cluster-advertise flag (the Deployment's args), not a key here.
*/}}
{{- define "entrepot.config" -}}
{{- $v := .Values -}}
{{- $c := dict
  "listen" (printf ":%s" (include "entrepot.port" .))
  "data" "/var/lib/entrepot"
  "log" (dict "format" $v.log.format "level" $v.log.level)
  "shutdown_grace" (printf "%ds" (int $v.shutdownGraceSeconds)) -}}
{{- with $v.upstreams }}
{{- $_ := set $c "upstreams" . }}
{{- end }}
{{- $s3 := dict "bucket" (required "s3.bucket is required" $v.s3.bucket) "path_style" $v.s3.pathStyle -}}
{{- with $v.s3.endpoint }}{{ $_ := set $s3 "endpoint" . }}{{ end }}
{{- with $v.s3.region }}{{ $_ := set $s3 "region" . }}{{ end }}
{{- with $v.s3.prefix }}{{ $_ := set $s3 "prefix" . }}{{ end }}
{{- if $v.s3.existingSecret }}
{{- $_ := set $s3 "access_key_env" (include "entrepot.env.s3AccessKey" .) }}
{{- $_ := set $s3 "secret_key_env" (include "entrepot.env.s3SecretKey" .) }}
{{- end }}
{{- $storage := dict "s3" $s3 -}}
{{- with $v.storage.maxSize }}{{ $_ := set $storage "max_size" . }}{{ end }}
{{- $_ := set $c "storage" $storage -}}
{{- if $v.redis.existingSecret }}
{{- $_ := set $c "cluster" (dict "redis_env" (include "entrepot.env.redisURL" .) "secret_env" (include "entrepot.env.peerSecret" .)) }}
{{- else if $v.redis.url }}
{{- $_ := set $c "cluster" (dict "redis" $v.redis.url "secret_env" (include "entrepot.env.peerSecret" .)) }}
{{- end }}
{{- $redirect := dict "enabled" $v.redirect.enabled -}}
{{- with $v.redirect.expiry }}{{ $_ := set $redirect "expiry" . }}{{ end }}
{{- with $v.redirect.clients }}{{ $_ := set $redirect "clients" . }}{{ end }}
{{- with $v.redirect.direct }}{{ $_ := set $redirect "direct" . }}{{ end }}
{{- $_ := set $c "redirect" $redirect -}}
{{- if $v.admin.existingSecret }}
{{- $_ := set $c "admin" (dict "listen" (printf ":%s" (include "entrepot.adminPort" .)) "token_env" (include "entrepot.env.adminToken" .)) }}
{{- end }}
{{- toYaml (mergeOverwrite $c (deepCopy $v.config)) }}
{{- end }}
