{{/*
The rules of the operator's (Cluster)Role, shared by both scopes. Each verb and why it is needed.
*/}}
{{- define "faceblur.operatorRules" -}}
# FaceBlurJobs: kopf lists and watches them to react to every change; get re-reads one after a
# conflict; patch writes kopf's finalizer and its handler-progress annotations on the object.
- apiGroups: ["faceblur.dev"]
  resources: ["faceblurjobs"]
  verbs: ["get", "list", "watch", "patch"]
# The status subresource: phase, conditions and progress are written with patch, once per reconcile.
- apiGroups: ["faceblur.dev"]
  resources: ["faceblurjobs/status"]
  verbs: ["get", "patch"]
# Jobs: create the split, worker (Indexed) and compose Jobs; list and watch them because their
# state drives each FaceBlurJob; get finds an existing one after a restart; delete replaces the
# worker Job when a failed job is retried (the Jobs of a deleted FaceBlurJob go by garbage collection).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Pods: read-only; a finished pod's termination message carries the worker's result or its error
# (the operator never talks to the object store itself).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# Events on FaceBlurJobs at each transition and failure, for kubectl describe.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
