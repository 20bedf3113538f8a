{{/* Standard names and labels (app.kubernetes.io/*). */}}
{{- define "kaic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kaic.labels" -}}
app.kubernetes.io/name: {{ include "kaic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kaic
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kaic.selector" -}}
app.kubernetes.io/name: {{ include "kaic.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Pod and container security for the Pod Security Standards "restricted" profile. */}}
{{- define "kaic.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kaic.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "kaic.s3Endpoint" -}}
{{- if eq .Values.objectStore.mode "minio" -}}
http://{{ .Release.Name }}-minio.{{ .Release.Namespace }}.svc:9000
{{- else -}}
{{ .Values.objectStore.external.endpoint }}
{{- end -}}
{{- end -}}
