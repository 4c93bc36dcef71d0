{{/* Names and labels. */}}
{{- define "pingyi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pingyi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pingyi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pingyi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pingyi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pingyi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "pingyi.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The image's user (Dockerfile: pingyi, 10001). Every pod and container runs as it. */}}
{{- define "pingyi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "pingyi.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Writable scratch space under a read-only root filesystem. */}}
{{- define "pingyi.scratchVolumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
- name: data
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{- define "pingyi.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/pingyi
{{- end -}}

{{/* Environment every Pingyi process of the chart shares (none of it secret). */}}
{{- define "pingyi.baseEnv" -}}
- name: PINGYI_DATA_DIR
  value: /var/lib/pingyi
- name: PINGYI_APP_DB_ROLE
  value: {{ .Values.database.appRole | quote }}
{{- end -}}

{{/* The application role's connection: API pods and the audit CronJob. */}}
{{- define "pingyi.appDatabaseEnv" -}}
- name: PINGYI_APP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.app.existingSecret }}
      key: {{ .Values.database.app.key }}
{{- end -}}

{{- define "pingyi.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopSeconds .Values.shutdown.unreadySeconds .Values.shutdown.gracefulSeconds .Values.shutdown.marginSeconds -}}
{{- end -}}
