"""A detector shared by several pipelines: their calls run as common batches, each caller gets its
own frames' boxes, no batch exceeds its limit, and a failure reaches every caller of its batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
from detect_support import astronaut_bgr, insightface_image
from faceblur.detectors import Boxes, Image, build_detector
from faceblur.detectors.batching import Batching, BatchingDetector, close_union, shared_union
from faceblur_contract.enums import ExecutionProvider
from faceblur_contract.options import DetectorSpec


class Recorded:
    """A real CenterFace that notes the size of each batch it is given."""

    def __init__(self) -> None:
        self.detector = build_detector([DetectorSpec(scale=(320, 256))], ExecutionProvider.CPU, 1).detectors[
            0
        ]
        self.sizes: list[int] = []

    @property
    def name(self) -> str:
        return self.detector.name

    def __call__(self, frames: Sequence[Image]) -> list[Boxes]:
        self.sizes.append(len(frames))
        return self.detector(frames)


def frames() -> list[Image]:
    t1 = insightface_image("t1.jpg")
    astronaut = astronaut_bgr()
    return [t1, astronaut, np.ascontiguousarray(t1[:, ::-1]), np.ascontiguousarray(astronaut[::-1])]


def call_at_once(detector: BatchingDetector, calls: list[list[Image]]) -> list[list[Boxes]]:
    start = threading.Barrier(len(calls))
    results: list[list[Boxes]] = [[] for _ in calls]

    def caller(i: int) -> None:
        start.wait()
        results[i] = detector(calls[i])

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_callers_share_batches_and_each_gets_its_own_frames_boxes() -> None:
    inner = Recorded()
    images = frames()
    alone = [inner.detector([image])[0] for image in images]
    shared = BatchingDetector(inner, Batching(max_batch=6, max_wait_s=0.5, runners=1))
    calls = [[images[i % 4], images[(i + 1) % 4]] for i in range(6)]  # 12 frames in calls of 2
    try:
        results = call_at_once(shared, calls)
    finally:
        shared.close()
    for call, found in zip(calls, results, strict=True):
        for image, boxes in zip(call, found, strict=True):
            expected = alone[next(i for i, known in enumerate(images) if known is image)]
            assert boxes.shape == expected.shape
            np.testing.assert_allclose(boxes, expected, atol=0.05)
    assert sorted(inner.sizes) == [6, 6]  # two inferences of three callers each, never more than 6
    assert shared.inferences == 2


def test_a_call_larger_than_the_batch_runs_alone_and_nothing_is_added_to_it() -> None:
    inner = Recorded()
    shared = BatchingDetector(inner, Batching(max_batch=2, max_wait_s=0.2, runners=1))
    try:
        results = call_at_once(shared, [frames()[:3], frames()[:1]])
    finally:
        shared.close()
    assert [len(found) for found in results] == [3, 1]
    assert sorted(inner.sizes) == [1, 3]


def test_a_failed_inference_fails_every_caller_of_its_batch_and_the_detector_goes_on() -> None:
    inner = Recorded()
    shared = BatchingDetector(inner, Batching(max_batch=4, max_wait_s=0.5, runners=1))
    broken = np.zeros((0, 0, 3), np.uint8)  # no pixels: OpenCV refuses to resize it
    try:
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def caller(images: list[Image]) -> None:
            start.wait()
            try:
                shared(images)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=caller, args=([image],)) for image in (broken, frames()[0])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(errors) == 2  # both were in the batch that failed
        assert len(shared([frames()[1]])[0]) == 1  # the astronaut, in a later batch
    finally:
        shared.close()


def test_a_shared_union_keeps_the_detectors_names_and_sizes_and_refuses_calls_once_closed() -> None:
    union = build_detector([DetectorSpec(scale=(320, 256))], ExecutionProvider.CPU, 1)
    shared = shared_union(union, Batching(max_batch=1, max_wait_s=0.0, runners=2))
    assert shared.names == union.names
    assert shared.stretch_sizes(1280, 720) == union.stretch_sizes(1280, 720) == [(320, 256)]
    close_union(shared)
    with pytest.raises(RuntimeError, match="closed"):
        shared([frames()[0]])


def test_a_pixel_bound_splits_large_frames_into_smaller_inferences() -> None:
    inner = Recorded()
    t1 = frames()[0]  # the bound: two such frames a call
    shared = BatchingDetector(
        inner, Batching(max_batch=8, max_wait_s=0.2, runners=1, max_pixels=2 * t1.shape[0] * t1.shape[1])
    )
    try:
        results = call_at_once(shared, [[t1, t1, t1], [t1]])
    finally:
        shared.close()
    assert [len(found) for found in results] == [3, 1]
    assert max(inner.sizes) <= 2
    assert sum(inner.sizes) == 4
