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
# key): informers (label app.kubernetes.io/managed-by), created when absent; the garbage
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
{{- if has "HyperparameterSweep" $kinds }}
# HyperparameterSweep controller: its informer; status through the status subresource.
- apiGroups: [mlscale.io]
  resources: [hyperparametersweeps]
  verbs: [list, watch]
- apiGroups: [mlscale.io]
  resources: [hyperparametersweeps/status]
  verbs: [update]
# Trials are TrainingJobs: informer (label mlscale.io/sweep-name), created per suggestion,
# patched to record their values (annotation) and to stop them early (suspend).
- apiGroups: [mlscale.io]
  resources: [trainingjobs]
  verbs: [list, watch, create, patch]
{{- end }}
{{- if has "InferenceService" $kinds }}
# InferenceService controller: its informer; status through the status subresource.
- apiGroups: [mlscale.io]
  resources: [inferenceservices]
  verbs: [list, watch]
- apiGroups: [mlscale.io]
  resources: [inferenceservices/status]
  verbs: [update]
# Revisions and the router: a Deployment and a Service each, written by server-side apply
# (PATCH; an apply that creates the object is also authorized as create), retired revisions
# deleted; informers (label mlscale.io/inference-service).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
# Model-server pods' readiness (informer), the TrainingJobs whose models are served.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [mlscale.io]
  resources: [trainingjobs]
  verbs: [list, watch]
# The router's identity in the service's namespace: ServiceAccount and RoleBinding
# mlscale-router (create-if-absent); binding the ClusterRole mlscale-router needs `bind` on
# it (the operator does not hold the router's read permissions itself).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [mlscale-router]
  verbs: [bind]
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
{{- if has "HyperparameterSweep" $kinds }}
# HyperparameterSweep controller, at start: is its CRD installed (else it stays off)?
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [hyperparametersweeps.mlscale.io]
  verbs: [get]
{{- end }}
{{- if has "InferenceService" $kinds }}
# InferenceService controller, at start: is its CRD installed (else it stays off)?
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [inferenceservices.mlscale.io]
  verbs: [get]
{{- end }}
{{- end -}}
