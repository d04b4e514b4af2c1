"""The residual-face check as the FaceBlurJob shows it: status.verification, the Verified condition,
a Warning Event, the failure when the bound is exceeded, and the flags the pods get."""

from __future__ import annotations

from typing import Any

from faceblur_contract.exits import ExitCode
from faceblur_operator.api import ConditionStatus, ConditionType, FaceBlurJobStatus, Phase, Reason
from faceblur_operator.builders import build_compose_job, build_worker_job
from faceblur_operator.naming import Stage
from faceblur_operator.stages import Decision, decide
from operator_support import (
    job_plan,
    observation,
    process_result,
    raw_job,
    raw_pod,
    split_result,
    worker_error,
)

SPLIT_DONE = raw_job(Stage.SPLIT, state="complete")
WORK_DONE = raw_job(Stage.WORK, state="complete", completions=2, completed="0-1")
COMPOSE_DONE = raw_job(Stage.COMPOSE, state="complete")
PODS = [
    raw_pod(SPLIT_DONE, result=split_result(2, 40)),
    *(raw_pod(WORK_DONE, index=i, result=process_result(i, faces=3)) for i in range(2)),
]
RESIDUAL = {
    "frames_checked": 4,
    "residual_frames": 2,
    "candidates": 3,
    "worst": [
        {"frame": 20, "time_s": 0.8, "score": 0.9, "boxes": []},
        {"frame": 10, "time_s": 0.4, "score": 0.88, "boxes": []},
    ],
    "seconds": 1.5,
}


def compose_record(verification: dict[str, Any] | None) -> dict[str, Any]:
    record: dict[str, Any] = {"stage": "compose", "output": "s3://media/out.mp4", "frames": 40, "chunks": 2}
    if verification is not None:
        record |= {"verification": verification, "verification_report": "s3://media/out.verify.json"}
    return record


def observe(pods: list[dict[str, Any]], status: FaceBlurJobStatus | None = None, **spec: Any) -> Decision:
    return decide(
        observation([SPLIT_DONE, WORK_DONE, COMPOSE_DONE], pods, status=status, plan=job_plan(**spec))
    )


def test_residual_faces_show_in_the_status_a_false_condition_and_a_warning_event() -> None:
    decision = observe([*PODS, raw_pod(COMPOSE_DONE, result=compose_record(RESIDUAL))])
    status = decision.status
    assert status.phase == Phase.SUCCEEDED
    assert status.verification is not None
    assert (status.verification.frames_checked, status.verification.residual_frames) == (4, 2)
    assert [(f.frame, f.time_seconds) for f in status.verification.worst] == [(20, 0.8), (10, 0.4)]
    assert status.verification.report == "s3://media/out.verify.json"
    verified = status.condition(ConditionType.VERIFIED)
    assert verified is not None
    assert (verified.status, verified.reason) == (ConditionStatus.FALSE, Reason.RESIDUAL_FACES)
    assert "frame 20 at 0.80 s" in verified.message
    assert "s3://media/out.verify.json" in verified.message
    warnings = [e for e in decision.events if e.reason == Reason.RESIDUAL_FACES]
    assert [e.type for e in warnings] == ["Warning"]
    assert status.to_dict()["verification"]["residualFrames"] == 2


def test_a_clean_check_is_a_true_condition_and_no_warning() -> None:
    clean = RESIDUAL | {"residual_frames": 0, "candidates": 0, "worst": []}
    decision = observe([*PODS, raw_pod(COMPOSE_DONE, result=compose_record(clean))])
    verified = decision.status.condition(ConditionType.VERIFIED)
    assert verified is not None
    assert (verified.status, verified.reason) == (ConditionStatus.TRUE, Reason.VERIFIED)
    assert not [e for e in decision.events if e.reason == Reason.RESIDUAL_FACES]


def test_an_unchecked_output_says_so() -> None:
    decision = observe([*PODS, raw_pod(COMPOSE_DONE, result=compose_record(None))])
    verified = decision.status.condition(ConditionType.VERIFIED)
    assert verified is not None
    assert (verified.status, verified.reason) == (ConditionStatus.UNKNOWN, Reason.NOT_VERIFIED)
    assert decision.status.verification is None


def test_more_residual_frames_than_allowed_fail_the_job_with_their_reason() -> None:
    message = (
        "s3://media/out.mp4 not published: verification checked 4 frames: 2 with a sharp face-like region"
    )
    failed_compose = raw_job(Stage.COMPOSE, state="failed", failed_pods=1, failure_reason="PodFailurePolicy")
    pods = [
        *PODS,
        raw_pod(
            failed_compose,
            phase="Failed",
            exit_code=int(ExitCode.RESIDUAL_FACES),
            result=worker_error("ResidualFaces", message, int(ExitCode.RESIDUAL_FACES))
            | {"stage": "compose"},
        ),
    ]
    plan = job_plan(verification={"maxResidualFrames": 1})
    status = decide(observation([SPLIT_DONE, WORK_DONE, failed_compose], pods, plan=plan)).status
    assert (status.phase, status.reason) == (Phase.FAILED, Reason.RESIDUAL_FACES)
    assert "not published" in (status.message or "")


def test_the_pods_get_the_check_s_flags_and_compose_the_bound() -> None:
    plan = job_plan(verification={"every": 3, "maxResidualFrames": 0})
    work = build_worker_job(plan, chunks=2)["spec"]["template"]["spec"]["containers"][0]["command"]
    assert work[work.index("--verify-every") + 1] == "3"
    assert "--verify" in work
    compose = build_compose_job(plan)["spec"]["template"]["spec"]["containers"][0]["command"]
    assert compose[compose.index("--verify-max-residual-frames") + 1] == "0"
    off = build_worker_job(job_plan(verification={"enabled": False}), chunks=2)
    assert "--no-verify" in off["spec"]["template"]["spec"]["containers"][0]["command"]
    assert (
        "--verify-max-residual-frames"
        not in build_compose_job(job_plan())["spec"]["template"]["spec"]["containers"][0]["command"]
    )
