"""status.outputPlan: what split planned of the output (container, streams copied, transcoded or
dropped, and why), from the split pod's record, remembered once its pod is gone."""

from __future__ import annotations

from faceblur_operator.api import FaceBlurJobStatus, Phase
from faceblur_operator.naming import Stage
from faceblur_operator.stages import decide
from operator_support import job_plan, observation, raw_job, raw_pod, split_result

PLAN = "MP4; audio #1 pcm_s16le -> aac 256 kb/s (MP4 players seldom play pcm_s16le; name the output .mov)"
SPLIT_DONE = raw_job(Stage.SPLIT, state="complete")


def test_the_output_plan_comes_from_the_split_s_record() -> None:
    pod = raw_pod(SPLIT_DONE, result={**split_result(4, 40), "output_plan": PLAN})
    status = decide(observation([SPLIT_DONE], [pod], plan=job_plan())).status
    assert status.phase == Phase.PROCESSING
    assert status.output_plan == PLAN
    assert status.to_dict()["outputPlan"] == PLAN


def test_the_output_plan_is_remembered_when_the_split_pod_is_gone() -> None:
    remembered = FaceBlurJobStatus(phase=Phase.PROCESSING, output_plan=PLAN)
    status = decide(observation([SPLIT_DONE], [], status=remembered, plan=job_plan())).status
    assert status.output_plan == PLAN


def test_no_output_plan_before_split_or_from_an_older_worker() -> None:
    assert decide(observation([], [], plan=job_plan())).status.output_plan is None
    pod = raw_pod(SPLIT_DONE, result=split_result(4, 40))
    assert decide(observation([SPLIT_DONE], [pod], plan=job_plan())).status.output_plan is None
