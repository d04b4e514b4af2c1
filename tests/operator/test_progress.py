"""Progress from the Jobs and the pods' records: chunks done, frames and faces, each chunk counted once."""

from __future__ import annotations

from faceblur_operator.api import Progress
from faceblur_operator.naming import Stage
from faceblur_operator.progress import estimated_completion, progress, split_counts
from faceblur_operator.views import job_view, pod_view
from operator_support import NOW, T0, T1, process_result, raw_job, raw_pod, split_result

WORK = raw_job(Stage.WORK, completions=4, completed="0-1")
WORK_R1 = raw_job(Stage.WORK, attempt=1, completions=4, completed="0-2")


def test_only_completed_chunks_count_and_each_once() -> None:
    pods = [
        raw_pod(WORK, index=0, suffix="old", created=T0, result=process_result(0, faces=9, frames=99)),
        raw_pod(WORK, index=0, suffix="new", created=T1, result=process_result(0, faces=2)),
        raw_pod(WORK, index=1, result=process_result(1, faces=3)),
        raw_pod(WORK, index=3, result=process_result(3, faces=50)),  # not in completedIndexes yet
    ]
    shown = progress((4, 40), job_view(WORK), [pod_view(p) for p in pods])
    assert shown == Progress(
        chunks="2/4", chunks_total=4, chunks_completed=2, frames_total=40, frames_processed=20, faces_found=5
    )


def test_a_retry_counts_the_chunks_an_earlier_attempt_published() -> None:
    pods = [
        raw_pod(WORK, index=1, result=process_result(1, faces=5)),
        raw_pod(WORK_R1, index=0, result=process_result(0, faces=1)),
        raw_pod(WORK_R1, index=1, result=process_result(1, faces=7)),  # this attempt's record wins
        raw_pod(WORK_R1, index=2, result=process_result(2, faces=2)),
    ]
    shown = progress((4, None), job_view(WORK_R1), [pod_view(p) for p in pods])
    assert (shown.chunks, shown.faces_found, shown.frames_processed) == ("3/4", 10, 30)


def test_compose_totals_win_and_an_unknown_total_shows_a_question_mark() -> None:
    compose = raw_job(Stage.COMPOSE, state="complete")
    record = pod_view(raw_pod(compose, result={"stage": "compose", "faces": 12, "frames": 40})).result
    pods = [pod_view(raw_pod(WORK, index=0, result=process_result(0, faces=1)))]
    shown = progress((None, None), job_view(WORK), pods, record)
    assert (shown.chunks, shown.faces_found, shown.frames_processed) == ("2/?", 12, 40)
    assert progress((None, None), None, []).chunks == "0/?"


def test_split_counts_fall_back_to_the_work_job_then_the_status() -> None:
    split = raw_job(Stage.SPLIT, state="complete")
    recorded = [pod_view(raw_pod(split, result=split_result(6, 60)))]
    remembered = Progress(chunks_total=3, frames_total=30)
    assert split_counts(recorded, job_view(WORK), remembered) == (6, 60)
    assert split_counts([], job_view(WORK), remembered) == (4, 30)  # the pod is gone
    assert split_counts([], None, remembered) == (3, 30)
    assert split_counts([], None, None) == (None, None)
    failed = [pod_view(raw_pod(split, phase="Failed", created=NOW, result=split_result(9, 90)))]
    assert split_counts(failed, None, None) == (None, None)  # only a succeeded pod's record counts


def test_the_estimated_completion_follows_the_pace_of_the_chunks_done() -> None:
    """Started at T0 (10:00:00); two of four chunks done by 10:01:00: 30 s a chunk, two left."""
    work = job_view(WORK)  # completedIndexes 0-1
    done = [
        raw_pod(WORK, index=0, finished="2026-01-01T10:00:40Z"),
        raw_pod(WORK, index=1, finished="2026-01-01T10:01:00Z"),
        raw_pod(WORK, index=2, phase="Failed", finished="2026-01-01T10:02:00Z"),  # not done: no pace
    ]
    pods = [pod_view(p) for p in done]
    assert estimated_completion(work, pods, 4) == "2026-01-01T10:02:00Z"
    assert progress((4, 40), work, pods).estimated_completion_time == "2026-01-01T10:02:00Z"
    later = raw_job(Stage.WORK, completions=4, completed="0-2")
    third = [*pods, pod_view(raw_pod(later, index=2, suffix="b", finished="2026-01-01T10:03:00Z"))]
    # the same Job's uid: 3 chunks by 10:03:00 is 60 s a chunk, one left
    assert estimated_completion(job_view(later), third, 4) == "2026-01-01T10:04:00Z"


def test_no_estimate_before_a_chunk_is_done_after_the_last_or_without_times() -> None:
    work = job_view(WORK)
    finished = [pod_view(raw_pod(WORK, index=i, finished=T1)) for i in (0, 1)]
    assert estimated_completion(work, [pod_view(raw_pod(WORK, index=0))], 4) is None  # no finishedAt
    assert estimated_completion(job_view(raw_job(Stage.WORK, completions=4)), [], 4) is None
    assert estimated_completion(work, finished, 2) is None  # all done
    assert estimated_completion(work, finished, None) is None  # total unknown
    complete = job_view(raw_job(Stage.WORK, state="complete", completions=4, completed="0-1"))
    assert estimated_completion(complete, finished, 4) is None
    compose = raw_job(Stage.COMPOSE, state="complete")
    record = pod_view(raw_pod(compose, result={"stage": "compose", "faces": 1, "frames": 4})).result
    assert progress((4, 40), work, finished, record).estimated_completion_time is None


def test_the_runtime_is_where_the_completed_chunks_ran_each_named_once() -> None:
    gpu = {"runtime": "CUDAExecutionProvider", "device": "NVIDIA L4, 22.5 GiB"}
    pods = [
        raw_pod(WORK, index=0, result=process_result(0, faces=1) | gpu),
        raw_pod(WORK, index=1, result=process_result(1, faces=1) | gpu),
        raw_pod(WORK, index=3, result=process_result(3, faces=1) | {"runtime": "CPUExecutionProvider"}),
    ]  # index 3 is not completed yet
    shown = progress((4, 40), job_view(WORK), [pod_view(p) for p in pods])
    assert shown.runtime == "CUDAExecutionProvider on NVIDIA L4, 22.5 GiB"
    assert progress((4, 40), job_view(WORK), []).runtime is None  # not known: never guessed
    nvenc = gpu | {"encoder": "h264_nvenc"}  # the encoder follows the runtime, for a GPU that has NVENC
    encoded = [raw_pod(WORK, index=i, result=process_result(i, faces=1) | nvenc) for i in (0, 1)]
    shown = progress((4, 40), job_view(WORK), [pod_view(p) for p in encoded])
    assert shown.runtime == "CUDAExecutionProvider on NVIDIA L4, 22.5 GiB, h264_nvenc"
    compose = raw_job(Stage.COMPOSE, state="complete")
    mixed = ["CUDAExecutionProvider on NVIDIA L4, 22.5 GiB", "CPUExecutionProvider on CPU, 4 cores"]
    record = pod_view(raw_pod(compose, result={"stage": "compose", "runtimes": mixed})).result
    assert progress((4, 40), job_view(WORK), [], record).runtime == "; ".join(mixed)  # chunk pods gone
