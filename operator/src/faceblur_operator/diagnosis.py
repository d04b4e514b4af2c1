"""Why a Job failed or makes no progress, as a reason and a message a user can act on. Pure.

The facts come from the Job controller (its Failed condition's reason), the kubelet (waiting and
terminated reasons, exit codes) and the worker (its termination record: error, reason, permanent).
The message names the chunk or stage and the cause in the user's terms, never a pod's scratch path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from faceblur_contract.exits import PERMANENT_EXIT_CODES, WorkerReason

from faceblur_operator.api import Reason
from faceblur_operator.naming import Stage
from faceblur_operator.views import JobView, PodView, format_indexes, parse_indexes

WORKER_REASONS: dict[str, Reason] = {
    WorkerReason.INVALID_INPUT: Reason.INVALID_INPUT,
    WorkerReason.STORAGE: Reason.STORAGE_ERROR,
    WorkerReason.MODEL: Reason.MODEL_ERROR,
    WorkerReason.RESIDUAL_FACES: Reason.RESIDUAL_FACES,
    WorkerReason.GPU_UNAVAILABLE: Reason.GPU_UNAVAILABLE,
    WorkerReason.PREFIX_IN_USE: Reason.PREFIX_IN_USE,
    WorkerReason.OUTPUT_EXISTS: Reason.OUTPUT_EXISTS,
    WorkerReason.INPUT_TRUNCATED: Reason.INPUT_TRUNCATED,
    WorkerReason.INTERNAL: Reason.INTERNAL_ERROR,
}
WAITING_REASONS = {
    "ImagePullBackOff": Reason.IMAGE_PULL_FAILED,
    "ErrImagePull": Reason.IMAGE_PULL_FAILED,
    "ErrImageNeverPull": Reason.IMAGE_PULL_FAILED,  # imagePullPolicy Never and the image not on the node
    "InvalidImageName": Reason.IMAGE_PULL_FAILED,
    "CreateContainerConfigError": Reason.CONFIG_ERROR,
    "CreateContainerError": Reason.CONFIG_ERROR,
}
# Reasons of a job that still runs but needs a look: their Events are Warnings.
WARNING_REASONS = frozenset(
    {Reason.UNSCHEDULABLE, Reason.IMAGE_PULL_FAILED, Reason.CONFIG_ERROR, Reason.CHUNKS_RETRYING}
)
PERMANENT_CODES = frozenset(int(code) for code in PERMANENT_EXIT_CODES)


class Failure(NamedTuple):
    reason: Reason
    message: str
    indexes: str  # the failed chunks in the Job API's notation ("0-2,5"); "" outside the work stage


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def stalled(job: JobView, pods: Sequence[PodView], queue_name: str | None) -> tuple[Reason, str] | None:
    """Why a Job that is not finished makes no progress, if its state or its pods say so."""
    if job.suspended:
        where = f"Kueue queue {queue_name}" if queue_name else "its suspension to be lifted"
        return Reason.QUEUED, f"Job {job.name} waits for {where}"
    for pod in pods:
        if pod.phase != "Pending":
            continue
        if pod.unschedulable:
            return Reason.UNSCHEDULABLE, f"pod {pod.name} cannot be scheduled: {pod.unschedulable}"
        if pod.waiting_reason in WAITING_REASONS:
            detail = pod.waiting_message or pod.waiting_reason
            return WAITING_REASONS[pod.waiting_reason], f"pod {pod.name}: {detail}"
    return None


def final_failure(job: JobView, pods: Sequence[PodView]) -> Failure | None:
    """The pods of a running Job that failed for good (the worker's record says no retry can
    succeed, e.g. a missing input object), if any. Pods that exited with a permanent code are left
    to the Job's podFailurePolicy, which fails the Job itself."""
    final = [
        p
        for p in pods
        if p.phase == "Failed"
        and p.result is not None
        and p.result.final
        and p.exit_code not in PERMANENT_CODES
    ]
    if not final:
        return None
    final.sort(key=lambda p: p.created or "")
    detail = pod_failure_detail(final[-1])
    reason = worker_reason(final[-1]) or Reason.JOB_FAILED
    if job.stage != Stage.WORK:
        return Failure(reason, f"{_stage_name(job)} failed: {detail}", "")
    indexes = sorted({p.index for p in final if p.index is not None})
    listed = format_indexes(indexes)
    return Failure(reason, f"{_chunks(indexes, listed)} failed: {detail}", listed)


def job_failure(job: JobView, pods: Sequence[PodView]) -> Failure:
    """Reason, message and failed indexes of a failed Job, from its pods' results."""
    failed = [p for p in pods if p.phase == "Failed"]
    failed.sort(key=lambda p: p.created or "")
    if job.failure_reason == "DeadlineExceeded":
        return Failure(
            Reason.DEADLINE_EXCEEDED, f"Job {job.name}: {job.failure_message or 'deadline exceeded'}", ""
        )
    work = job.stage == Stage.WORK
    indexes = parse_indexes(job.failed_indexes) if work else []
    if job.failure_reason == "PodFailurePolicy":  # permanent exit codes: every pod that had one
        permanent = [p for p in failed if p.exit_code in PERMANENT_CODES]
        culprit = permanent[-1] if permanent else None
        indexes = sorted({*indexes, *(p.index for p in permanent if p.index is not None)})
    else:
        culprit = next((p for p in reversed(failed) if indexes and p.index in indexes), None)
        culprit = culprit or (failed[-1] if failed else None)
    detail = pod_failure_detail(culprit) if culprit else (job.failure_message or "failed")
    reason = worker_reason(culprit)
    if not work:
        return Failure(reason or Reason.JOB_FAILED, f"{_stage_name(job)} failed: {detail}", "")
    listed = format_indexes(indexes)
    where = _chunks(indexes, listed)
    if job.failure_reason == "PodFailurePolicy":
        return Failure(reason or Reason.CHUNK_FAILED, f"{where} failed: {detail}", listed)
    tries = len([p for p in failed if p.index in indexes]) if indexes else job.failed
    attempts = f" after {plural(tries, 'failed attempt')}" if tries else ""
    return Failure(Reason.CHUNK_FAILED, f"{where} failed{attempts}: {detail}", listed)


def last_failure(pods: Sequence[PodView]) -> PodView | None:
    """The pod that failed last, if any (pods still there: the Job controller may have removed some)."""
    failed = [p for p in pods if p.phase == "Failed"]
    return max(failed, key=lambda p: p.created or "") if failed else None


def worker_reason(pod: PodView | None) -> Reason | None:
    """The reason the worker's termination record gives, if any."""
    if pod is None or pod.result is None or pod.result.reason is None:
        return None
    return WORKER_REASONS.get(pod.result.reason)


def pod_failure_detail(pod: PodView) -> str:
    """What went wrong in one pod: the kubelet's verdict when it killed the pod, else the worker's."""
    if pod.terminated_reason == "OOMKilled":
        return f"pod {pod.name} ran out of memory (OOMKilled): raise spec.resources.limits.memory"
    summary = pod.result.summary if pod.result else ""
    code = f" (exit code {pod.exit_code})" if pod.exit_code is not None else ""
    return f"{summary}{code}" if summary else f"pod {pod.name} failed{code}"


def _stage_name(job: JobView) -> str:
    return job.stage.value if job.stage is not None else job.name


def _chunks(indexes: Sequence[int], listed: str) -> str:
    if not indexes:
        return "a chunk"
    return f"chunk {listed}" if len(indexes) == 1 else f"chunks {listed}"
