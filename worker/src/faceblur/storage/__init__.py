"""Object stores: one protocol (`base`), a local folder (`local`), an S3 bucket (`s3`, with its
settings, error classification and retries) and the URLs that name them (`urls`).

Publishing is atomic in both stores: an S3 PUT (or multipart upload) makes the object visible
only once complete, and the local store writes a temporary file then renames it, so a crashed
writer never leaves a partial object under a final key.
"""

from __future__ import annotations

from faceblur.storage.base import ObjectStore
from faceblur.storage.local import LocalStore
from faceblur.storage.retries import RetryPolicy
from faceblur.storage.s3 import S3Store
from faceblur.storage.s3errors import is_transient
from faceblur.storage.s3settings import S3Settings, parse_endpoint
from faceblur.storage.urls import Location, check_destination, open_store, parse_url

__all__ = [
    "LocalStore",
    "Location",
    "ObjectStore",
    "RetryPolicy",
    "S3Settings",
    "S3Store",
    "check_destination",
    "is_transient",
    "open_store",
    "parse_endpoint",
    "parse_url",
]
