{{/*
The rules of the operator's (Cluster)Role, shared by both scopes: each verb and why it is needed.
The operator never reads Secrets (worker pods get credentials from them directly) and never
creates pods itself (Jobs do).
*/}}
{{- define "faceblur.operatorRules" -}}
# FaceBlurJobs: list and watch feed kopf's event stream; get re-reads one before each reconcile;
# patch writes kopf's handler-progress annotations (kopf.faceblur.dev/*) on the object.
- apiGroups: ["faceblur.dev"]
  resources: ["faceblurjobs"]
  verbs: ["get", "list", "watch", "patch"]
# The status subresource: phase, conditions and progress, one merge patch per reconcile.
- apiGroups: ["faceblur.dev"]
  resources: ["faceblurjobs/status"]
  verbs: ["patch"]
# The finalizers subresource: the operator's Jobs carry an owner reference with blockOwnerDeletion,
# which the OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift) allows only to
# whoever may update the owner's finalizers. The operator never adds a finalizer.
- apiGroups: ["faceblur.dev"]
  resources: ["faceblurjobs/finalizers"]
  verbs: ["update"]
# Jobs: create the split, worker (Indexed), compose and cleanup Jobs (a repeated create answers 409,
# so a restarted operator finds its Jobs instead of duplicating them); list and watch them, because
# their state drives each FaceBlurJob; delete replaces a failed stage's Job on retry. The Jobs of a
# deleted FaceBlurJob go by garbage collection (owner references), not by this verb. patch resumes
# a deleted FaceBlurJob's cleanup Job (created suspended) once its pods are gone.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Pods: read-only; a finished pod's termination message carries the worker's result or its error,
# and a waiting pod's reason (Unschedulable, ImagePullBackOff) becomes the job's reason.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Events on FaceBlurJobs at each transition and failure, for kubectl describe.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
