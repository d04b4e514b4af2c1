"""The phase logic, table-driven: what the operator sees -> status and next actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from faceblur_operator.api import (
    CleanupPolicy,
    Condition,
    ConditionStatus,
    ConditionType,
    FaceBlurJobStatus,
    Phase,
    Progress,
    Reason,
)
from faceblur_operator.naming import Stage
from faceblur_operator.stages import CreateJob, Decision, DeleteJob, decide
from operator_support import (
    NOW,
    T0,
    T1,
    job_plan,
    observation,
    process_result,
    raw_job,
    raw_pod,
    split_result,
    worker_error,
)

SPLIT_DONE = raw_job(Stage.SPLIT, state="complete")
SPLIT_POD = raw_pod(SPLIT_DONE, result=split_result(4, 40))
WORK_DONE = raw_job(Stage.WORK, state="complete", completions=4, completed="0-3")
WORK_PODS = [raw_pod(WORK_DONE, index=i, result=process_result(i, faces=i + 1)) for i in range(4)]
COMPOSE_DONE = raw_job(Stage.COMPOSE, state="complete")
COMPOSE_RESULT = {
    "stage": "compose",
    "version": 1,
    "output": "s3://media/out.mp4",
    "frames": 40,
    "faces": 12,
    "frames_with_faces": 30,
    "chunks": 4,
    "debug_video": "s3://media/jobs/clip/debug/debug.mp4",
    "contact_sheet": "s3://media/jobs/clip/debug/contact-sheet.png",
}


def running(phase: Phase, **extra: Any) -> FaceBlurJobStatus:
    return FaceBlurJobStatus(phase=phase, reason=Reason.PROCESSING, **extra)


def observe(
    jobs: list[dict[str, Any]],
    pods: list[dict[str, Any]] | None = None,
    status: FaceBlurJobStatus | None = None,
    *,
    retry_token: str | None = None,
    spec_error: str | None = None,
    cleanup: CleanupPolicy = CleanupPolicy.ON_SUCCESS,
    queue_name: str | None = None,
) -> Decision:
    spec = {"cleanup": cleanup.value} | ({"queueName": queue_name} if queue_name else {})
    plan = None if spec_error else job_plan(**spec)
    return decide(
        observation(jobs, pods, status=status, retry_token=retry_token, plan=plan, spec_error=spec_error)
    )


@dataclass(frozen=True)
class Case:
    name: str
    jobs: list[dict[str, Any]]
    pods: list[dict[str, Any]] = field(default_factory=list)
    status: FaceBlurJobStatus | None = None
    kw: dict[str, Any] = field(default_factory=dict)
    phase: Phase = Phase.PENDING
    reason: Reason = Reason.CREATED
    actions: tuple[Any, ...] = ()
    progress: str | None = None
    faces: int | None = None
    failed_indexes: str | None = None
    message_has: tuple[str, ...] = ()


def split_waiting(name: str, waiting: tuple[str, str], reason: Reason, *message_has: str) -> Case:
    """The split pod Pending with its container waiting (reason, message): the job says why."""
    split = raw_job(Stage.SPLIT)
    pods = [raw_pod(split, phase="Pending", waiting=waiting)]
    return Case(name, [split], pods, phase=Phase.SPLITTING, reason=reason, message_has=message_has)


FAILED_WORK = raw_job(
    Stage.WORK,
    state="failed",
    completions=4,
    completed="0-1,3",
    failed_indexes="2",
    failed_pods=3,
    failure_reason="FailedIndexes",
    failure_message="Job has failed indexes",
)
POLICY_FAILED_WORK = raw_job(
    Stage.WORK,
    state="failed",
    completions=4,
    completed="0",
    failed_pods=1,
    failure_reason="PodFailurePolicy",
    failure_message="Container worker for pod x failed with exit code 3",
)

CASES = [
    Case(
        "nothing yet: create the split Job",
        [],
        actions=(CreateJob(Stage.SPLIT, 0),),
        message_has=("clip-split",),
    ),
    Case(
        "split waits for Kueue",
        [raw_job(Stage.SPLIT, state="queued")],
        kw={"queue_name": "gpu-queue"},
        reason=Reason.QUEUED,
        message_has=("Kueue queue gpu-queue",),
    ),
    Case("split running", [raw_job(Stage.SPLIT)], phase=Phase.SPLITTING, reason=Reason.SPLITTING),
    Case(
        "split pod unschedulable",
        [j := raw_job(Stage.SPLIT)],
        [raw_pod(j, phase="Pending", unschedulable="0/2 nodes are available: 2 Insufficient cpu.")],
        phase=Phase.SPLITTING,
        reason=Reason.UNSCHEDULABLE,
        message_has=("Insufficient cpu",),
    ),
    split_waiting(
        "split image cannot be pulled",
        ("ImagePullBackOff", 'Back-off pulling image "nope"'),
        Reason.IMAGE_PULL_FAILED,
        "nope",
    ),
    split_waiting(
        "split image not on the node with pull policy Never",
        ("ErrImageNeverPull", 'Container image "nope:0" is not present with pull policy of Never'),
        Reason.IMAGE_PULL_FAILED,
        "nope:0",
        "pull policy of Never",
    ),
    split_waiting(
        "credentials Secret missing",
        ("CreateContainerConfigError", 'secret "s3" not found'),
        Reason.CONFIG_ERROR,
        'secret "s3" not found',
    ),
    Case(
        "split fails on a corrupt input",
        [j := raw_job(Stage.SPLIT, state="failed", failure_reason="PodFailurePolicy")],
        [raw_pod(j, phase="Failed", exit_code=3, result=worker_error("InvalidInput", "no video stream", 3))],
        phase=Phase.FAILED,
        reason=Reason.INVALID_INPUT,
        message_has=("split failed: no video stream", "faceblur.dev/retry"),
    ),
    Case(
        "split crashes without a result line: the log tail is the message",
        [j := raw_job(Stage.SPLIT, state="failed")],
        [raw_pod(j, phase="Failed", exit_code=1, result="Traceback ...\nRuntimeError: boom")],
        phase=Phase.FAILED,
        reason=Reason.JOB_FAILED,
        message_has=("RuntimeError: boom",),
    ),
    Case(
        "split done: create the worker Job with one completion per chunk",
        [SPLIT_DONE],
        [SPLIT_POD],
        phase=Phase.PROCESSING,
        reason=Reason.PROCESSING,
        actions=(CreateJob(Stage.WORK, 0, chunks=4),),
        progress="0/4",
    ),
    Case(
        "split done but its pod is gone and nothing remembers the chunks",
        [SPLIT_DONE],
        phase=Phase.FAILED,
        reason=Reason.RESULT_MISSING,
    ),
    Case(
        "split pod gone, chunk count remembered in status",
        [SPLIT_DONE],
        status=running(Phase.SPLITTING, progress=Progress(chunks_total=4, frames_total=40)),
        phase=Phase.PROCESSING,
        reason=Reason.PROCESSING,
        actions=(CreateJob(Stage.WORK, 0, chunks=4),),
    ),
    Case(
        "processing: progress from completedIndexes, faces from the pods' results",
        [SPLIT_DONE, w := raw_job(Stage.WORK, completions=4, completed="0,2")],
        [
            SPLIT_POD,
            raw_pod(w, index=0, result=process_result(0, 3)),
            raw_pod(w, index=2, result=process_result(2, 4)),
        ],
        phase=Phase.PROCESSING,
        reason=Reason.PROCESSING,
        progress="2/4",
        faces=7,
    ),
    Case(
        "processing with failures being retried",
        [SPLIT_DONE, raw_job(Stage.WORK, completions=4, completed="0", failed_pods=2)],
        [SPLIT_POD],
        phase=Phase.PROCESSING,
        reason=Reason.CHUNKS_RETRYING,
        message_has=("2 pod failures",),
    ),
    Case(
        "failures being retried say why the last one failed: out of memory, which limit to raise",
        [SPLIT_DONE, w := raw_job(Stage.WORK, completions=4, completed="0", failed_pods=2)],
        [
            SPLIT_POD,
            raw_pod(
                w,
                phase="Failed",
                index=1,
                exit_code=2,
                created=T0,
                result=worker_error("Storage", "S3 down", 2),
            ),
            raw_pod(
                w,
                phase="Failed",
                index=3,
                exit_code=137,
                created=T1,
                terminated_reason="OOMKilled",
                suffix="k",
            ),
        ],
        phase=Phase.PROCESSING,
        reason=Reason.CHUNKS_RETRYING,
        message_has=(
            "2 pod failures so far; the last: pod ",
            "ran out of memory (OOMKilled)",
            "limits.memory",
        ),
    ),
    Case(
        "a chunk out of retries names its index and the last error",
        [SPLIT_DONE, FAILED_WORK],
        [SPLIT_POD]
        + [
            raw_pod(
                FAILED_WORK,
                phase="Failed",
                index=2,
                suffix=s,
                created=t,
                exit_code=4,
                result=worker_error("Storage", f"cannot read chunk 2 ({s})", 4),
            )
            for s, t in (("a", T0), ("b", T1), ("c", NOW))
        ],
        phase=Phase.FAILED,
        reason=Reason.CHUNK_FAILED,
        failed_indexes="2",
        progress="3/4",
        message_has=("chunk 2 failed after 3 failed attempts", "cannot read chunk 2 (c)"),
    ),
    Case(
        "a permanent exit code fails the Job at once and names the chunk",
        [SPLIT_DONE, POLICY_FAILED_WORK],
        [
            SPLIT_POD,
            raw_pod(
                POLICY_FAILED_WORK,
                phase="Failed",
                index=1,
                exit_code=3,
                result=worker_error("InvalidInput", "chunk 1 is not a video", 3),
            ),
        ],
        phase=Phase.FAILED,
        reason=Reason.INVALID_INPUT,
        failed_indexes="1",
        message_has=("chunk 1 failed: chunk 1 is not a video",),
    ),
    Case(
        "every chunk that hit a permanent exit code is named",
        [SPLIT_DONE, POLICY_FAILED_WORK],
        [SPLIT_POD]
        + [
            raw_pod(
                POLICY_FAILED_WORK,
                phase="Failed",
                index=i,
                exit_code=3,
                created=t,
                result=worker_error("InvalidInput", "cannot open video chunk-000001.mp4", 3),
            )
            for i, t in ((2, T0), (1, T1), (0, NOW))
        ]
        + [
            raw_pod(POLICY_FAILED_WORK, phase="Failed", index=3, exit_code=137, suffix="k")
        ],  # killed: not named
        phase=Phase.FAILED,
        reason=Reason.INVALID_INPUT,
        failed_indexes="0-2",
        message_has=("chunks 0-2 failed: cannot open video chunk-000001.mp4",),
    ),
    Case(
        "an OOM-killed chunk says which limit to raise",
        [SPLIT_DONE, FAILED_WORK],
        [
            SPLIT_POD,
            raw_pod(FAILED_WORK, phase="Failed", index=2, exit_code=137, terminated_reason="OOMKilled"),
        ],
        phase=Phase.FAILED,
        reason=Reason.CHUNK_FAILED,
        message_has=("OOMKilled", "spec.resources.limits.memory"),
    ),
    Case(
        "all chunks done: create the compose Job",
        [SPLIT_DONE, WORK_DONE],
        [SPLIT_POD, *WORK_PODS],
        phase=Phase.COMPOSING,
        reason=Reason.COMPOSING,
        actions=(CreateJob(Stage.COMPOSE, 0),),
        progress="4/4",
        faces=10,
    ),
    Case(
        "compose fails on storage",
        [SPLIT_DONE, WORK_DONE, c := raw_job(Stage.COMPOSE, state="failed")],
        [
            SPLIT_POD,
            raw_pod(c, phase="Failed", exit_code=4, result=worker_error("Storage", "bucket gone", 4)),
        ],
        phase=Phase.FAILED,
        reason=Reason.STORAGE_ERROR,
        message_has=("compose failed: bucket gone",),
    ),
    Case(
        "compose done: Succeeded with the result's output and totals",
        [SPLIT_DONE, WORK_DONE, COMPOSE_DONE],
        [SPLIT_POD, *WORK_PODS, raw_pod(COMPOSE_DONE, result=COMPOSE_RESULT)],
        phase=Phase.SUCCEEDED,
        reason=Reason.SUCCEEDED,
        progress="4/4",
        faces=12,
        message_has=("s3://media/out.mp4",),
    ),
    Case(
        "an impossible spec fails without creating anything",
        [],
        kw={"spec_error": "no object store: set spec.storage.endpoint"},
        phase=Phase.FAILED,
        reason=Reason.INVALID_SPEC,
        message_has=("no object store",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case) -> None:
    decision = observe(case.jobs, case.pods, case.status, **case.kw)
    status = decision.status
    assert (status.phase, status.reason) == (case.phase, case.reason), status.message
    assert decision.actions == case.actions
    for text in case.message_has:
        assert text in (status.message or ""), status.message
    if case.progress is not None:
        assert status.progress is not None
        assert status.progress.chunks == case.progress
    if case.faces is not None:
        assert status.progress is not None
        assert status.progress.faces_found == case.faces
    if case.failed_indexes is not None:
        assert status.failed_indexes == case.failed_indexes
    assert status.observed_generation == 1


def test_success_reports_output_debug_artefacts_and_times() -> None:
    status = observe(
        [SPLIT_DONE, WORK_DONE, COMPOSE_DONE],
        [SPLIT_POD, *WORK_PODS, raw_pod(COMPOSE_DONE, result=COMPOSE_RESULT)],
    ).status
    assert status.output == "s3://media/out.mp4"
    assert status.debug is not None
    assert status.debug.contact_sheet == COMPOSE_RESULT["contact_sheet"]
    assert (status.start_time, status.completion_time) == (T0, T1)
    assert status.progress is not None
    assert (status.progress.frames_total, status.progress.frames_processed) == (40, 40)
    assert status.jobs is not None
    assert (status.jobs.split, status.jobs.work, status.jobs.compose) == (
        "clip-split",
        "clip-work",
        "clip-compose",
    )
    complete = status.condition(ConditionType.COMPLETE)
    assert complete is not None
    assert complete.status == ConditionStatus.TRUE


def test_terminal_phases_stay() -> None:
    done = observe(
        [SPLIT_DONE, WORK_DONE, COMPOSE_DONE], [raw_pod(COMPOSE_DONE, result=COMPOSE_RESULT)]
    ).status
    again = observe([], [], done)  # even with the Jobs gone
    assert again.status == done
    assert again.actions == ()
    failed = observe([SPLIT_DONE, FAILED_WORK], [SPLIT_POD]).status
    assert observe([SPLIT_DONE, FAILED_WORK], [SPLIT_POD], failed, retry_token=None).status == failed


def test_retry_redoes_only_the_failed_stage() -> None:
    failed = observe([SPLIT_DONE, FAILED_WORK], [SPLIT_POD]).status
    retried = observe([SPLIT_DONE, FAILED_WORK], [SPLIT_POD], failed, retry_token="1")
    assert retried.actions == (DeleteJob("clip-work"), CreateJob(Stage.WORK, 1, chunks=4))
    status = retried.status
    assert (status.phase, status.attempt, status.retry_token) == (Phase.PROCESSING, 1, "1")
    assert status.jobs is not None
    assert status.jobs.work == "clip-work-r1"
    assert status.jobs.split == "clip-split"
    failed_condition = status.condition(ConditionType.FAILED)
    assert failed_condition is not None
    assert failed_condition.status == ConditionStatus.FALSE
    assert failed_condition.reason == Reason.RETRY_REQUESTED
    assert status.failed_indexes is None
    assert status.completion_time is None
    assert any(e.reason == Reason.RETRY_REQUESTED for e in retried.events)
    # the next reconcile sees the new Job (the old one may linger a moment) and keeps going
    new_work = raw_job(Stage.WORK, attempt=1, completions=4, completed="0-1,3")
    later = observe([SPLIT_DONE, FAILED_WORK, new_work], [SPLIT_POD], status, retry_token="1")
    assert later.actions == ()
    assert later.status.phase == Phase.PROCESSING
    assert later.status.progress is not None
    assert later.status.progress.chunks == "3/4"
    # the same token again does nothing more once the job fails again
    failed_again = observe(
        [SPLIT_DONE, raw_job(Stage.WORK, attempt=1, state="failed", completions=4, failed_indexes="2")],
        [SPLIT_POD],
        later.status,
        retry_token="1",
    ).status
    assert failed_again.phase == Phase.FAILED
    assert failed_again.attempt == 1


def test_retry_after_cleanup_starts_from_the_split() -> None:
    failed = observe([SPLIT_DONE, FAILED_WORK], [SPLIT_POD], cleanup=CleanupPolicy.ALWAYS)
    assert CreateJob(Stage.CLEANUP, 0) in failed.actions
    cleanup = raw_job(Stage.CLEANUP, state="complete")
    retried = observe(
        [SPLIT_DONE, FAILED_WORK, cleanup],
        [SPLIT_POD],
        failed.status,
        retry_token="x",
        cleanup=CleanupPolicy.ALWAYS,
    )
    deleted = {a.name for a in retried.actions if isinstance(a, DeleteJob)}
    assert deleted == {"clip-split", "clip-work", "clip-cleanup"}
    assert CreateJob(Stage.SPLIT, 1) in retried.actions
    assert retried.status.phase == Phase.PENDING


def test_cleanup_always_runs_once_after_failure() -> None:
    failed = observe([SPLIT_DONE, FAILED_WORK], [SPLIT_POD], cleanup=CleanupPolicy.ALWAYS).status
    cleanup = raw_job(Stage.CLEANUP)
    assert observe([SPLIT_DONE, FAILED_WORK, cleanup], [], failed, cleanup=CleanupPolicy.ALWAYS).actions == ()
    assert observe([SPLIT_DONE, FAILED_WORK], [], failed, cleanup=CleanupPolicy.NEVER).actions == ()


def test_a_retry_annotation_set_before_the_failure_does_not_retry() -> None:
    split_running = observe([raw_job(Stage.SPLIT)], retry_token="early").status
    assert split_running.retry_token == "early"
    failed = observe([raw_job(Stage.SPLIT, state="failed")], status=split_running, retry_token="early").status
    assert failed.phase == Phase.FAILED
    assert observe([raw_job(Stage.SPLIT, state="failed")], status=failed, retry_token="early").actions == ()


def test_last_transition_time_moves_only_when_status_flips() -> None:
    before = FaceBlurJobStatus(
        phase=Phase.PROCESSING,
        reason=Reason.PROCESSING,
        conditions=[
            Condition(
                type=ConditionType.PROCESSED,
                status=ConditionStatus.FALSE,
                reason=Reason.PROCESSING,
                message="1/4",
                last_transition_time=T0,
            ),
        ],
    )
    work = raw_job(Stage.WORK, completions=4, completed="0-1")
    after = observe([SPLIT_DONE, work], [SPLIT_POD], before).status
    processed = after.condition(ConditionType.PROCESSED)
    assert processed is not None
    assert (processed.message, processed.last_transition_time) == ("2/4", T0)
    done = observe([SPLIT_DONE, WORK_DONE], [SPLIT_POD], after).status.condition(ConditionType.PROCESSED)
    assert done is not None
    assert (done.status, done.last_transition_time) == (ConditionStatus.TRUE, NOW)


def test_events_mark_transitions_and_failures() -> None:
    created = observe([])
    assert created.events == ()  # the apply layer reports each Job it creates
    splitting = observe([raw_job(Stage.SPLIT)], status=created.status)
    assert [(e.type, e.reason) for e in splitting.events] == [("Normal", Reason.SPLITTING)]
    assert observe([raw_job(Stage.SPLIT)], status=splitting.status).events == ()  # no change, no event
    failed = observe([raw_job(Stage.SPLIT, state="failed")], status=splitting.status)
    assert [(e.type, e.reason) for e in failed.events] == [("Warning", Reason.JOB_FAILED)]


def test_stage_durations_are_reported_once() -> None:
    first = observe([SPLIT_DONE], [SPLIT_POD], running(Phase.SPLITTING))
    assert first.finished_stages == ((Stage.SPLIT, 30.0),)
    assert observe([SPLIT_DONE], [SPLIT_POD], first.status).finished_stages == ()


# A failure the worker marks final (a missing input object, exit code 4 with `permanent`) ends the job
# at once: the Job's own retries would only fail again, 10 s and more apart.
MISSING = "cannot download s3://media/clip.mp4: no such object; upload the input there"


def final_error(stage: str, message: str, code: int, permanent: bool = True) -> dict[str, Any]:
    reason = {3: "InvalidInput", 4: "Storage"}[code]
    return {"stage": stage, "error": message, "reason": reason, "exit_code": code, "permanent": permanent}


def test_a_missing_input_fails_the_split_at_once_and_stops_its_retries() -> None:
    split = raw_job(Stage.SPLIT, failed_pods=1)
    pod = raw_pod(split, phase="Failed", exit_code=4, result=final_error("split", MISSING, 4))
    decision = observe([split], [pod])
    assert decision.status.phase == Phase.FAILED
    assert decision.status.reason == Reason.STORAGE_ERROR
    assert decision.status.message is not None
    assert decision.status.message.startswith(f"split failed: {MISSING}")
    assert decision.actions == (DeleteJob(split["metadata"]["name"]),)
    assert decision.events[-1].type == "Warning"


def test_a_transient_storage_failure_is_still_retried_by_the_job() -> None:
    split = raw_job(Stage.SPLIT, failed_pods=1)
    unreachable = final_error("split", "S3 endpoint unreachable", 4, permanent=False)
    decision = observe([split], [raw_pod(split, phase="Failed", exit_code=4, result=unreachable)])
    assert decision.status.phase == Phase.SPLITTING
    assert decision.actions == ()


def test_a_chunk_that_fails_for_good_fails_the_job_naming_the_chunk() -> None:
    work = raw_job(Stage.WORK, completions=4, completed="0-1", failed_pods=1)
    pods = [
        *(raw_pod(work, index=i, result=process_result(i, faces=1)) for i in (0, 1)),
        raw_pod(work, index=2, phase="Failed", exit_code=4, result=final_error("process", MISSING, 4)),
    ]
    decision = observe([SPLIT_DONE, work], [SPLIT_POD, *pods])
    assert (decision.status.phase, decision.status.reason) == (Phase.FAILED, Reason.STORAGE_ERROR)
    assert decision.status.failed_indexes == "2"
    assert decision.status.message is not None
    assert decision.status.message.startswith(f"chunk 2 failed: {MISSING}")
    assert decision.actions == (DeleteJob(work["metadata"]["name"]),)


def test_permanent_exit_codes_are_left_to_the_pod_failure_policy() -> None:
    split = raw_job(Stage.SPLIT, failed_pods=1)
    corrupt = final_error("split", "cannot read s3://media/clip.mp4: not a readable media file", 3)
    decision = observe([split], [raw_pod(split, phase="Failed", exit_code=3, result=corrupt)])
    assert decision.status.phase == Phase.SPLITTING  # the Job controller fails the Job itself, at once
    assert decision.actions == ()


def test_the_worker_job_is_sized_from_the_input_in_the_split_s_record() -> None:
    split_pod = raw_pod(SPLIT_DONE, result={**split_result(4, 40), "input_bytes": 10**9})
    decision = observe([SPLIT_DONE], [split_pod])
    assert decision.actions == (CreateJob(Stage.WORK, 0, 4, 10**9),)


def test_a_pod_no_node_has_the_scratch_space_for_fails_the_job_naming_the_size() -> None:
    """Waiting cannot help a pod that needs more local storage than a node gives: it fails, naming the
    size and what to do, and its Job is stopped."""
    split_pod = raw_pod(SPLIT_DONE, result={**split_result(4, 40), "input_bytes": 8 * 1024**3})
    work = raw_job(Stage.WORK, completions=4)
    message = "0/1 nodes are available: 1 Insufficient ephemeral-storage."
    pending = raw_pod(work, index=0, phase="Pending", unschedulable=message)
    decision = observe([SPLIT_DONE, work], [split_pod, pending])
    assert (decision.status.phase, decision.status.reason) == (Phase.FAILED, Reason.INSUFFICIENT_SCRATCH)
    text = decision.status.message or ""
    assert "work pods need 8.2 GiB of scratch space (ephemeral-storage) for the 8.0 GiB input" in text
    assert "Insufficient ephemeral-storage" in text
    assert "spec.chunking" in text
    assert DeleteJob(work["metadata"]["name"]) in decision.actions

    cpu_short = raw_pod(
        work, index=0, phase="Pending", unschedulable="0/1 nodes are available: 1 Insufficient cpu."
    )
    assert observe([SPLIT_DONE, work], [split_pod, cpu_short]).status.reason == Reason.UNSCHEDULABLE  # waits
