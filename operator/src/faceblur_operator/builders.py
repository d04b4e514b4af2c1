"""Pure builders of the Jobs a FaceBlurJob runs: a plan in, a Kubernetes Job manifest (a dict) out.

    <name>-split    faceblur split:   cuts the input into chunks and writes the manifest
    <name>-work     faceblur process: an Indexed Job, one completion per chunk
    <name>-compose  faceblur compose: concatenates the chunks into the output
    <name>-cleanup  removes the intermediates (only for cleanup: Always after a failure)

Every Job is owned by the FaceBlurJob (deleting it cascades), labelled with its uid, stage and
attempt, and named deterministically so that creating it twice collides instead of duplicating.
Pods write one JSON line to /dev/termination-log: the operator reads results from there and never
talks to the object store itself.
"""

from __future__ import annotations

from typing import Any

from faceblur_contract.exits import PERMANENT_EXIT_CODES

from faceblur_operator import api
from faceblur_operator.api import ResourceAmounts
from faceblur_operator.naming import (
    ANNOTATION_OWNER,
    LABEL_KUEUE_QUEUE,
    Stage,
    child_labels,
    deletion_cleanup_name,
    job_name,
)
from faceblur_operator.plan import JobPlan, PodSettings

CONTAINER = "worker"
TERMINATION_LOG = "/dev/termination-log"
SCRATCH = "/tmp"  # the only writable path: the root filesystem is read-only
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
    return env


def _amounts(amounts: ResourceAmounts) -> dict[str, str]:
    return {name: str(value) for name, value in (("cpu", amounts.cpu), ("memory", amounts.memory)) if value}


def resources(pod: PodSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    requests, limits = _amounts(pod.requests), _amounts(pod.limits)
    if pod.gpus:
        limits["nvidia.com/gpu"] = str(pod.gpus)  # extended resources: the request follows the limit
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _container(plan: JobPlan, pod: PodSettings, command: list[str]) -> dict[str, Any]:
    env = [
        *storage_env(plan),
        {"name": "FACEBLUR_TERMINATION_LOG", "value": TERMINATION_LOG},
        {"name": "TMPDIR", "value": SCRATCH},  # the image sets FACEBLUR_MODEL_CACHE to its baked models
    ]
    if pod.gpus:
        env.append({"name": "NVIDIA_DRIVER_CAPABILITIES", "value": NVIDIA_CAPABILITIES})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": pod.image,
        "command": command,
        "env": env,
        "resources": resources(pod),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if plan.pull_policy:
        container["imagePullPolicy"] = plan.pull_policy
    return container


def _pod_spec(plan: JobPlan, pod: PodSettings, command: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",  # the Job retries; podFailurePolicy needs Never
        "automountServiceAccountToken": False,  # workers never talk to the API server
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(plan, pod, command)],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
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
        "spec": _pod_spec(plan, pod, command),
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


def build_worker_job(plan: JobPlan, chunks: int, attempt: int = 0) -> Manifest:
    """One completion per chunk; the pod's index comes from JOB_COMPLETION_INDEX, set by Kubernetes."""
    if chunks < 1:
        raise ValueError(f"a worker Job needs at least one chunk, not {chunks}")
    return _job(
        plan,
        Stage.WORK,
        attempt,
        plan.worker_pod,
        ["faceblur", "process", *plan.process_args],
        {
            "completionMode": "Indexed",
            "completions": chunks,
            "parallelism": min(plan.parallelism, chunks),
            "backoffLimitPerIndex": plan.backoff_limit_per_index,
            "podFailurePolicy": pod_failure_policy(),
        },
    )


def build_compose_job(plan: JobPlan, attempt: int = 0) -> Manifest:
    return _job(
        plan,
        Stage.COMPOSE,
        attempt,
        plan.cpu_pod,
        ["faceblur", "compose", *plan.compose_args],
        {"backoffLimit": STAGE_BACKOFF_LIMIT, "podFailurePolicy": pod_failure_policy()},
    )


def cleanup_command(plan: JobPlan) -> list[str]:
    return ["faceblur", "cleanup", "--job", plan.job_url]


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
    once otherwise) and deleted by its TTL after it finishes."""
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
    manifest["spec"].pop("suspend", None)  # nothing is queued for a FaceBlurJob that is gone
    manifest["metadata"]["labels"].pop(LABEL_KUEUE_QUEUE, None)
    return manifest
