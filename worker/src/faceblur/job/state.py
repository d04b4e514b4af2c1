"""Reading a job's manifest and what is done: the one loader and the one definition of a finished
chunk that process, compose, blur and the CLI share.

A job without a manifest has not been split (or the --job URL is wrong): no retry can change
that, so it is invalid input (exit code 3), named by the URL or path a person can open.
"""

from __future__ import annotations

from pydantic import ValidationError

from faceblur.errors import InvalidInputError, ObjectNotFoundError
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Chunk, Manifest
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


def chunks_at(manifest: Manifest, indexes: list[int]) -> list[Chunk]:
    """The manifest's chunks at `indexes`, in that order; an index the job lacks is invalid input."""
    known = {chunk.index: chunk for chunk in manifest.chunks}
    for index in indexes:
        if index not in known:
            raise InvalidInputError(
                f"chunk index {index} out of range: the job has {len(known)} chunks"
                f" (indexes 0-{len(known) - 1})"
            )
    return [known[index] for index in indexes]


def unfinished_indexes(
    store: ObjectStore, layout: JobLayout, manifest: Manifest, *, debug: bool = False
) -> list[int]:
    """Indexes not finished: no result, no processed chunk, or (with `debug`) no debug chunk.

    process publishes the result last, so a result without its chunk means someone removed the
    chunk; either way the index is not done."""
    unfinished = []
    for chunk in manifest.chunks:
        keys = [layout.chunk_result(chunk.index), layout.processed(chunk.index)]
        if debug:
            keys.append(layout.debug_chunk(chunk.index))
        if not all(store.exists(key) for key in keys):
            unfinished.append(chunk.index)
    return unfinished
