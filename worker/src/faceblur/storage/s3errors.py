"""What an S3 failure means: worth another try or final, and the one line that tells a person
what went wrong with which object (missing, credentials, permission, endpoint unreachable)."""

from __future__ import annotations

from collections.abc import Callable

import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from faceblur.errors import ObjectNotFoundError, StorageError

# S3 error codes worth another try; everything else is final at once.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "ResourceNotFound"})


def is_transient(exc: BaseException) -> bool:
    """Connection failures, 5xx answers and throttling: the next try may succeed."""
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, S3Error):
        return exc.code in TRANSIENT_CODES or _status(exc) >= 500
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        return _status(exc) >= 500 or _status(exc) == 429
    return False


def _status(exc: S3Error | InvalidResponseError) -> int:
    if isinstance(exc, S3Error):
        return int(getattr(exc.response, "status", 0) or 0)
    return int(getattr(exc, "_code", 0) or 0)


def storage_error(
    action: str,
    bucket: str,
    key: str,
    exc: Exception,
    endpoint: str,
    credentials_rejected: Callable[[], bool],
) -> StorageError:
    """The error to raise for a failed `action` on s3://bucket/key at `endpoint`.

    `credentials_rejected` is asked only after an AccessDenied, to tell bad credentials from a
    missing permission (a HEAD answer has no body that would say which)."""
    where = f"s3://{bucket}/{key}"
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchBucket":
            return ObjectNotFoundError(f"cannot {action} {where}: bucket {bucket!r} does not exist")
        if exc.code in NOT_FOUND_CODES:
            return ObjectNotFoundError(f"cannot {action} {where}: no such object")
        if exc.code in CREDENTIAL_CODES or (exc.code == "AccessDenied" and credentials_rejected()):
            return StorageError(
                f"cannot {action} {where}: {endpoint} rejected the S3 credentials ({exc.code});"
                " check FACEBLUR_S3_ACCESS_KEY/FACEBLUR_S3_SECRET_KEY"
            )
        if exc.code == "AccessDenied":
            return StorageError(
                f"cannot {action} {where}: access denied by {endpoint} (wrong credentials or no permission)"
            )
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return StorageError(f"cannot {action} {where}: S3 endpoint {endpoint} unreachable ({describe(exc)})")
    if isinstance(exc, OSError):
        return StorageError(f"cannot {action} {where}: {exc.strerror or exc}")
    if isinstance(exc, StorageError):  # already one line, e.g. a refused cloud identity (s3identity)
        return StorageError(f"cannot {action} {where}: {exc}")
    return StorageError(f"cannot {action} {where}: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """A failure in a few words: the S3 code and message, or the exception's type and first line."""
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        text = text.rsplit(": ", 1)[-1]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
