"""Errors a user can act on, each with the process exit code that names its kind.

The exit codes, which of them are permanent and the reason each reports are part of the contract
with the operator (`faceblur_contract.exits`): its podFailurePolicy fails a Job at once on the
permanent ones (usage, bad input, missing model) instead of retrying. An error whose kind is
usually transient but is final this time (a missing object) says so with `final`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from faceblur_contract.exits import ExitCode

__all__ = [
    "FaceblurError",
    "GpuUnavailableError",
    "InputTruncatedError",
    "InvalidInputError",
    "MediaFileError",
    "ModelError",
    "ObjectNotFoundError",
    "OutputExistsError",
    "PrefixInUseError",
    "ResidualFacesError",
    "StorageError",
    "reason",
]


class FaceblurError(Exception):
    """Base class: the message is one line meant for the user."""

    exit_code: ExitCode = ExitCode.INTERNAL
    final: bool = False  # no retry can succeed, whatever the exit code's kind


class InvalidInputError(FaceblurError):
    exit_code = ExitCode.INVALID_INPUT


class MediaFileError(InvalidInputError):
    """A local media file cannot be read as a video. It is often a scratch copy of a job's object
    (a chunk, the audio), whose name means nothing to the user: the phase that made the copy knows
    which object it is and restates the error with `naming`."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path.name}: {problem}")
        self.path, self.problem = path, problem

    def naming(self, copies: Mapping[Path, tuple[str, str]]) -> FaceblurError:
        """The error about what `copies` says the file is a copy of: path -> (the user's URL or
        path, what to do); this error itself for a file that is no copy."""
        if self.path not in copies:
            return self
        where, advice = copies[self.path]
        return InvalidInputError(f"{where}: {self.problem}; {advice}")


def reason(exc: BaseException) -> str:
    """A failure in a few words, without the file name FFmpeg and OSError append (a scratch path)."""
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror)
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


class StorageError(FaceblurError):
    exit_code = ExitCode.STORAGE


class ObjectNotFoundError(StorageError):
    """A 404 or a missing file: it stays missing until someone uploads it, so a retry cannot help."""

    final = True


class ModelError(FaceblurError):
    exit_code = ExitCode.MODEL


class PrefixInUseError(FaceblurError):
    """The job's prefix holds another job's objects, or objects made from another input: nothing is
    reused, written or deleted there."""

    exit_code = ExitCode.PREFIX_IN_USE


class OutputExistsError(FaceblurError):
    """The output exists, the job did not write it and may not replace it: the user must choose
    another output or allow the overwrite."""

    exit_code = ExitCode.OUTPUT_EXISTS


class InputTruncatedError(InvalidInputError):
    """The input ends before its header says, or cannot be read to its end (an incomplete upload):
    refused at split, before any work, unless the job allows processing the frames that can be read."""

    exit_code = ExitCode.INPUT_TRUNCATED


class GpuUnavailableError(FaceblurError):
    """A GPU runtime was asked for and this container cannot run it: the node, its driver or the
    image must change, so retrying the pod as it is cannot help."""

    exit_code = ExitCode.GPU_UNAVAILABLE


class ResidualFacesError(FaceblurError):
    """The output kept more face-like sharp regions than the job allows: it is not published, and the
    same chunks would give the same output, so no retry helps (reprocess with other settings)."""

    exit_code = ExitCode.RESIDUAL_FACES
    final = True
