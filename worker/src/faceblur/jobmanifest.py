"""Reading a job's manifest: the one loader that process, compose, blur and the CLI share.

A job without a manifest has not been split (or the --job URL is wrong): no retry can change
that, so it is invalid input (exit code 3), named by the URL or path a person can open.
"""

from __future__ import annotations

from pydantic import ValidationError

from faceblur.errors import InvalidInputError, ObjectNotFoundError
from faceblur.layout import JobLayout
from faceblur.manifest import Manifest
from faceblur.storage import LocalStore, ObjectStore


def object_location(store: ObjectStore, key: str) -> str:
    """A path for local objects, a URL for S3 ones: what a person can open."""
    if isinstance(store, LocalStore):
        return str(store.path(key))
    return f"{store.url.rstrip('/')}/{key}"


def load_manifest(store: ObjectStore, layout: JobLayout) -> Manifest:
    where = object_location(store, layout.manifest)
    try:
        data = store.get_bytes(layout.manifest)
    except ObjectNotFoundError:
        raise InvalidInputError(f"no manifest at {where}: run split first") from None
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidInputError(f"unreadable manifest {where}: {str(exc).splitlines()[0]}") from None
