"""What the residual-face check reported, as the FaceBlurJob shows it. Pure.

The compose pod's termination record carries the merged summary of the chunks' checks (the
contract's `Verification`) and where the full report went; this turns it into
status.verification, the Verified condition and its message.
"""

from __future__ import annotations

from faceblur_contract.records import Verification

from faceblur_operator.api import ConditionStatus, Reason, ResidualFrameStatus, VerificationStatus
from faceblur_operator.views import TerminationMessage


def from_record(record: TerminationMessage) -> VerificationStatus | None:
    """status.verification from compose's record; None when the output was not verified."""
    raw = record.data.get("verification")
    if not isinstance(raw, dict):
        return None
    summary = Verification.model_validate(raw)
    return VerificationStatus(
        frames_checked=summary.frames_checked,
        residual_frames=summary.residual_frames,
        candidates=summary.candidates,
        worst=[
            ResidualFrameStatus(frame=f.frame, time_seconds=f.time_s, score=f.score) for f in summary.worst
        ],
        report=record.string("verification_report"),
    )


def condition(status: VerificationStatus | None) -> tuple[ConditionStatus, Reason, str]:
    """The Verified condition: True when nothing was found, False with the worst frames when something was."""
    if status is None:
        return ConditionStatus.UNKNOWN, Reason.NOT_VERIFIED, "the output was not checked for residual faces"
    if not status.residual_frames:
        return (
            ConditionStatus.TRUE,
            Reason.VERIFIED,
            f"no residual face in {status.frames_checked} frames checked",
        )
    worst = ", ".join(f"frame {f.frame} at {f.time_seconds:.2f} s ({f.score:.2f})" for f in status.worst)
    message = (
        f"{status.residual_frames} of {status.frames_checked} frames checked keep a sharp face-like region"
        f" ({status.candidates} candidates), worst {worst}; report {status.report}"
    )
    return ConditionStatus.FALSE, Reason.RESIDUAL_FACES, message
