"""Process every unfinished chunk of a local job, several workers sharing one folder.

Each worker claims an index with a lock file, processes it and moves on; an index whose
result already exists is skipped, so a rerun resumes where a crashed run stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from faceblur.errors import InvalidInputError
from faceblur.jobmanifest import unfinished_indexes
from faceblur.layout import JobLayout
from faceblur.locks import IndexLocks
from faceblur.manifest import ChunkResult, Manifest
from faceblur.options import ProcessOptions
from faceblur.storage import LocalStore, ObjectStore

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
ChunkDone = Callable[[ChunkResult], None]


def pending_indexes(store: ObjectStore, layout: JobLayout, manifest: Manifest) -> list[int]:
    """Indexes left to process (faceblur.jobmanifest's definition of a finished chunk)."""
    return unfinished_indexes(store, layout, manifest)


def job_locks(store: ObjectStore, layout: JobLayout) -> IndexLocks:
    if not isinstance(store, LocalStore):
        raise InvalidInputError("--all shares work through lock files: the job must be a local folder")
    return IndexLocks(lambda index: Path(store.path(layout.lock(index))))


def process_pending(
    store: ObjectStore,
    layout: JobLayout,
    manifest: Manifest,
    options: ProcessOptions,
    progress: Progress | None = None,
    on_done: ChunkDone | None = None,
) -> list[ChunkResult]:
    """Claim and process unfinished indexes one by one until none is left to claim."""
    from faceblur.process import process_chunk  # heavy (onnxruntime): only where chunks are processed

    locks = job_locks(store, layout)
    results = []
    try:
        for index in pending_indexes(store, layout, manifest):
            if store.exists(layout.chunk_result(index)) or not locks.claim(index):
                continue  # done or being done by another worker meanwhile
            try:
                result = process_chunk(store, layout, index, options, progress)
            finally:
                locks.release(index)
            results.append(result)
            if on_done is not None:
                on_done(result)
    finally:
        locks.release_all()
    return results
