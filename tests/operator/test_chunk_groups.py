"""Worker pods that run several chunk pipelines: the grouping of chunks into Job indexes (the
contract's rule), the worker Job that carries it, and the status that still counts chunks."""

from __future__ import annotations

from typing import Any

import pytest
from faceblur_contract.pods import (
    CHUNKS_PER_INDEX_FLAG,
    CPU_LIMIT_ENV,
    CPU_REQUEST_ENV,
    index_chunks,
    index_count,
)
from faceblur_operator.builders import build_worker_job
from faceblur_operator.naming import ANNOTATION_CHUNKS, ANNOTATION_CHUNKS_PER_INDEX, Stage
from faceblur_operator.progress import progress
from faceblur_operator.scratch import quantity, work_bytes
from faceblur_operator.views import job_view, pod_view
from operator_support import job_plan, raw_job, raw_pod

GROUPED = {ANNOTATION_CHUNKS: "5", ANNOTATION_CHUNKS_PER_INDEX: "2"}


@pytest.mark.parametrize("chunks", [1, 2, 5, 12, 13])
@pytest.mark.parametrize("per_index", [1, 2, 3, 32])
def test_the_indexes_cover_every_chunk_once_in_contiguous_groups(chunks: int, per_index: int) -> None:
    groups = [list(index_chunks(i, per_index, chunks)) for i in range(index_count(chunks, per_index))]
    assert [c for g in groups for c in g] == list(range(chunks))
    assert all(0 < len(g) <= per_index for g in groups)
    assert all(len(g) == per_index for g in groups[:-1])


def test_five_chunks_in_pairs() -> None:
    assert index_count(5, 2) == 3
    assert [list(index_chunks(i, 2, 5)) for i in range(3)] == [[0, 1], [2, 3], [4]]
    assert list(index_chunks(3, 2, 5)) == []  # past the end: the worker refuses it


@pytest.mark.parametrize(
    ("resources", "per_index"),
    [
        ({}, 1),
        ({"requests": {"cpu": "2"}}, 2),
        ({"requests": {"cpu": "1500m"}}, 2),  # whole cores, as the worker reads them
        ({"requests": {"cpu": "2"}, "limits": {"cpu": "3"}}, 3),  # the limit first, as the worker
        ({"gpus": 1, "requests": {"cpu": "6"}}, 4),  # 1.5 cores a pipeline beside a GPU
        ({"requests": {"cpu": "100"}, "limits": {"cpu": "100"}}, 32),
    ],
)
def test_a_pod_runs_as_many_chunks_as_its_cpus_run_pipelines(
    resources: dict[str, Any], per_index: int
) -> None:
    plan = job_plan(resources=resources)
    assert plan.chunks_per_index == per_index
    grouping = [CHUNKS_PER_INDEX_FLAG, str(per_index)]
    flagged = any(plan.process_args[i : i + 2] == tuple(grouping) for i in range(len(plan.process_args)))
    assert flagged == (per_index > 1)  # one chunk an index: the command line of before


def test_the_worker_job_has_one_index_per_group_and_the_cpus_in_its_env() -> None:
    plan = job_plan(resources={"requests": {"cpu": "2"}}, parallelism=8)
    job = build_worker_job(plan, chunks=5)
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (3, 3)
    assert job["spec"]["backoffLimitPerIndex"] == plan.backoff_limit_per_index  # a group retries whole
    for meta in (job["metadata"], job["spec"]["template"]["metadata"]):
        assert {k: meta["annotations"][k] for k in GROUPED} == GROUPED
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[CPU_REQUEST_ENV]["valueFrom"] == {
        "resourceFieldRef": {"containerName": "worker", "resource": "requests.cpu", "divisor": "1m"}
    }
    assert CPU_LIMIT_ENV not in env  # unset: the Downward API would give the node's CPUs


def test_a_pod_with_a_cpu_limit_is_told_it() -> None:
    job = build_worker_job(job_plan(resources={"limits": {"cpu": "4"}}), chunks=8)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[CPU_LIMIT_ENV]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert job["spec"]["completions"] == 2


def grouped_job(**status: Any) -> dict[str, Any]:
    job = raw_job(Stage.WORK, completions=3, **status)
    job["metadata"]["annotations"] = dict(GROUPED)
    return job


def grouped_pod(job: dict[str, Any], index: int, **fields: Any) -> dict[str, Any]:
    pod = raw_pod(job, index=index, **fields)
    pod["metadata"]["annotations"].update(GROUPED)
    return pod


def test_a_grouped_worker_job_is_seen_in_chunks() -> None:
    job = job_view(grouped_job(completed="0,2", failed_indexes="1", failed_pods=2))
    assert (job.completions, job.completed_indexes, job.failed_indexes) == (5, "0-1,4", "2-3")
    assert pod_view(grouped_pod(grouped_job(), 2)).index == 4  # its group's first chunk


def test_progress_counts_the_chunks_of_finished_groups_once() -> None:
    raw = grouped_job(completed="0,2")
    record = {
        "stage": "process",
        "indexes": [0, 1],
        "frames": 200,
        "faces": 7,
        "runtime": "CPUExecutionProvider",
    }
    last = {"stage": "process", "indexes": [4], "frames": 100, "faces": 1, "runtime": "CPUExecutionProvider"}
    running = {"stage": "process", "indexes": [2, 3], "frames": 200, "faces": 5}
    pods = [
        grouped_pod(raw, 0, result=record),
        grouped_pod(raw, 2, result=last),
        grouped_pod(raw, 1, phase="Running", result=running),
    ]
    seen = progress((5, 500), job_view(raw), [pod_view(p) for p in pods])
    assert (seen.chunks, seen.chunks_completed) == ("3/5", 3)
    assert (seen.frames_processed, seen.faces_found) == (300, 8)
    assert seen.runtime == "CPUExecutionProvider"


def test_a_pod_gets_the_scratch_space_of_its_whole_group() -> None:
    plan = job_plan(resources={"requests": {"cpu": "2"}})
    job = build_worker_job(plan, chunks=4, input_bytes=4 << 30)
    asked = job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"]
    assert asked == quantity(work_bytes(4 << 30, 2, debug=False))  # two chunks of the four at once
    assert quantity(work_bytes(4 << 30, 2, debug=False)) != quantity(work_bytes(4 << 30, 4, debug=False))
