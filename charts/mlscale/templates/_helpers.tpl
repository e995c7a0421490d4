{{/* The release's full name: "<release>-mlscale", or the release name when it already says mlscale. */}}
{{- define "mlscale.fullname" -}}
{{- if contains "mlscale" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-mlscale" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mlscale.selectorLabels" -}}
app.kubernetes.io/name: mlscale
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "mlscale.labels" -}}
{{ include "mlscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mlscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mlscale.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is needed when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Leader election: always with more than one replica, or when asked for. */}}
{{- define "mlscale.leaderElection" -}}
{{- if or (gt (int .Values.replicas) 1) .Values.leaderElection.enabled -}}true{{- end -}}
{{- end -}}

{{/*
The rules the controllers need in the namespaces they manage, exactly: each comes from a
request the operator makes (the comment names it). tests/chart proves with the API server's
audit log that each is used and nothing else is asked for.
*/}}
{{- define "mlscale.namespacedRules" -}}
{{- $kinds := .Values.controllers -}}
{{- if has "TrainingJob" $kinds }}
# TrainingJob controller: its informer (list, watch); ttlSecondsAfterFinished deletes the job.
- apiGroups: [mlscale.io]
  resources: [trainingjobs]
  verbs: [list, watch, delete]
# It writes status through the status subresource only.
- apiGroups: [mlscale.io]
  resources: [trainingjobs/status]
  verbs: [update]
# Worker pods: informer, create per rank, delete on restart, suspend and cleanPodPolicy.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, create, delete]
# The job's headless Service, trainer ConfigMap (MPI: hostfile) and token Secret (MPI: SSH
# key): informers (label mlscale.io/managed-by), created when absent; the garbage
# collector deletes them with the job.
- apiGroups: [""]
  resources: [services, configmaps, secrets]
  verbs: [list, watch, create]
{{- if .Values.gangScheduling.enabled }}
# Gang scheduling: one PodGroup per worker group (create-if-absent).
- apiGroups: [scheduling.x-k8s.io]
  resources: [podgroups]
  verbs: [create]
{{- end }}
{{- end }}
# Every controller records Events; a repeated one is patched (count, lastTimestamp).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* Rules on cluster-scoped resources (always a ClusterRole). */}}
{{- define "mlscale.clusterRules" -}}
{{- $kinds := .Values.controllers -}}
{{- if has "TrainingJob" $kinds }}
# TrainingJob controller: a pod whose node is gone is a disrupted worker (nodes informer).
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
{{- if .Values.gangScheduling.enabled }}
# At start: is the PodGroup CRD served?
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [podgroups.scheduling.x-k8s.io]
  verbs: [get]
{{- end }}
{{- end }}
{{- end -}}
