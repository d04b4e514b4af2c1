"""When the fix-up lets held frames go to the encoder: once the check has judged every checked frame
within its reach after them, not once the window is full, so the render thread holds no more frames
than the reach needs and a chunk's end is not encoded all at once after the check has finished."""

from __future__ import annotations

import av
import pytest
from faceblur.anonymization.anonymize import FrameMasks
from faceblur.detectors import UnionDetector, build_detector
from faceblur.job.manifest import Chunk
from faceblur.verify.fixup import CheckResults, FixUp, Held
from faceblur_contract.enums import ExecutionProvider
from faceblur_contract.options import DetectorSpec

EVERY = 10


@pytest.fixture(scope="module")
def tracker() -> UnionDetector:
    return build_detector([DetectorSpec()], ExecutionProvider.CPU, 1)


def _fixup(tracker: UnionDetector, first: int, last: int) -> tuple[FixUp, CheckResults]:
    chunk = Chunk(index=0, first_frame=first, last_frame=last, first_pts=0, last_pts=last - first, key="c0")
    results = CheckResults(lambda: False)
    times = [n / 25 for n in range(chunk.frame_count)]
    return FixUp(chunk, tracker, 0, (32, 32), 1.25, EVERY, times, results), results


def _held(number: int) -> Held:
    frame = av.VideoFrame(32, 32, "yuv420p")
    return Held(number, frame, frame, [], FrameMasks(), [])


def test_a_frame_leaves_once_the_checked_frames_within_its_reach_are_judged(tracker: UnionDetector) -> None:
    fixup, results = _fixup(tracker, 0, 99)
    assert fixup.window.reach == 2 * EVERY
    released: list[int] = []
    for number in range(26):
        if number % EVERY == 0:  # the check judges a frame right after it is handed over
            results.put(number, [])
        released += [held.number for held in fixup.hold(_held(number))]
    # 0-9 wait for frame 20's verdict, 10-19 for frame 30's, not yet judged; the window holds 31
    assert released == list(range(10))
    assert [held.number for held in fixup.held] == list(range(10, 26))


def test_the_frames_after_a_chunks_last_checked_frame_wait_only_for_its_verdict(
    tracker: UnionDetector,
) -> None:
    fixup, results = _fixup(tracker, 100, 149)  # checked: 100, 110, ..., 140
    released: list[int] = []
    for number in range(100, 150):
        if number % EVERY == 0:
            results.put(number, [])
        released += [held.number for held in fixup.hold(_held(number))]
    assert released == list(range(100, 150))  # before the check has finished, none left held
    results.finish()
    assert list(fixup.flush()) == []


def test_a_chunk_without_a_checked_frame_holds_nothing(tracker: UnionDetector) -> None:
    fixup, _ = _fixup(tracker, 101, 109)
    assert [h.number for n in range(101, 110) for h in fixup.hold(_held(n))] == list(range(101, 110))
