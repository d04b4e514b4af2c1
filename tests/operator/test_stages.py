"""The stage table row by row: each stage's Job in each state -> phase, reason, condition, Job created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from faceblur_operator.api import ConditionStatus, ConditionType, Phase, Reason
from faceblur_operator.naming import Stage
from faceblur_operator.stages import CreateJob, decide
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
READY, RECONCILING, STALLED = ConditionType.READY, ConditionType.RECONCILING, ConditionType.STALLED
STAGE_CONDITIONS = (SPLIT, PROCESSED, COMPLETE, ConditionType.VERIFIED, ConditionType.FAILED)


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


def test_each_pass_hands_a_completed_stage_to_the_next_which_turns_its_own_condition_true() -> None:
    """Every Job completes before the next pass: split, then work with a completion per chunk, then
    compose; each pass turns one more condition True and reports that stage's duration once."""
    jobs: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    status = None
    created, true, finished, whole = [], [], [], []
    for _ in range(4):
        decision = decide(observation(jobs, pods, status=status))
        status = decision.status
        created.append([(a.stage, a.chunks) for a in decision.actions if isinstance(a, CreateJob)])
        true.append([c.type for c in status.conditions if c.status == T and c.type in STAGE_CONDITIONS])
        whole.append({c.type: c.status for c in status.conditions if c.type not in STAGE_CONDITIONS})
        finished.append([stage for stage, _seconds in decision.finished_stages])
        for stage, chunks in created[-1]:
            job = raw_job(stage, state="complete", completions=chunks, completed="0-3" if chunks else "")
            jobs.append(job)
            pods += (
                [raw_pod(job, index=i, result=process_result(i, faces=1)) for i in range(4)]
                if stage == Stage.WORK
                else [raw_pod(job, result=RESULTS[stage])]
            )
    assert created == [[(Stage.SPLIT, None)], [(Stage.WORK, 4)], [(Stage.COMPOSE, None)], []]
    assert true == [[], [SPLIT], [SPLIT, PROCESSED], [SPLIT, PROCESSED, COMPLETE]]
    assert finished == [[], [Stage.SPLIT], [Stage.WORK], [Stage.COMPOSE]]
    assert status is not None
    assert status.phase == Phase.SUCCEEDED
    running = {READY: F, RECONCILING: T, STALLED: F}  # kstatus: InProgress, then Current
    assert whole == [running, running, running, {READY: T, RECONCILING: F, STALLED: F}]


def test_a_failed_job_is_stalled_and_not_ready_with_the_failure_as_reason() -> None:
    split = raw_job(Stage.SPLIT, state="failed")
    failed = raw_pod(split, phase="Failed", result={"error": "no such key", "reason": "InvalidInput"})
    status = decide(observation([split], [failed])).status
    conditions = {c.type: c for c in status.conditions}
    assert (conditions[READY].status, conditions[STALLED].status, conditions[RECONCILING].status) == (F, T, F)
    assert conditions[READY].reason == conditions[STALLED].reason == status.reason
    assert conditions[READY].message == status.message


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
