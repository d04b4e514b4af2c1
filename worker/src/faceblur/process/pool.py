"""Several chunk pipelines in one worker, sharing its detectors (`chunk.Workbench`).

Each pipeline is a thread that takes the next chunk as soon as it finished its last one, so a slow
chunk holds one pipeline while the others keep the shared detector fed. The first failure stops
the pipelines from taking more chunks; those under way finish (their results are published) and
the failure is raised. Which chunks a pipeline may take is the caller's (`Claims`): a fixed list
(the pod's group of chunks), or the chunks it claims through lock files (`--all`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from faceblur_contract.records import ChunkResult

log = logging.getLogger(__name__)


class Claims(Protocol):
    def take(self) -> int | None:
        """The next chunk index this worker now holds, None when none is left."""

    def done(self, index: int) -> None:
        """The chunk is finished (or failed): its claim may go."""


class ListClaims:
    """Chunks given to this worker alone, taken in order."""

    def __init__(self, indexes: Iterable[int]) -> None:
        self._next: Iterator[int] = iter(indexes)
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            return next(self._next, None)

    def done(self, index: int) -> None:
        pass


def run_pipelines(claims: Claims, pipelines: int, work: Callable[[int], ChunkResult]) -> list[ChunkResult]:
    """`work` on every chunk `claims` gives, in `pipelines` threads; results in index order."""
    results: list[ChunkResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def pipeline() -> None:
        while not stop.is_set():
            index = claims.take()
            if index is None:
                return
            try:
                result = work(index)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                stop.set()
                if len(errors) == 1:
                    log.error("chunk %d failed: no further chunk is started", index)
                return
            finally:
                claims.done(index)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=pipeline, name=f"pipeline-{i}") for i in range(max(1, pipelines) - 1)]
    for thread in threads:
        thread.start()
    try:
        pipeline()  # the last pipeline in the caller's thread: a lone one needs no thread
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return sorted(results, key=lambda result: result.index)
