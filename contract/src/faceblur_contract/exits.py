"""How a worker command ends: its exit code, whether a retry can help, and the reason it reports.

The operator's Jobs fail at once (podFailurePolicy `FailJob`) on the permanent codes instead of
retrying, and its FaceBlurJob reasons are looked up from `REASONS` via the termination record.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug or an unexpected failure: worth a retry
    USAGE = 2  # bad command-line arguments (typer's own code): no retry can fix them
    INVALID_INPUT = 3  # the input can never be processed: permanent
    STORAGE = 4  # object store unreachable, bad credentials: maybe transient (see `permanent`)
    MODEL = 5  # detector model missing or unloadable: permanent
    RESIDUAL_FACES = 6  # verification found more residual faces than allowed: nothing published, permanent
    GPU_UNAVAILABLE = 7  # a GPU runtime was asked for and the container cannot run it: permanent
    PREFIX_IN_USE = 8  # the job's intermediates prefix holds another job's or another input's: permanent
    OUTPUT_EXISTS = 9  # the output exists, is not the job's own and may not be replaced: permanent
    INPUT_TRUNCATED = 10  # the input ends early or cannot be read to its end (refused at split): permanent


class WorkerReason(StrEnum):
    """The `reason` of a termination record: the kind of failure, for the operator to name."""

    INVALID_INPUT = "InvalidInput"
    STORAGE = "Storage"
    MODEL = "Model"
    RESIDUAL_FACES = "ResidualFaces"
    GPU_UNAVAILABLE = "GPUUnavailable"
    PREFIX_IN_USE = "PrefixInUse"
    OUTPUT_EXISTS = "OutputExists"
    INPUT_TRUNCATED = "InputTruncated"
    INTERNAL = "Internal"


# Usage errors of a pod come from a command line the operator rendered from the spec, so the user
# reads them as a spec that cannot work: the same reason as invalid input.
REASONS: dict[ExitCode, WorkerReason] = {
    ExitCode.INTERNAL: WorkerReason.INTERNAL,
    ExitCode.USAGE: WorkerReason.INVALID_INPUT,
    ExitCode.INVALID_INPUT: WorkerReason.INVALID_INPUT,
    ExitCode.STORAGE: WorkerReason.STORAGE,
    ExitCode.MODEL: WorkerReason.MODEL,
    ExitCode.RESIDUAL_FACES: WorkerReason.RESIDUAL_FACES,
    ExitCode.GPU_UNAVAILABLE: WorkerReason.GPU_UNAVAILABLE,
    ExitCode.PREFIX_IN_USE: WorkerReason.PREFIX_IN_USE,
    ExitCode.OUTPUT_EXISTS: WorkerReason.OUTPUT_EXISTS,
    ExitCode.INPUT_TRUNCATED: WorkerReason.INPUT_TRUNCATED,
}

# Exit codes no retry can change. A storage failure (4) is permanent only case by case (a missing
# object, not an unreachable endpoint): the termination record's `permanent` flag says so.
PERMANENT_EXIT_CODES: frozenset[ExitCode] = frozenset(
    {
        ExitCode.USAGE,
        ExitCode.INVALID_INPUT,
        ExitCode.MODEL,
        ExitCode.RESIDUAL_FACES,
        ExitCode.GPU_UNAVAILABLE,
        ExitCode.PREFIX_IN_USE,
        ExitCode.OUTPUT_EXISTS,
        ExitCode.INPUT_TRUNCATED,
    }
)


def reason_of(code: int) -> WorkerReason:
    try:
        return REASONS.get(ExitCode(code), WorkerReason.INTERNAL)
    except ValueError:
        return WorkerReason.INTERNAL


def is_permanent(code: int | None) -> bool:
    return code is not None and code in {int(c) for c in PERMANENT_EXIT_CODES}
