"""What a worker command leaves for the operator: the result documents and the termination record.

`ChunkResult` (per processed index) and `JobResult` (the published output) are written to the object
store and, as the last line of the pod, to the termination log; a failure writes a `FailureRecord`.
The operator reads all of them from the pods' termination messages, never from the store.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from faceblur_contract.exits import ExitCode, WorkerReason, is_permanent, reason_of

PERMANENT_KEY = "permanent"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()


class ResidualBox(_Doc):
    """A region of the output the verification pass still finds face-like and sharp (displayed pixels)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float  # the sensitive detector's score
    sharpness: float  # the region's detail relative to its frame's (about 0.02 once blurred, 0.5-3 sharp)
    detector: str
    fixed: bool = False  # anonymized by the fix-up in this frame and every frame its face was found in


class ResidualFrame(_Doc):
    frame: int  # frame number in the whole input
    time_s: float  # its presentation time from the start of the video
    score: float  # the best score of its residual boxes
    boxes: list[ResidualBox] = []


class FixedBox(_Doc):
    """A region the fix-up anonymized (displayed pixels): where the sensitive detector found the face."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    detector: str


class FixedFrame(_Doc):
    frame: int  # frame number in the whole input
    time_s: float
    found_at: list[int]  # the checked frames whose residual candidates led here
    boxes: list[FixedBox] = []


class Verification(_Doc):
    """What the verification pass found on some frames of the output: small enough for a termination
    record, so the operator reads it from the pods; the full list is in the `VerificationReport`."""

    frames_checked: int = 0
    residual_frames: int = 0  # checked frames with at least one residual candidate
    candidates: int = 0  # residual boxes over all checked frames
    worst: list[ResidualFrame] = []  # the highest-scoring residual frames, best first, one box each
    seconds: float = 0.0
    fixed_frames: int = 0  # frames the fix-up anonymized (checked or not)
    unfixed_frames: int = 0  # residual frames with a candidate left as it was (what a bound counts)


class VerificationReport(_Doc):
    """The JSON report beside the output (`<output stem>.verify.json`), and each chunk's part of it."""

    version: Literal[1] = 1
    output: str | None = None  # None: one chunk's part, before compose
    frames: int  # frames of the video (or chunk) the report covers
    every: int  # every n-th frame of the input was checked
    threshold_factor: float
    scale_factor: float
    detectors: list[str]
    summary: Verification
    max_residual_frames: int | None = None
    passed: bool = True  # False: more residual frames than max_residual_frames (nothing published)
    unverified_chunks: list[int] = []  # chunks processed without verification
    residual: list[ResidualFrame] = []  # every residual frame, in order
    fixed: list[FixedFrame] = []  # every frame the fix-up anonymized, in order


class ChunkResult(_Doc):
    """Summary of one processed index: small, so the operator can list and sum them."""

    version: Literal[1] = 1
    index: int
    frames: int
    faces: int  # boxes drawn over, detected and carried
    detected_faces: int
    frames_with_faces: int
    detectors: list[str]
    seconds: float
    verification: Verification | None = None  # None: processed without verification
    whole_frames: int = 0  # frames fail-secure anonymized whole (detection failed or a face lost)
    runtime: str | None = None  # the inference runtime in use, e.g. CUDAExecutionProvider
    device: str | None = None  # what it ran on, e.g. "NVIDIA L4, 22.5 GiB" or "CPU, 4 cores"
    encoder: str | None = None  # the H.264 encoder that wrote it: libx264 or h264_nvenc

    @property
    def ran_on(self) -> str | None:
        return ran_on(self.runtime, self.device, self.encoder)


class JobResult(_Doc):
    version: Literal[1] = 1
    output: str
    frames: int
    faces: int
    frames_with_faces: int
    chunks: int
    debug_video: str | None = None
    contact_sheet: str | None = None
    verification: Verification | None = None
    verification_report: str | None = None  # where the VerificationReport was published
    whole_frames: int = 0  # frames fail-secure anonymized whole
    runtimes: list[str] = []  # where the chunks' inference ran (`ran_on`), each once
    truncated: str | None = None  # why the input is truncated: only its `frames` readable ones were processed


def ran_on(runtime: str | None, device: str | None, encoder: str | None = None) -> str | None:
    """'CUDAExecutionProvider on NVIDIA L4, 22.5 GiB, h264_nvenc': a chunk's runtime and encoder in one
    phrase, for people."""
    if runtime is None:
        return None
    where = f"{runtime} on {device}" if device else runtime
    return f"{where}, {encoder}" if encoder else where


class FailureRecord(_Doc):
    """The termination line of a failed command. `permanent`: no retry of the pod can succeed
    (a permanent exit code, or a failure the worker knows is final, such as a missing object)."""

    stage: str
    error: str
    reason: WorkerReason
    exit_code: int
    permanent: bool = False


def failure_record(stage: str, message: str, exit_code: ExitCode, *, final: bool = False) -> dict[str, Any]:
    record = FailureRecord(
        stage=stage,
        error=message.splitlines()[0] if message else "unknown error",
        reason=reason_of(exit_code),
        exit_code=int(exit_code),
        permanent=final or is_permanent(exit_code),
    )
    return record.model_dump(mode="json")
