"""Errors a user can act on, each with the process exit code that names its kind.

The exit codes are part of the contract with the operator: its podFailurePolicy fails
a Job at once on the permanent ones (bad input, missing model) instead of retrying.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug or an unexpected failure: worth a retry
    USAGE = 2  # bad command-line arguments (typer's own code)
    INVALID_INPUT = 3  # the input can never be processed: permanent
    STORAGE = 4  # object store unreachable, missing object, bad credentials: maybe transient
    MODEL = 5  # detector model missing or unloadable: permanent


PERMANENT_EXIT_CODES = (ExitCode.INVALID_INPUT, ExitCode.MODEL)


class FaceblurError(Exception):
    """Base class: the message is one line meant for the user."""

    exit_code: ExitCode = ExitCode.INTERNAL


class InvalidInputError(FaceblurError):
    exit_code = ExitCode.INVALID_INPUT


class StorageError(FaceblurError):
    exit_code = ExitCode.STORAGE


class ObjectNotFoundError(StorageError):
    pass


class ModelError(FaceblurError):
    exit_code = ExitCode.MODEL
