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


class JobResult(_Doc):
    version: Literal[1] = 1
    output: str
    frames: int
    faces: int
    frames_with_faces: int
    chunks: int
    debug_video: str | None = None
    contact_sheet: str | None = None


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
