"""The stage table row by row: each stage's Job in each state -> phase, reason, condition, Job created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from faceblur_operator.api import ConditionStatus, ConditionType, Phase, Reason
from faceblur_operator.conditions import ORDER
from faceblur_operator.naming import Stage
from faceblur_operator.stages import STAGES, CreateJob, decide
from operator_support import job_plan, observation, process_result, raw_job, raw_pod, split_result

SPLIT_DONE = raw_job(Stage.SPLIT, state="complete")
WORK_DONE = raw_job(Stage.WORK, state="complete", completions=4, completed="0-3")
DONE_BEFORE: dict[Stage, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    Stage.SPLIT: ([], []),
    Stage.WORK: ([SPLIT_DONE], [raw_pod(SPLIT_DONE, result=split_result(4, 40))]),
    Stage.COMPOSE: (
        [SPLIT_DONE, WORK_DONE],
        [
            raw_pod(SPLIT_DONE, result=split_result(4, 40)),
            *(raw_pod(WORK_DONE, index=i, result=process_result(i, faces=1)) for i in range(4)),
        ],
    ),
}
RESULTS = {
    Stage.SPLIT: split_result(4, 40),
    Stage.COMPOSE: {"stage": "compose", "output": "s3://media/out.mp4"},
}
F, T = ConditionStatus.FALSE, ConditionStatus.TRUE
SPLIT, PROCESSED, COMPLETE = ConditionType.SPLIT, ConditionType.PROCESSED, ConditionType.COMPLETE


@dataclass(frozen=True)
class Row:
    stage: Stage
    job: str | None  # the stage's Job: None (not created yet) or its state (see raw_job)
    phase: Phase
    reason: Reason
    condition: tuple[ConditionType, ConditionStatus] | None  # the stage's own condition; None: not set
    creates: Stage | None = None


ROWS = [
    Row(Stage.SPLIT, None, Phase.PENDING, Reason.CREATED, (SPLIT, F), creates=Stage.SPLIT),
    Row(Stage.SPLIT, "pending", Phase.PENDING, Reason.CREATED, (SPLIT, F)),
    Row(Stage.SPLIT, "queued", Phase.PENDING, Reason.QUEUED, (SPLIT, F)),
    Row(Stage.SPLIT, "running", Phase.SPLITTING, Reason.SPLITTING, (SPLIT, F)),
    Row(Stage.SPLIT, "failed", Phase.FAILED, Reason.JOB_FAILED, (SPLIT, F)),
    Row(Stage.SPLIT, "complete", Phase.PROCESSING, Reason.PROCESSING, (SPLIT, T), Stage.WORK),
    Row(Stage.WORK, None, Phase.PROCESSING, Reason.PROCESSING, (PROCESSED, F), Stage.WORK),
    Row(Stage.WORK, "pending", Phase.PROCESSING, Reason.PROCESSING, (PROCESSED, F)),
    Row(Stage.WORK, "queued", Phase.PROCESSING, Reason.QUEUED, (PROCESSED, F)),
    Row(Stage.WORK, "running", Phase.PROCESSING, Reason.PROCESSING, (PROCESSED, F)),
    Row(Stage.WORK, "failed", Phase.FAILED, Reason.CHUNK_FAILED, (PROCESSED, F)),
    Row(Stage.WORK, "complete", Phase.COMPOSING, Reason.COMPOSING, (PROCESSED, T), Stage.COMPOSE),
    Row(Stage.COMPOSE, None, Phase.COMPOSING, Reason.COMPOSING, None, creates=Stage.COMPOSE),
    Row(Stage.COMPOSE, "pending", Phase.COMPOSING, Reason.COMPOSING, None),
    Row(Stage.COMPOSE, "queued", Phase.COMPOSING, Reason.QUEUED, None),
    Row(Stage.COMPOSE, "running", Phase.COMPOSING, Reason.COMPOSING, None),
    Row(Stage.COMPOSE, "failed", Phase.FAILED, Reason.JOB_FAILED, (COMPLETE, F)),
    Row(Stage.COMPOSE, "complete", Phase.SUCCEEDED, Reason.SUCCEEDED, (COMPLETE, T)),
]


def decide_for(jobs: list[dict[str, Any]], pods: list[dict[str, Any]]) -> Any:
    return decide(observation(jobs, pods))


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.stage.value}-{r.job or 'absent'}" for r in ROWS])
def test_each_stage_in_each_state(row: Row) -> None:
    jobs, pods = DONE_BEFORE[row.stage]
    if row.job is not None:
        work = row.stage == Stage.WORK
        job = raw_job(row.stage, state=row.job, completions=4 if work else None)
        if row.job == "complete" and work:
            job = WORK_DONE
        elif row.job == "complete":  # its result record says what it produced
            pods = [*pods, raw_pod(job, result=RESULTS[row.stage])]
        jobs = [*jobs, job]
    status = decide_for(jobs, pods).status
    assert (status.phase, status.reason) == (row.phase, row.reason), status.message
    kinds = {Stage.SPLIT: ConditionType.SPLIT, Stage.WORK: ConditionType.PROCESSED}
    own = status.condition(kinds.get(row.stage, ConditionType.COMPLETE))
    assert (None if own is None else (own.type, own.status)) == row.condition
    failed = status.condition(ConditionType.FAILED)
    assert (failed is not None and failed.status == T) == (row.phase == Phase.FAILED)
    created = [a.stage for a in decide_for(jobs, pods).actions if isinstance(a, CreateJob)]
    assert created == ([row.creates] if row.creates else [])
    if row.job in (None, "pending"):
        assert status.message is not None
        assert status.message.endswith("created, waiting for it to start")


def test_the_table_runs_split_work_compose_with_one_condition_each() -> None:
    assert [row.stage for row in STAGES] == [Stage.SPLIT, Stage.WORK, Stage.COMPOSE]
    assert [row.next for row in STAGES] == [Stage.WORK, Stage.COMPOSE, None]
    assert [row.condition for row in STAGES] == list(ORDER[:3])
    assert [row.stage for row in STAGES if row.indexed] == [Stage.WORK]


def test_an_impossible_spec_starts_no_cleanup_job_even_with_cleanup_always() -> None:
    """No plan, so no Job was ever created and nothing is left to remove (nor could one be built)."""
    decision = decide(observation([], spec_error="no object store: set spec.storage.endpoint"))
    assert (decision.status.phase, decision.status.reason) == (Phase.FAILED, Reason.INVALID_SPEC)
    assert decision.actions == ()
    assert decision.status.jobs is not None
    assert decision.status.jobs.cleanup is None


def test_the_plan_gives_the_locations_and_the_queue() -> None:
    plan = job_plan(queueName="gpu-queue", output={"bucket": "out", "key": "x.mp4"})
    queued = raw_job(Stage.SPLIT, state="queued")
    status = decide(observation([queued], plan=plan)).status
    assert (status.input, status.output, status.intermediates) == (
        "s3://media/clip.mp4",
        "s3://out/x.mp4",
        plan.job_url,
    )
    assert status.message == "Job clip-split waits for Kueue queue gpu-queue"
