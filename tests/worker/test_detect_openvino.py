"""CenterFace through OpenVINO: the same faces as onnxruntime's float32 on real photos, in lanes."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from detect_support import astronaut_bgr, insightface_image, iou
from faceblur.detectors import CenterFaceDetector, build_detector
from faceblur.detectors.models import dynamic_centerface_path
from faceblur.detectors.openvino_session import OPENVINO, OpenVinoSession
from faceblur.errors import ModelError
from faceblur_contract.enums import ExecutionProvider
from faceblur_contract.options import DetectorSpec

SCALE = (960, 540)  # the benchmark's inference size
SCORE_TOLERANCE = 0.05  # bfloat16 against float32


def detector(provider: ExecutionProvider, threads: int | None = 1) -> CenterFaceDetector:
    (found,) = build_detector([DetectorSpec(scale=SCALE)], provider, threads).detectors
    assert isinstance(found, CenterFaceDetector)
    return found


def photos() -> dict[str, np.ndarray]:
    import skimage.data

    people = {"t1": insightface_image("t1.jpg"), "astronaut": astronaut_bgr()}
    empty = {name: getattr(skimage.data, name)() for name in ("coffee", "rocket", "chelsea")}
    return people | {name: cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for name, image in empty.items()}


def test_openvino_finds_what_onnxruntime_finds() -> None:
    reference, compiled = detector(ExecutionProvider.CPU), detector(ExecutionProvider.OPENVINO)
    assert compiled._session.get_providers() == [OPENVINO]
    # bfloat16 moves scores by a few hundredths: a box scoring within that of the threshold (the
    # second look's weak ones) may be kept by one runtime only; every other box by both
    clear = compiled.threshold + SCORE_TOLERANCE
    for name, image in photos().items():
        (expected,), (found,) = reference([image]), compiled([image])
        for boxes, others in ((expected, found), (found, expected)):
            for box in boxes[boxes[:, 4] >= clear]:
                best = max(others, key=lambda other: iou(box, other), default=None)
                assert best is not None, name
                assert iou(box, best) >= 0.9, name
                assert abs(best[4] - box[4]) < SCORE_TOLERANCE, name
    faces = reference([insightface_image("t1.jpg")])[0]
    assert len(faces[faces[:, 4] >= 0.5]) == 6  # the comparison saw faces


def test_lanes_share_one_session_each_with_its_own_requests() -> None:
    compiled = detector(ExecutionProvider.OPENVINO)
    images = [insightface_image("t1.jpg"), astronaut_bgr()] * 3
    expected = [compiled([image])[0] for image in images]
    results: dict[int, np.ndarray] = {}

    def lane(first: int) -> None:
        for i in range(first, len(images), 2):
            results[i] = compiled([images[i]])[0]

    lanes = [threading.Thread(target=lane, args=(first,)) for first in (0, 1)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    for i, boxes in enumerate(expected):
        np.testing.assert_array_equal(results[i], boxes)


@pytest.mark.parametrize("networks", [1, 2])
def test_lanes_at_once_infer_on_networks_of_their_own_up_to_the_limit_and_give_them_back(
    networks: int,
) -> None:
    """A compiled network runs one inference at a time: two lanes at once hold two networks when
    allowed, share one when not; the next chunk's lanes take the same ones, compiling none."""
    session = OpenVinoSession(dynamic_centerface_path(), threads=1, networks=networks)
    shape = (1, 3, 64, 96)
    blob = {"input.1": np.zeros(shape, np.float32)}
    both_inferred = threading.Barrier(2)
    holders: list[int] = []

    def lane() -> None:
        session.run(None, blob)
        both_inferred.wait(timeout=60)  # both hold their networks now
        holders.append(sum(network.holders for network in session._pools[shape]))
        both_inferred.wait(timeout=60)  # and neither has ended before both counted

    def chunk_lanes() -> None:
        lanes = [threading.Thread(target=lane) for _ in range(2)]
        for thread in lanes:
            thread.start()
        for thread in lanes:
            thread.join()

    chunk_lanes()
    first = list(session._pools[shape])
    assert len(first) == networks
    assert holders == [2, 2]
    assert [network.holders for network in first] == [0] * networks  # given back when the lanes ended
    chunk_lanes()
    assert session._pools[shape] == first


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 32, 32), (3, 96, 160)])
def test_any_batch_and_scale_and_the_thread_count_reaches_it(batch: int, height: int, width: int) -> None:
    session = OpenVinoSession(dynamic_centerface_path(), threads=2)
    outputs = session.run(None, {"input.1": np.zeros((batch, 3, height, width), np.float32)})
    assert [o.shape for o in outputs] == [(batch, c, height // 4, width // 4) for c in (1, 2, 2, 10)]
    compiled = session._request((batch, 3, height, width)).get_compiled_model()
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 2


def test_garbage_model_is_a_model_error_naming_it(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match=r"cannot load model .*garbage\.onnx"):
        OpenVinoSession(garbage, threads=1)


def test_a_chunk_through_openvino_covers_the_faces_onnxruntime_covers(tmp_path: Path) -> None:
    """The pipeline end to end (lanes, smoothing, verification) on a real-faces video: the same
    faces covered as with onnxruntime's float32 in every frame, the boxes within bfloat16's error."""
    from detect_support import split_job
    from faceblur_contract.enums import SplitMode
    from faceblur_contract.options import ProcessOptions
    from faceblur_testenv.videos import Scene, VideoLibrary, VideoSpec
    from test_process import all_boxes, box_iou, process_all

    video = VideoLibrary(tmp_path / "videos").get(VideoSpec(scene=Scene.GROUP, frames=30, gop=15))
    covered = {}
    for provider in (ExecutionProvider.CPU, ExecutionProvider.OPENVINO):
        store, layout, manifest = split_job(
            video.path, tmp_path / provider.value, chunk_frames=15, mode=SplitMode.COPY
        )
        process_all(store, layout, manifest, ProcessOptions(batch_size=4, execution_provider=provider))
        covered[provider] = all_boxes(store, layout, manifest)
    reference, compiled = covered[ExecutionProvider.CPU], covered[ExecutionProvider.OPENVINO]
    assert sorted(compiled) == sorted(reference) == list(range(30))
    worst = 0.0
    # Every face, and a stack of poker chips the second look scores 0.5-0.6 at this size, in both;
    # a weak box (0.2-0.4: bfloat16 moves it across the threshold; a 10-px spot at the group's feet
    # scores 0.27-0.33 in float32) may be in one runtime only.
    weak = CenterFaceDetector.default_threshold + 0.2
    for frame in reference:
        for boxes, others in ((reference[frame], compiled[frame]), (compiled[frame], reference[frame])):
            strong = [box for box in boxes if box.score >= weak]
            assert len(strong) >= len(video.faces[frame]), frame
            for box in strong:
                edges = np.array([box.x1, box.y1, box.x2, box.y2])
                other = max(others, key=lambda other: box_iou(edges, other))
                shift = np.abs(edges - [other.x1, other.y1, other.x2, other.y2]).max()
                worst = max(worst, shift / max(box.x2 - box.x1, box.y2 - box.y1, 15))
    # Each edge within a tenth of the box's size (measured: 7.5%, 2-3 pixels of these 26x35 faces),
    # inside the 15% margin the default mask scale (1.3) adds on each side; a box counted as at least
    # 15 pixels, since bfloat16 moves the chips' 10-pixel box by a pixel.
    assert worst < 0.1
