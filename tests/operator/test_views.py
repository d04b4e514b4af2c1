"""Reading Jobs, pods and termination messages: tolerant of what Kubernetes leaves out."""

from __future__ import annotations

import pytest
from faceblur_operator.naming import Stage
from faceblur_operator.views import (
    format_indexes,
    job_view,
    parse_indexes,
    parse_termination_message,
    pod_view,
)
from operator_support import raw_job, raw_pod, worker_error


@pytest.mark.parametrize(
    ("text", "indexes"),
    [("", []), ("3", [3]), ("1,3-5", [1, 3, 4, 5]), ("0-2,7,9-10", [0, 1, 2, 7, 9, 10]), ("x,2", [2])],
)
def test_index_lists_round_trip(text: str, indexes: list[int]) -> None:
    assert parse_indexes(text) == indexes
    if "x" not in text:
        assert format_indexes(indexes) == text


@pytest.mark.parametrize(
    ("text", "error", "summary"),
    [
        ('{"stage":"split","chunks":3,"frames":30}', None, ""),
        (
            '{"stage":"process","error":"bad chunk","reason":"InvalidInput","exit_code":3}',
            "bad chunk",
            "bad chunk",
        ),
        ("log line\nTraceback\nValueError: nope\n", None, "ValueError: nope"),
        ('progress 10%\n{"stage":"compose","output":"s3://b/o.mp4"}', None, ""),
    ],
)
def test_termination_messages(text: str, error: str | None, summary: str) -> None:
    message = parse_termination_message(text)
    assert message is not None
    assert message.error == error
    assert message.summary == summary


def test_empty_termination_message_is_none() -> None:
    assert parse_termination_message("") is None
    assert parse_termination_message(None) is None


def test_job_view_reads_status_and_labels() -> None:
    view = job_view(raw_job(Stage.WORK, attempt=2, state="failed", completions=5, completed="0-2",
                            failed_indexes="4", failed_pods=3, failure_reason="FailedIndexes"))  # fmt: skip
    assert (view.stage, view.attempt, view.completions, view.name) == (Stage.WORK, 2, 5, "clip-work-r2")
    assert view.failed_condition
    assert not view.complete
    assert view.finished
    assert (view.completed_indexes, view.failed_indexes, view.failure_reason) == ("0-2", "4", "FailedIndexes")
    assert not job_view(raw_job(Stage.SPLIT, state="queued")).started
    assert job_view({"metadata": {"name": "stray"}}).stage is None


def test_pod_view_reads_index_exit_code_and_result() -> None:
    job = raw_job(Stage.WORK)
    pod = pod_view(
        raw_pod(job, phase="Failed", index=3, exit_code=5, result=worker_error("Model", "no model", 5))
    )
    assert (pod.index, pod.exit_code, pod.job_uid) == (3, 5, job["metadata"]["uid"])
    assert pod.result is not None
    assert pod.result.reason == "Model"
    waiting = pod_view(raw_pod(job, phase="Pending", waiting=("ErrImagePull", "not found")))
    assert (waiting.waiting_reason, waiting.result) == ("ErrImagePull", None)
    assert pod_view({}).phase == "Pending"
