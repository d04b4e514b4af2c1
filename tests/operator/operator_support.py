"""Raw Kubernetes objects as the API server returns them, for the operator's table-driven tests."""

from __future__ import annotations

import json
from typing import Any

from faceblur_operator.api import FaceBlurJobSpec, FaceBlurJobStatus
from faceblur_operator.naming import (
    ANNOTATION_INDEX,
    LABEL_ATTEMPT,
    LABEL_JOB_UID,
    LABEL_STAGE,
    Stage,
    job_name,
)
from faceblur_operator.plan import JobPlan, Owner, resolve
from faceblur_operator.settings import OperatorConfig, load_config
from faceblur_operator.stages import Observation
from faceblur_operator.views import job_view, pod_view

OWNER = Owner(name="clip", namespace="media", uid="0123abcd-4567-89ef-0123-456789abcdef")
T0 = "2026-01-01T10:00:00Z"
T1 = "2026-01-01T10:00:30Z"
T2 = "2026-01-01T10:02:00Z"
NOW = "2026-01-01T10:05:00Z"


def config(**env: str) -> OperatorConfig:
    return load_config(env)


def job_plan(**spec: Any) -> JobPlan:
    """OWNER's resolved plan: input s3://media/clip.mp4 on a store the spec names, `spec` (camelCase
    fields) over that."""
    fields = {"input": {"bucket": "media", "key": "clip.mp4"}, "storage": {"endpoint": "http://s3.test:9000"}}
    return resolve(FaceBlurJobSpec.model_validate({**fields, **spec}), OWNER, config())


def observation(
    jobs: list[dict[str, Any]],
    pods: list[dict[str, Any]] | None = None,
    *,
    status: FaceBlurJobStatus | None = None,
    retry_token: str | None = None,
    plan: JobPlan | None = None,
    spec_error: str | None = None,
) -> Observation:
    """OWNER's observation at NOW from raw Jobs and pods, as the reconciler gathers it."""
    return Observation(
        name=OWNER.name,
        generation=1,
        status=status or FaceBlurJobStatus(),
        retry_token=retry_token,
        jobs=tuple(job_view(j) for j in jobs),
        pods=tuple(pod_view(p) for p in pods or []),
        now=NOW,
        plan=plan,
        spec_error=spec_error,
    )


def raw_job(
    stage: Stage,
    *,
    attempt: int = 0,
    state: str = "running",  # pending | queued | running | complete | failed
    completions: int | None = None,
    completed: str = "",
    failed_indexes: str = "",
    failed_pods: int = 0,
    failure_reason: str = "BackoffLimitExceeded",
    failure_message: str = "Job has reached the specified backoff limit",
) -> dict[str, Any]:
    name = job_name(OWNER.name, stage, attempt)
    conditions: list[dict[str, Any]] = []
    status: dict[str, Any] = {"failed": failed_pods}
    if state != "pending" and state != "queued":
        status["startTime"] = T0
    if state == "complete":
        conditions.append({"type": "Complete", "status": "True", "reason": "CompletionsReached"})
        status["completionTime"] = T1
        status["succeeded"] = completions or 1
    if state == "failed":
        conditions.append(
            {"type": "Failed", "status": "True", "reason": failure_reason, "message": failure_message}
        )
    if state == "running":
        status["active"] = 1
    if completed:
        status["completedIndexes"] = completed
    if failed_indexes:
        status["failedIndexes"] = failed_indexes
    status["conditions"] = conditions
    spec: dict[str, Any] = {"suspend": state == "queued"}
    if completions is not None:
        spec["completions"] = completions
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {LABEL_STAGE: stage.value, LABEL_ATTEMPT: str(attempt), LABEL_JOB_UID: OWNER.uid},
        },
        "spec": spec,
        "status": status,
    }


def raw_pod(
    job: dict[str, Any],
    *,
    phase: str = "Succeeded",
    result: dict[str, Any] | str | None = None,
    index: int | None = None,
    exit_code: int | None = None,
    suffix: str = "a",
    created: str = T0,
    waiting: tuple[str, str] | None = None,
    unschedulable: str | None = None,
    terminated_reason: str | None = None,
    finished: str | None = None,
) -> dict[str, Any]:
    name = f"{job['metadata']['name']}-{index if index is not None else 0}-{suffix}"
    annotations = {ANNOTATION_INDEX: str(index)} if index is not None else {}
    status: dict[str, Any] = {"phase": phase, "conditions": []}
    if phase in ("Succeeded", "Failed"):
        message = result if isinstance(result, str) else json.dumps(result) if result is not None else ""
        code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
        status["containerStatuses"] = [
            {
                "name": "worker",
                "state": {
                    "terminated": {
                        "exitCode": code,
                        "reason": terminated_reason or ("Completed" if code == 0 else "Error"),
                        "message": message,
                        **({"finishedAt": finished} if finished else {}),
                    }
                },
            }
        ]
    if waiting is not None:
        status["containerStatuses"] = [
            {"name": "worker", "state": {"waiting": {"reason": waiting[0], "message": waiting[1]}}}
        ]
    if unschedulable is not None:
        status["conditions"].append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        )
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": annotations,
            "ownerReferences": [
                {"kind": "Job", "uid": job["metadata"]["uid"], "name": job["metadata"]["name"]}
            ],
        },
        "status": status,
    }


def split_result(chunks: int, frames: int) -> dict[str, Any]:
    return {
        "stage": "split",
        "chunks": chunks,
        "frames": frames,
        "width": 320,
        "height": 240,
        "duration_s": 2.0,
    }


def process_result(index: int, faces: int, frames: int = 10) -> dict[str, Any]:
    return {
        "stage": "process",
        "version": 1,
        "index": index,
        "frames": frames,
        "faces": faces,
        "detected_faces": faces,
        "frames_with_faces": frames,
        "detectors": ["centerface"],
        "seconds": 1.0,
    }


def worker_error(reason: str, message: str, code: int) -> dict[str, Any]:
    return {"stage": "process", "error": message, "reason": reason, "exit_code": code}
