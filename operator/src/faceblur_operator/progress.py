"""How far a FaceBlurJob is: chunks done, frames and faces, and where their inference ran. Pure.

Chunks come from the worker Job's `completedIndexes` (the Job controller's count, which survives
its pods); frames and faces from the pods' termination records, summed over completed chunks only
(a retried chunk counts once), and replaced by compose's totals once it has run. The split's chunk
and frame counts fall back to what the status remembered, in case its pod is gone. The estimated
completion comes from the objects' own times (the Job's start, its pods' finish), never the clock, so
it changes when a chunk finishes, not at every reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from faceblur_contract.records import ran_on

from faceblur_operator.api import Progress
from faceblur_operator.views import JobView, PodView, TerminationMessage, parse_indexes, parse_time


def latest_result(pods: Iterable[PodView], stage: str) -> TerminationMessage | None:
    """The result record of the last succeeded pod among `pods` (one Job's) for `stage`."""
    done = [p for p in pods if p.phase == "Succeeded" and p.result is not None]
    done.sort(key=lambda p: p.created or "")
    for pod in reversed(done):
        assert pod.result is not None
        if pod.result.data.get("stage", stage) == stage:
            return pod.result
    return None


def split_counts(
    split_pods: Sequence[PodView], work: JobView | None, remembered: Progress | None
) -> tuple[int | None, int | None]:
    """Chunks and frames of the input: the split's record, else the worker Job's completions
    (chunks), else what the status remembered."""
    result = latest_result(split_pods, "split")
    chunks = result.integer("chunks") if result else None
    frames = result.integer("frames") if result else None
    if chunks is None and work is not None:
        chunks = work.completions
    if chunks is None and remembered is not None:
        chunks = remembered.chunks_total
    if frames is None and remembered is not None:
        frames = remembered.frames_total
    return chunks, frames


def output_plan(split_pods: Sequence[PodView], remembered: str | None) -> str | None:
    """Split's plan of the output in a few words (its record's `output_plan`), else what the status
    remembered, in case its pod is gone."""
    result = latest_result(split_pods, "split")
    return (result.string("output_plan") if result else None) or remembered


def input_bytes(split_pods: Sequence[PodView]) -> int | None:
    """The input's size in bytes, from the split's record (None from a worker that did not say)."""
    result = latest_result(split_pods, "split")
    return result.integer("input_bytes") if result else None


def chunk_results(work: JobView, pods: Sequence[PodView]) -> dict[int, TerminationMessage]:
    """Per index, the result of a succeeded process pod: this Job's first, then earlier attempts'."""
    results: dict[int, TerminationMessage] = {}
    current = [p for p in pods if p.job_uid == work.uid]
    others = [p for p in pods if p.job_uid != work.uid]
    for pod in _succeeded_with_result(current) + _succeeded_with_result(others):
        if (
            pod.index is not None
            and pod.result is not None
            and pod.index not in results
            and pod.result.data.get("stage", "process") == "process"
        ):
            results[pod.index] = pod.result
    return results


def progress(
    totals: tuple[int | None, int | None],
    work: JobView | None,
    pods: Sequence[PodView],
    composed: TerminationMessage | None = None,
) -> Progress:
    """`totals`: the input's chunks and frames (None: not known yet); `pods`: all of the job's;
    `composed`: compose's record, whose totals win once it has run."""
    chunks_total, frames_total = totals
    completed = sorted(set(parse_indexes(work.completed_indexes))) if work is not None else []
    per_index = chunk_results(work, pods) if work is not None else {}
    done = [r for i, r in sorted(per_index.items()) if i in completed]
    faces = sum(r.integer("faces") or 0 for r in done)
    frames = sum(r.integer("frames") or 0 for r in done)
    runtimes = dict.fromkeys(
        w for r in done if (w := ran_on(r.string("runtime"), r.string("device"), r.string("encoder")))
    )
    if composed is not None:
        faces = _or(composed.integer("faces"), faces)
        frames = _or(composed.integer("frames"), frames)
        listed = composed.data.get("runtimes")
        if isinstance(listed, list) and listed:
            runtimes = dict.fromkeys(str(r) for r in listed)
    shown_total = chunks_total if chunks_total is not None else "?"
    return Progress(
        chunks=f"{len(completed)}/{shown_total}",
        chunks_total=chunks_total,
        chunks_completed=len(completed),
        frames_total=frames_total,
        frames_processed=frames,
        faces_found=faces,
        runtime="; ".join(runtimes) or None,
        estimated_completion_time=estimated_completion(work, pods, chunks_total)
        if composed is None
        else None,
    )


def estimated_completion(
    work: JobView | None, pods: Sequence[PodView], chunks_total: int | None
) -> str | None:
    """The last chunk's expected finish: the latest chunk this worker Job finished, plus the Job's
    time per chunk so far (its start to that finish, over the chunks its pods finished) for each
    chunk left. None before its first chunk, once all are done, or without the times."""
    if work is None or work.finished or chunks_total is None:
        return None
    start = parse_time(work.start_time)
    completed = set(parse_indexes(work.completed_indexes))
    finishes = [
        parse_time(p.finished)
        for p in pods
        if p.job_uid == work.uid and p.phase == "Succeeded" and p.index in completed
    ]
    known = [t for t in finishes if t is not None]
    left = chunks_total - len(completed)
    if start is None or not known or left <= 0 or max(known) <= start:
        return None
    last = max(known)
    expected = last + (last - start) / len(completed) * left  # chunks: a pod may run several
    return expected.strftime("%Y-%m-%dT%H:%M:%SZ")


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _succeeded_with_result(pods: list[PodView]) -> list[PodView]:
    return sorted(
        (p for p in pods if p.phase == "Succeeded" and p.result is not None),
        key=lambda p: p.created or "",
        reverse=True,
    )
