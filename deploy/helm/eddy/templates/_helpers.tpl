{{- define "eddy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "eddy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "eddy.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eddy.secretName" -}}
{{- default (printf "%s-keys" (include "eddy.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{- define "eddy.redisURL" -}}
{{- if .Values.redis.url -}}{{ .Values.redis.url }}{{- else if .Values.redis.bundled -}}redis://{{ include "eddy.fullname" . }}-redis:6379/0{{- end -}}
{{- end -}}

{{/* seconds of a Go duration like 10s, 1m or 1m30s (h, m and s only) */}}
{{- define "eddy.seconds" -}}
{{- $d := . -}}{{- $total := 0 -}}
{{- range $part := regexFindAll "[0-9]+[hms]" $d -1 -}}
{{- $n := trimSuffix "h" (trimSuffix "m" (trimSuffix "s" $part)) | int -}}
{{- if hasSuffix "h" $part -}}{{- $total = add $total (mul $n 3600) -}}{{- else if hasSuffix "m" $part -}}{{- $total = add $total (mul $n 60) -}}{{- else -}}{{- $total = add $total $n -}}{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}
