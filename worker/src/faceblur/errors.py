"""Errors a user can act on, each with the process exit code that names its kind.

The exit codes, which of them are permanent and the reason each reports are part of the contract
with the operator (`faceblur_contract.exits`): its podFailurePolicy fails a Job at once on the
permanent ones (usage, bad input, missing model) instead of retrying. An error whose kind is
usually transient but is final this time (a missing object) says so with `final`.
"""

from __future__ import annotations

from faceblur_contract.exits import ExitCode

__all__ = [
    "ExitCode",
    "FaceblurError",
    "InvalidInputError",
    "ModelError",
    "ObjectNotFoundError",
    "ResidualFacesError",
    "StorageError",
]


class FaceblurError(Exception):
    """Base class: the message is one line meant for the user."""

    exit_code: ExitCode = ExitCode.INTERNAL
    final: bool = False  # no retry can succeed, whatever the exit code's kind


class InvalidInputError(FaceblurError):
    exit_code = ExitCode.INVALID_INPUT


class StorageError(FaceblurError):
    exit_code = ExitCode.STORAGE


class ObjectNotFoundError(StorageError):
    """A 404 or a missing file: it stays missing until someone uploads it, so a retry cannot help."""

    final = True


class ModelError(FaceblurError):
    exit_code = ExitCode.MODEL


class ResidualFacesError(FaceblurError):
    """The output kept more face-like sharp regions than the job allows: it is not published, and the
    same chunks would give the same output, so no retry helps (reprocess with other settings)."""

    exit_code = ExitCode.RESIDUAL_FACES
    final = True
