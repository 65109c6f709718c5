{{/* Labels every object of the workload carries. */}}
{{- define "skiff.labels" -}}
{{ include "skiff.selector" . }}
app.kubernetes.io/component: {{ .Values.kind | quote }}
app.kubernetes.io/part-of: {{ required "project is required" .Values.project | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/* Labels that select the workload's pods. */}}
{{- define "skiff.selector" -}}
app.kubernetes.io/name: {{ include "skiff.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "skiff.name" -}}
{{ required "workload is required" .Values.workload }}
{{- end -}}

{{/* The Service of a scaled workload's own pods. */}}
{{- define "skiff.podsService" -}}
{{ include "skiff.name" . }}-pods
{{- end -}}

{{/* A NetworkPolicy peer from skiff.yaml's network: {namespace, pods} or {cidr}. */}}
{{- define "skiff.peer" -}}
{{- if .cidr -}}
- ipBlock:
    cidr: {{ .cidr | quote }}
{{- else -}}
- {{- with .namespace }}
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . | quote }}
  {{- end }}
  {{- with .pods }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The ports of a peer ("": every port). */}}
{{- define "skiff.ports" -}}
{{- with .ports -}}
ports:
  {{- range . }}
  - protocol: TCP
    port: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- /* The port the workload's Service sends requests to: skiff-relay's
  proxy when it runs, else the workload's own. */}}
{{- define "skiff.targetPort" -}}
{{- if .Values.proxy.enabled }}{{ .Values.proxy.port }}{{ else }}http{{ end }}
{{- end }}
