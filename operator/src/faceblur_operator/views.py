"""What the operator observes of its Jobs and pods, reduced to the facts the phase logic needs.

Parsing is tolerant: a field Kubernetes leaves out is a missing fact, never an error. The pods'
termination messages are the worker's one-line JSON results (see the CLI contract); a message that
is not JSON (FallbackToLogsOnError gave the log tail) is kept as text. A worker Job whose indexes
each run a group of chunks is seen in chunks: its completions, completed and failed indexes are the
chunks of its indexes, and a pod's index is its group's first chunk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faceblur_contract import indexes
from faceblur_contract.indexes import format_indexes
from faceblur_contract.pods import index_chunks
from faceblur_contract.records import PERMANENT_KEY

from faceblur_operator.naming import (
    ANNOTATION_CHUNKS,
    ANNOTATION_CHUNKS_PER_INDEX,
    ANNOTATION_INDEX,
    LABEL_ATTEMPT,
    LABEL_STAGE,
    Stage,
)

__all__ = [
    "JobView",
    "PodView",
    "TerminationMessage",
    "format_indexes",
    "job_view",
    "parse_indexes",
    "pod_view",
]


@dataclass(frozen=True)
class TerminationMessage:
    """One worker result: the parsed JSON line, or the raw text when the pod wrote none."""

    data: Mapping[str, Any]
    text: str = ""

    @property
    def error(self) -> str | None:
        value = self.data.get("error")
        return str(value) if value is not None else None

    @property
    def reason(self) -> str | None:
        value = self.data.get("reason")
        return str(value) if value is not None else None

    @property
    def final(self) -> bool:
        """The worker said no retry of this pod can succeed (e.g. its input object does not exist)."""
        return self.data.get(PERMANENT_KEY) is True

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def string(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) else None

    @property
    def summary(self) -> str:
        """One line for people: the worker's error, else the last line of the text."""
        if self.error:
            return self.error
        if self.data:
            return ""  # a result line without an error: nothing to explain
        lines = [line.strip() for line in self.text.strip().splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


def parse_termination_message(text: str | None) -> TerminationMessage | None:
    if not text or not text.strip():
        return None
    for line in reversed(text.strip().splitlines()):  # the worker writes one line; take the last JSON one
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return TerminationMessage(data=data, text=text)
    return TerminationMessage(data={}, text=text)


@dataclass(frozen=True)
class JobView:
    name: str
    uid: str
    stage: Stage | None
    attempt: int
    deleting: bool
    suspended: bool
    completions: int | None
    start_time: str | None
    completion_time: str | None
    active: int
    succeeded: int
    failed: int
    completed_indexes: str
    failed_indexes: str
    complete: bool
    failed_condition: bool
    failure_reason: str | None  # the Job controller's reason: BackoffLimitExceeded, PodFailurePolicy, ...
    failure_message: str | None

    @property
    def finished(self) -> bool:
        return self.complete or self.failed_condition

    @property
    def started(self) -> bool:
        return self.start_time is not None and not self.suspended


@dataclass(frozen=True)
class PodView:
    name: str
    job_uid: str | None  # the owning Job's uid: pods of a deleted Job are ignored
    index: int | None  # an Indexed Job pod's first chunk: its completion index where it runs one
    phase: str
    exit_code: int | None
    terminated_reason: str | None  # the kubelet's: Completed, Error, OOMKilled, ...
    result: TerminationMessage | None
    waiting_reason: str | None  # e.g. ImagePullBackOff, CreateContainerConfigError
    waiting_message: str | None
    unschedulable: str | None  # the scheduler's message when the pod fits no node
    created: str | None
    finished: str | None = None  # when its container terminated (the kubelet's finishedAt)


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _condition(conditions: Any, kind: str) -> Mapping[str, Any] | None:
    for cond in conditions or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def _grouping(annotations: Any) -> tuple[int, int] | None:
    """(chunks, chunks per index) of a worker Job or pod whose indexes run several chunks, else None."""
    if not isinstance(annotations, Mapping):
        return None
    chunks, per = annotations.get(ANNOTATION_CHUNKS), annotations.get(ANNOTATION_CHUNKS_PER_INDEX)
    if not (isinstance(chunks, str) and chunks.isdigit() and isinstance(per, str) and per.isdigit()):
        return None
    return (int(chunks), int(per)) if int(per) > 1 else None


def _in_chunks(listed: str, grouping: tuple[int, int] | None) -> str:
    """Job indexes as Kubernetes lists them ("0,2-3") -> the chunks they run, in the same notation."""
    if grouping is None or not listed:
        return listed
    chunks, per = grouping
    found = indexes.parse_indexes(listed, tolerant=True)
    return format_indexes(c for i in found for c in index_chunks(i, per, chunks))


def job_view(raw: Mapping[str, Any]) -> JobView:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    labels = meta.get("labels") or {}
    try:
        stage: Stage | None = Stage(labels.get(LABEL_STAGE, ""))
    except ValueError:
        stage = None
    attempt = labels.get(LABEL_ATTEMPT, "0")
    conditions = status.get("conditions")
    failed = _condition(conditions, "Failed")
    grouping = _grouping(meta.get("annotations"))
    completions = spec.get("completions") if isinstance(spec.get("completions"), int) else None
    return JobView(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        stage=stage,
        attempt=int(attempt) if str(attempt).isdigit() else 0,
        deleting=meta.get("deletionTimestamp") is not None,
        suspended=bool(spec.get("suspend")),
        completions=grouping[0] if grouping and completions is not None else completions,
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        active=_int(status.get("active")),
        succeeded=_int(status.get("succeeded")),
        failed=_int(status.get("failed")),
        completed_indexes=_in_chunks(str(status.get("completedIndexes") or ""), grouping),
        failed_indexes=_in_chunks(str(status.get("failedIndexes") or ""), grouping),
        complete=_condition(conditions, "Complete") is not None,
        failed_condition=failed is not None,
        failure_reason=failed.get("reason") if failed else None,
        failure_message=failed.get("message") if failed else None,
    )


def _terminated(pod_status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for container in pod_status.get("containerStatuses") or []:
        terminated = _get(container, "state", "terminated") or _get(container, "lastState", "terminated")
        if terminated:
            return terminated  # type: ignore[no-any-return]
    return None


def _waiting(pod_status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for container in pod_status.get("containerStatuses") or []:
        waiting = _get(container, "state", "waiting")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            return waiting  # type: ignore[no-any-return]
    return None


def pod_view(raw: Mapping[str, Any]) -> PodView:
    meta, status = raw.get("metadata") or {}, raw.get("status") or {}
    owner_uid = next(
        (ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("kind") == "Job"), None
    )
    index_raw = (meta.get("annotations") or {}).get(ANNOTATION_INDEX)
    grouping = _grouping(meta.get("annotations"))
    index = int(index_raw) if isinstance(index_raw, str) and index_raw.isdigit() else None
    terminated = _terminated(status)
    waiting = _waiting(status)
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    unschedulable = (
        str(scheduled.get("message") or "no node fits the pod")
        if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
        else None
    )
    return PodView(
        name=str(meta.get("name", "")),
        job_uid=owner_uid,
        index=index * grouping[1] if index is not None and grouping else index,
        phase=str(status.get("phase") or "Pending"),
        exit_code=terminated.get("exitCode") if terminated else None,
        terminated_reason=terminated.get("reason") if terminated else None,
        result=parse_termination_message(terminated.get("message") if terminated else None),
        waiting_reason=waiting.get("reason") if waiting else None,
        waiting_message=waiting.get("message") if waiting else None,
        unschedulable=unschedulable,
        created=meta.get("creationTimestamp"),
        finished=terminated.get("finishedAt") if terminated else None,
    )


def parse_time(text: str | None) -> datetime | None:
    """An API timestamp (RFC 3339, "Z" for UTC); None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_indexes(text: str) -> list[int]:
    """The Job API's interval list, e.g. "1,3-5" -> [1, 3, 4, 5]; a part it cannot read is skipped."""
    return indexes.parse_indexes(text, tolerant=True)
