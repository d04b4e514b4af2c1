"""CPU time per pipeline stage, measured in the thread that does the work (`time.thread_time`).

With the thread plan's single-threaded libraries (faceblur.process.threadplan) decoding, detection
and encoding run in the pipeline's own threads, so these figures are each stage's whole CPU
cost; the difference to the process's CPU time is what ran elsewhere (libraries' own
threads, the interpreter's start). The render stage is the whole
render thread (smoothing, anonymizing, encoding); the benchmark reads them from the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import ParamSpec, TypeVar

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class StageClock:
    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    def timed(self, stage: str, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`call(*args, **kwargs)`, its CPU time in this thread counted to `stage`."""
        started = time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            self.add(stage, time.thread_time() - started)

    def iterate(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """The items, the CPU time spent producing each one counted to `stage`."""
        iterator = iter(items)
        while True:
            started = time.thread_time()
            try:
                item = next(iterator)
            except StopIteration:
                self.add(stage, time.thread_time() - started)
                return
            self.add(stage, time.thread_time() - started)
            yield item

    def seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)

    def text(self) -> str:
        """`stage=seconds` pairs, as the worker logs them ("decode=2.610 detect=21.604")."""
        return " ".join(f"{name}={seconds:.3f}" for name, seconds in self.seconds().items())
