"""One detector shared by several chunk pipelines: their calls are queued and run together.

A GPU runs a batch of 32 frames in little more time than a batch of 8, so the frames of all the
pod's pipelines go into each inference: the oldest call is taken with the calls queued behind it
while the batch stays within `max_batch` frames (waiting up to `max_wait_s` for more), they run as
one call of the wrapped detector and each caller gets its own frames' boxes. `runners` inferences
run at once: on a GPU two (one batch on the device while the next is prepared), so the device
memory held is at most `runners` batches of `max_batch` frames and `max_pixels` pixels (a detector
at the frame's own size gets fewer frames a call); on a CPU as many as the pipelines' lanes, each
call alone (`max_batch` 1: a CPU gains nothing from larger batches, and each pipeline's batches
stay the ones it would run alone).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from faceblur.detectors.base import Boxes, FaceDetector, Image
from faceblur.detectors.union import UnionDetector
from faceblur.process.threadplan import Batching

__all__ = ["Batching", "BatchingDetector", "close_union", "shared_union"]


@dataclass
class _Call:
    frames: Sequence[Image]
    result: Future[list[Boxes]] = field(default_factory=Future)


class BatchingDetector:
    """A `FaceDetector` whose calls, from any number of threads, are batched together.

    No thread of its own: a caller finding no batch being gathered and fewer than `runners`
    inferences under way gathers the oldest calls (its own or others') and runs them, while the
    other callers wait for their boxes. The inference's CPU time is then the caller's, so each
    pipeline's stage clock (`time.thread_time`) counts the detection it ran."""

    def __init__(self, inner: FaceDetector, batching: Batching) -> None:
        if batching.max_batch < 1 or batching.runners < 1 or batching.max_wait_s < 0:
            raise ValueError(f"invalid batching {batching}")
        self.inner = inner
        self.batching = batching
        self._calls: collections.deque[_Call] = collections.deque()
        self._ready = threading.Condition()
        self._closed = False
        self._gathering = False  # one caller gathers at a time: the next batch fills meanwhile
        self._running = 0  # inferences under way
        self.inferences = 0  # calls of the wrapped detector, for the benchmarks

    @property
    def name(self) -> str:
        return self.inner.name

    def stretch_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The wrapped detector's (`UnionDetector.stretch_sizes`); None where it needs whole frames."""
        stretch = getattr(self.inner, "stretch_size", None)
        return stretch(width, height) if stretch is not None else None

    def __call__(self, frames: Sequence[Image]) -> list[Boxes]:
        if not frames:
            return []
        call = _Call(frames)
        with self._ready:
            if self._closed:
                raise RuntimeError(f"the shared detector {self.name} is closed")
            self._calls.append(call)
            self._ready.notify_all()
        while True:
            with self._ready:
                while not call.result.done() and not self._may_lead():
                    self._ready.wait()
                if call.result.done():
                    return call.result.result()
                self._gathering = True
                try:
                    taken = self._gather()
                finally:
                    self._gathering = False
                self._running += 1
                self._ready.notify_all()  # another caller may gather the next batch
            try:
                self._infer(taken)
            finally:
                with self._ready:
                    self._running -= 1
                    self._ready.notify_all()

    def close(self) -> None:
        """Refuse further calls (a workbench's detectors end with it)."""
        with self._ready:
            self._closed = True

    def _may_lead(self) -> bool:
        return bool(self._calls) and not self._gathering and self._running < self.batching.runners

    def _gather(self) -> list[_Call]:
        """The oldest call and those queued behind it within the batch's limits, waiting up to
        `max_wait_s` for more (the condition's lock is held, and released while waiting)."""
        limit, max_pixels = self.batching.max_batch, self.batching.max_pixels or 0
        taken = [self._calls.popleft()]
        frames, pixels = len(taken[0].frames), _pixels(taken[0].frames)
        deadline = time.monotonic() + self.batching.max_wait_s
        while frames < limit:
            if self._calls:
                more = self._calls[0]
                if frames + len(more.frames) > limit or (
                    max_pixels and pixels + _pixels(more.frames) > max_pixels
                ):
                    break
                taken.append(self._calls.popleft())
                frames, pixels = frames + len(more.frames), pixels + _pixels(more.frames)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._ready.wait(left)
        return taken

    def _parts(self, frames: list[Image]) -> list[list[Image]]:
        """`frames` in inferences of at most `max_pixels` (at least a frame each)."""
        limit = self.batching.max_pixels
        if not limit:
            return [frames]
        parts: list[list[Image]] = [[]]
        pixels = 0
        for frame in frames:
            size = frame.shape[0] * frame.shape[1]
            if parts[-1] and pixels + size > limit:
                parts.append([])
                pixels = 0
            parts[-1].append(frame)
            pixels += size
        return parts

    def _infer(self, taken: list[_Call]) -> None:
        frames = [frame for call in taken for frame in call.frames]
        try:
            found = [boxes for part in self._parts(frames) for boxes in self.inner(part)]
        except BaseException as exc:  # every caller of the batch gets the failure
            for call in taken:
                call.result.set_exception(exc)
            return
        with self._ready:
            self.inferences += 1
        start = 0
        for call in taken:
            call.result.set_result(found[start : start + len(call.frames)])
            start += len(call.frames)


def _pixels(frames: Sequence[Image]) -> int:
    return sum(frame.shape[0] * frame.shape[1] for frame in frames)


def shared_union(union: UnionDetector, batching: Batching) -> UnionDetector:
    """`union` with each of its detectors batched across callers (each model gathers its own batches)."""
    return UnionDetector([BatchingDetector(detector, batching) for detector in union.detectors])


def close_union(union: UnionDetector) -> None:
    for detector in union.detectors:
        if isinstance(detector, BatchingDetector):
            detector.close()
