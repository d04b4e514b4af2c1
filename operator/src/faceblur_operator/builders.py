"""Pure builders of the Jobs a FaceBlurJob runs: a plan in, a Kubernetes Job manifest (a dict) out.

    <name>-split    faceblur split:   cuts the input into chunks and writes the manifest
    <name>-work     faceblur process: an Indexed Job, one completion per group of chunks
    <name>-compose  faceblur compose: concatenates the chunks into the output
    <name>-cleanup  removes the intermediates (only for cleanup: Always after a failure)

Every Job is owned by the FaceBlurJob (deleting it cascades), labelled with its uid, stage and
attempt, and named deterministically so that creating it twice collides instead of duplicating.
Pods write one JSON line to /dev/termination-log: the operator reads results from there and never
talks to the object store itself.
"""

from __future__ import annotations

from typing import Any

from faceblur_contract.argv import cleanup_argv
from faceblur_contract.exits import PERMANENT_EXIT_CODES
from faceblur_contract.pods import CPU_LIMIT_ENV, CPU_REQUEST_ENV, index_count

from faceblur_operator import api
from faceblur_operator.api import DRIVER_MAJOR_LABEL, ResourceAmounts
from faceblur_operator.naming import (
    ANNOTATION_CHUNKS,
    ANNOTATION_CHUNKS_PER_INDEX,
    ANNOTATION_OWNER,
    LABEL_KUEUE_QUEUE,
    Stage,
    child_labels,
    deletion_cleanup_name,
    job_name,
)
from faceblur_operator.plan import JobPlan, PodSettings
from faceblur_operator.scratch import EPHEMERAL_STORAGE, quantity, scratch_bytes

CONTAINER = "worker"
TERMINATION_LOG = "/dev/termination-log"
SCRATCH = "/tmp"  # the only writable path: the root filesystem is read-only
IDENTITY_DIR = "/var/run/secrets/faceblur/storage-identity"  # the projected web identity token
STAGE_BACKOFF_LIMIT = 2  # retries of the split, compose and cleanup pods
NVIDIA_CAPABILITIES = "compute,utility,video"  # video: NVDEC/NVENC inside the container
DELETION_CLEANUP_TTL_S = 600

Manifest = dict[str, Any]


def owner_reference(plan: JobPlan) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": plan.owner.name,
        "uid": plan.owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_failure_policy(action_on_permanent: str = "FailJob") -> dict[str, Any]:
    """Fail at once on the worker's permanent exit codes (usage, invalid input, model: the contract's
    PERMANENT_EXIT_CODES); never count node drains and preemptions."""
    return {
        "rules": [
            {
                "action": action_on_permanent,
                "onExitCodes": {
                    "containerName": CONTAINER,
                    "operator": "In",
                    "values": sorted(int(code) for code in PERMANENT_EXIT_CODES),
                },
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]
    }


def storage_env(plan: JobPlan) -> list[dict[str, Any]]:
    """The worker's FACEBLUR_S3_* variables; keys only through secretKeyRef."""
    access = plan.storage
    env: list[dict[str, Any]] = [{"name": "FACEBLUR_S3_ENDPOINT", "value": access.endpoint}]
    if access.secure is not None:
        env.append({"name": "FACEBLUR_S3_SECURE", "value": "true" if access.secure else "false"})
    if access.region:
        env.append({"name": "FACEBLUR_S3_REGION", "value": access.region})
    if access.secret_name:
        for var, key in (
            ("FACEBLUR_S3_ACCESS_KEY", access.access_key_key),
            ("FACEBLUR_S3_SECRET_KEY", access.secret_key_key),
        ):
            env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": access.secret_name, "key": key}}})
    elif access.web_identity:  # the names minio's (and every AWS SDK's) web identity provider reads
        env.append({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{IDENTITY_DIR}/token"})
        env.append({"name": "AWS_ROLE_ARN", "value": access.web_identity.role_arn})
    return env


def identity_volume(plan: JobPlan) -> dict[str, Any] | None:
    """The projected token of the default store's web identity: for its audience only, short-lived and
    rotated by the kubelet; the pod's API token stays unmounted (automountServiceAccountToken)."""
    identity = plan.storage.web_identity
    if plan.storage.secret_name or identity is None:
        return None
    token = {
        "audience": identity.audience,
        "expirationSeconds": identity.expiration_seconds,
        "path": "token",
    }
    return {"name": "storage-identity", "projected": {"sources": [{"serviceAccountToken": token}]}}


def _amounts(amounts: ResourceAmounts) -> dict[str, str]:
    return {name: str(value) for name, value in (("cpu", amounts.cpu), ("memory", amounts.memory)) if value}


def resources(pod: PodSettings, scratch: int | None = None) -> dict[str, Any]:
    """The pod's requests and limits; `scratch` bytes of ephemeral storage requested, where known."""
    out: dict[str, Any] = {}
    requests, limits = _amounts(pod.requests), _amounts(pod.limits)
    if scratch is not None:
        requests[EPHEMERAL_STORAGE] = quantity(scratch)
    if pod.gpus:
        limits[pod.gpu_resource] = str(pod.gpus)  # extended resources: the request follows the limit
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def cpu_env(pod: PodSettings) -> list[dict[str, Any]]:
    """The pod's CPU limit and request in millicores through the Downward API, each only where the pod
    sets it (an unset limit would read as the node's CPUs): the worker plans its pipelines from them."""
    env: list[dict[str, Any]] = []
    for var, resource, amount in (
        (CPU_LIMIT_ENV, "limits.cpu", pod.limits.cpu),
        (CPU_REQUEST_ENV, "requests.cpu", pod.requests.cpu),
    ):
        if amount is not None:
            field = {"containerName": CONTAINER, "resource": resource, "divisor": "1m"}
            env.append({"name": var, "valueFrom": {"resourceFieldRef": field}})
    return env


def _container(plan: JobPlan, pod: PodSettings, command: list[str], scratch: int | None) -> dict[str, Any]:
    env = [
        *storage_env(plan),
        {"name": "FACEBLUR_TERMINATION_LOG", "value": TERMINATION_LOG},
        {"name": "TMPDIR", "value": SCRATCH},  # the image sets FACEBLUR_MODEL_CACHE to its baked models
    ]
    if pod.gpus:
        env.append({"name": "NVIDIA_DRIVER_CAPABILITIES", "value": NVIDIA_CAPABILITIES})
    env += cpu_env(pod)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": pod.image,
        "command": command,
        "env": env,
        "resources": resources(pod, scratch),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if identity_volume(plan) is not None:
        container["volumeMounts"].append(
            {"name": "storage-identity", "mountPath": IDENTITY_DIR, "readOnly": True}
        )
    if plan.pull_policy:
        container["imagePullPolicy"] = plan.pull_policy
    return container


def _pod_spec(plan: JobPlan, pod: PodSettings, command: list[str], scratch: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",  # the Job retries; podFailurePolicy needs Never
        "automountServiceAccountToken": False,  # workers never talk to the API server
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(plan, pod, command, scratch)],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    if scratch is not None:  # bounded: a pod that outgrows it is evicted, not the node's disk filled
        spec["volumes"][0]["emptyDir"]["sizeLimit"] = quantity(scratch)
    identity = identity_volume(plan)
    if identity is not None:
        spec["volumes"].append(identity)
    if plan.service_account:
        spec["serviceAccountName"] = plan.service_account
    placement = pod.placement
    if placement.node_selector:
        spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in placement.tolerations
        ]
    if placement.priority_class_name:
        spec["priorityClassName"] = placement.priority_class_name
    if placement.runtime_class_name:
        spec["runtimeClassName"] = placement.runtime_class_name
    if pod.min_driver_major is not None:  # GFD's label value is the major version, compared as an integer
        newer = {"key": DRIVER_MAJOR_LABEL, "operator": "Gt", "values": [str(pod.min_driver_major - 1)]}
        terms = [{"matchExpressions": [newer]}]
        spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
        }
    return spec


def _job(
    plan: JobPlan,
    stage: Stage,
    attempt: int,
    pod: PodSettings,
    command: list[str],
    job_spec: dict[str, Any],
    *,
    name: str | None = None,
    owned: bool = True,
    scratch: int | None = None,
) -> Manifest:
    labels = child_labels(plan.owner.name, plan.owner.uid, stage, attempt)
    annotations = {ANNOTATION_OWNER: plan.owner.name}
    metadata: dict[str, Any] = {
        "name": name or job_name(plan.owner.name, stage, attempt),
        "namespace": plan.owner.namespace,
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    if owned:
        metadata["ownerReferences"] = [owner_reference(plan)]
    spec: dict[str, Any] = dict(job_spec)
    if plan.queue_name:
        metadata["labels"][LABEL_KUEUE_QUEUE] = plan.queue_name
        spec["suspend"] = True  # Kueue admits the Job by unsuspending it
    spec["template"] = {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": _pod_spec(plan, pod, command, scratch),
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def build_split_job(plan: JobPlan, attempt: int = 0) -> Manifest:
    return _job(
        plan,
        Stage.SPLIT,
        attempt,
        plan.cpu_pod,
        ["faceblur", "split", *plan.split_args],
        {"backoffLimit": STAGE_BACKOFF_LIMIT, "podFailurePolicy": pod_failure_policy()},
    )


def build_worker_job(
    plan: JobPlan, chunks: int, attempt: int = 0, input_bytes: int | None = None
) -> Manifest:
    """An index per group of `plan.chunks_per_index` chunks (JOB_COMPLETION_INDEX in the pods).
    With the input's size (the split's record), the pods' scratch space is requested and bounded."""
    if chunks < 1:
        raise ValueError(f"a worker Job needs at least one chunk, not {chunks}")
    indexes = index_count(chunks, plan.chunks_per_index)
    manifest = _job(
        plan,
        Stage.WORK,
        attempt,
        plan.worker_pod,
        ["faceblur", "process", *plan.process_args],
        {
            "completionMode": "Indexed",
            "completions": indexes,
            "parallelism": min(plan.parallelism, indexes),
            "backoffLimitPerIndex": plan.backoff_limit_per_index,
            "podFailurePolicy": pod_failure_policy(),
        },
        scratch=scratch_bytes(Stage.WORK, input_bytes, indexes, plan.debug),  # a pod holds its group
    )
    grouping = {ANNOTATION_CHUNKS: str(chunks), ANNOTATION_CHUNKS_PER_INDEX: str(plan.chunks_per_index)}
    for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
        meta["annotations"] = {**meta["annotations"], **grouping}  # read back by views: indexes -> chunks
    return manifest


def build_compose_job(plan: JobPlan, attempt: int = 0, input_bytes: int | None = None) -> Manifest:
    return _job(
        plan,
        Stage.COMPOSE,
        attempt,
        plan.cpu_pod,
        ["faceblur", "compose", *plan.compose_args],
        {"backoffLimit": STAGE_BACKOFF_LIMIT, "podFailurePolicy": pod_failure_policy()},
        scratch=scratch_bytes(Stage.COMPOSE, input_bytes, 1, plan.debug),
    )


def cleanup_command(plan: JobPlan) -> list[str]:
    return ["faceblur", "cleanup", *cleanup_argv(plan.job_url, plan.owner.uid)]


def build_cleanup_job(plan: JobPlan, attempt: int = 0) -> Manifest:
    """Removes intermediates after a failure under cleanup: Always; owned, so it goes with the FaceBlurJob."""
    return _job(
        plan,
        Stage.CLEANUP,
        attempt,
        plan.cpu_pod,
        cleanup_command(plan),
        {"backoffLimit": STAGE_BACKOFF_LIMIT},
    )


def build_deletion_cleanup_job(plan: JobPlan) -> Manifest:
    """Removes intermediates after the FaceBlurJob is gone: unowned (it would be garbage-collected at
    once otherwise) and deleted by its TTL after it finishes. Created suspended: the operator resumes
    it once the job's other pods are gone, since a pod still terminating could write after it ran."""
    manifest = _job(
        plan,
        Stage.CLEANUP,
        0,
        plan.cpu_pod,
        cleanup_command(plan),
        {"backoffLimit": STAGE_BACKOFF_LIMIT, "ttlSecondsAfterFinished": DELETION_CLEANUP_TTL_S},
        name=deletion_cleanup_name(plan.owner.name, plan.owner.uid),
        owned=False,
    )
    manifest["spec"]["suspend"] = True  # until the job's pods are gone (Reconciler.release_deletion_cleanup)
    manifest["metadata"]["labels"].pop(LABEL_KUEUE_QUEUE, None)  # nothing is queued for a job that is gone
    return manifest
