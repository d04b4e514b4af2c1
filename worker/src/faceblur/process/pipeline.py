"""Run stages in threads connected by bounded channels, so decode, inference and encode overlap.

The heavy parts (PyAV, onnxruntime, OpenCV) release the GIL, so threads are enough.
A failure in any stage aborts every channel: no stage is left blocked on a full or
empty queue, and the first error is raised in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
A = TypeVar("A")

_POLL_S = 0.1


class AbortedError(Exception):
    """Another stage failed: this one stops quietly."""


class _End:
    pass


_END = _End()


class Channel(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, capacity))
        self._aborted = threading.Event()

    def put(self, item: T) -> None:
        self._put(item)

    def close(self) -> None:
        self._put(_END)

    def abort(self) -> None:
        self._aborted.set()

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def _put(self, item: T | _End) -> None:
        while True:
            if self._aborted.is_set():
                raise AbortedError
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[T]:
        while True:
            if self._aborted.is_set():
                raise AbortedError
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if isinstance(item, _End):
                return
            yield item


def run_stages(stages: Sequence[Callable[[], None]], channels: Sequence[Channel[Any]]) -> None:
    """Run all stages but the last in threads and the last in this thread; re-raise the first error."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def guarded(stage: Callable[[], None]) -> None:
        try:
            stage()
        except AbortedError:
            pass
        except BaseException as exc:
            with lock:
                errors.append(exc)
            for channel in channels:
                channel.abort()

    threads = [threading.Thread(target=guarded, args=(stage,), daemon=True) for stage in stages[:-1]]
    for thread in threads:
        thread.start()
    try:
        guarded(stages[-1])
    finally:
        if errors:
            for channel in channels:
                channel.abort()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """The items in lists of `size` (the last one shorter), as they come: a channel is read as it fills."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ordered_lanes(
    source: Iterator[A], work: Callable[[A], Iterable[T]], out: Channel[T], count: int
) -> list[Callable[[], None]]:
    """`count` stages that take items from `source` in turn, run `work` on each in parallel and
    put its results into `out` in the source's order; the last lane to finish closes `out`.

    Parallel calls of a single-threaded library (one onnxruntime call per lane) keep every
    core busy without the barrier of a parallel loop inside each call.
    """
    take = threading.Lock()
    turn = threading.Condition()
    state = {"taken": 0, "delivered": 0, "running": max(1, count)}

    def lane() -> None:
        finished = False
        try:
            while True:
                with take:
                    item = next(source, _END)
                    number = state["taken"]
                    state["taken"] += 1
                if isinstance(item, _End):
                    finished = True
                    return
                results = list(work(item))
                with turn:
                    while state["delivered"] != number:
                        if out.aborted:
                            raise AbortedError
                        turn.wait(_POLL_S)
                for result in results:
                    out.put(result)
                with turn:
                    state["delivered"] += 1
                    turn.notify_all()
        finally:
            with turn:
                state["running"] -= 1
                last = state["running"] == 0
            if last and finished:
                out.close()

    return [lane for _ in range(max(1, count))]
