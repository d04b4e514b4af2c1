"""Process every unfinished chunk of a local job, several workers sharing one folder.

Each worker claims an index with a lock file, processes it and moves on; an index whose
result already exists is skipped, so a rerun resumes where a crashed run stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from faceblur_contract.options import ProcessOptions
from faceblur_contract.records import ChunkResult

from faceblur.errors import InvalidInputError
from faceblur.job.layout import JobLayout
from faceblur.job.locks import IndexLocks
from faceblur.job.manifest import Manifest
from faceblur.job.state import unfinished_indexes
from faceblur.storage import LocalStore, ObjectStore

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
ChunkDone = Callable[[ChunkResult], None]


def pending_indexes(store: ObjectStore, layout: JobLayout, manifest: Manifest) -> list[int]:
    """Indexes left to process (faceblur.job.state's definition of a finished chunk)."""
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
    pipelines: int | None = None,
) -> list[ChunkResult]:
    """Claim and process unfinished indexes until none is left to claim, in `pipelines` pipelines
    (None: as many as the worker's budget keeps busy) sharing one detector."""
    from faceblur.process.chunk import process_chunk, workbench  # heavy (onnxruntime): only where needed
    from faceblur.process.pool import run_pipelines

    locks = job_locks(store, layout)
    pending = pending_indexes(store, layout, manifest)
    claims = LockClaims(store, layout, locks, pending)

    def work(index: int) -> ChunkResult:
        result = process_chunk(store, layout, index, options, progress, bench)
        if on_done is not None:
            on_done(result)
        return result

    try:
        with workbench(manifest, options, pipelines, most=max(1, len(pending))) as bench:
            return run_pipelines(claims, bench.pod.pipelines, work)
    finally:
        locks.release_all()


class LockClaims:
    """The pending indexes this worker claims through lock files, one at a time, skipping those
    done or being done by another worker meanwhile."""

    def __init__(self, store: ObjectStore, layout: JobLayout, locks: IndexLocks, pending: list[int]) -> None:
        self._store, self._layout, self._locks = store, layout, locks
        self._pending = iter(pending)
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            for index in self._pending:
                if not self._store.exists(self._layout.chunk_result(index)) and self._locks.claim(index):
                    return index
            return None

    def done(self, index: int) -> None:
        with self._lock:
            self._locks.release(index)
