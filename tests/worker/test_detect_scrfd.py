"""The insightface SCRFD path, end to end, with an SCRFD-shaped ONNX graph generated here.

No SCRFD weights are available offline, so the graph is a stand-in with SCRFD's exact
interface (one input, nine outputs) that "detects" bright 32x32 squares: insightface's
own SCRFD class loads it, decodes its outputs and hands us boxes like a real model would.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from detect_support import astronaut_bgr, split_job, write_scrfd_like_onnx, write_video
from faceblur.detectors import build_detector
from faceblur.errors import ModelError
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import BoxSource, ChunkDetections
from faceblur.process.chunk import process_chunk
from faceblur.storage import LocalStore
from faceblur_contract.enums import DetectorName, ExecutionProvider, SplitMode
from faceblur_contract.options import DetectorSpec, ProcessOptions
from faceblur_contract.records import ChunkResult
from faceblur_testenv.measure import decode_bgr

SQUARE = (256, 32, 288, 64)  # x1, y1, x2, y2: one stride-32 cell of a 320x240 frame
FRAMES = 12


@pytest.fixture(scope="module")
def scrfd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scrfd_like_onnx(tmp_path_factory.mktemp("models") / "scrfd_like.onnx")


def scrfd_spec(model: Path) -> DetectorSpec:
    return DetectorSpec(DetectorName.SCRFD, model=str(model), scale=(320, 240))


@pytest.fixture(scope="module")
def square_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dimmed astronaut (CenterFace finds the face, the square detector nothing) plus a white square."""
    frame = (astronaut_bgr()[::2, ::2][16:256, :] * 0.6).astype(np.uint8)  # 256 -> 240 rows
    frame = np.ascontiguousarray(np.pad(frame, ((0, 0), (0, 64), (0, 0)), constant_values=40))
    x1, y1, x2, y2 = SQUARE
    frame[y1:y2, x1:x2] = 255
    return write_video(tmp_path_factory.mktemp("video") / "square.mp4", [frame] * FRAMES)


def boxes_of(store: LocalStore, layout: JobLayout, index: int) -> ChunkDetections:
    return ChunkDetections.model_validate_json(store.get_bytes(layout.detections(index)))


def test_insightface_loads_the_graph_and_finds_the_square(scrfd_model: Path) -> None:
    detector = build_detector([scrfd_spec(scrfd_model)], ExecutionProvider.AUTO, 1)
    frame = np.full((240, 320, 3), 60, np.uint8)
    x1, y1, x2, y2 = SQUARE
    frame[y1:y2, x1:x2] = 255
    found = detector([frame, np.zeros_like(frame)])
    assert found[0].dtype == np.float32
    np.testing.assert_allclose(found[0][:, :4], [SQUARE], atol=0.01)
    assert found[1].shape == (0, 5)


def test_scrfd_threshold_is_its_own(scrfd_model: Path) -> None:
    detector = build_detector([scrfd_spec(scrfd_model)], ExecutionProvider.CPU, None).detectors[0]
    assert detector.threshold == 0.5  # type: ignore[attr-defined]
    strict = build_detector([replace(scrfd_spec(scrfd_model), threshold=0.999)], ExecutionProvider.CPU, None)
    frame = np.full((240, 320, 3), 60, np.uint8)
    frame[32:64, 256:288] = 250  # score (250 - 127.5) / 128 = 0.957
    assert strict([frame])[0].shape == (0, 5)


def test_scrfd_end_to_end_through_process_chunk(
    scrfd_model: Path, square_video: Path, tmp_path: Path
) -> None:
    store, layout, manifest = split_job(square_video, tmp_path, chunk_frames=6, mode=SplitMode.COPY)
    options = ProcessOptions(detectors=(scrfd_spec(scrfd_model),), batch_size=4)
    for chunk in manifest.chunks:
        result = process_chunk(store, layout, chunk.index, options)
        assert result.detectors == ["scrfd"]
        assert result.detected_faces == chunk.frame_count  # the square, once per frame
        detections = boxes_of(store, layout, chunk.index)
        for boxes in detections.frames.values():
            assert [(b.detector, b.source) for b in boxes] == [("scrfd", BoxSource.DETECTED)]
            assert (boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2) == pytest.approx(SQUARE, abs=0.01)
        source = decode_bgr(tmp_path / chunk.key)
        output = decode_bgr(tmp_path / layout.processed(chunk.index))
        x1, y1, x2, y2 = SQUARE
        for before, after in zip(source, output, strict=True):
            assert (
                after[y1 + 12 : y2 - 12, x1 + 12 : x2 - 12].mean()
                < before[y1 + 12 : y2 - 12, x1 + 12 : x2 - 12].mean() - 40
            )


def test_merge_adds_a_second_detector_to_a_finished_chunk(
    scrfd_model: Path, square_video: Path, tmp_path: Path
) -> None:
    """The recommended flow: a fast model everywhere, then a second model merged in where needed."""
    store, layout, manifest = split_job(
        square_video, tmp_path / "merged", chunk_frames=6, mode=SplitMode.COPY
    )
    first = ProcessOptions(batch_size=4)
    for chunk in manifest.chunks:
        assert process_chunk(store, layout, chunk.index, first).detectors == ["centerface"]
    assert {b.detector for boxes in boxes_of(store, layout, 0).frames.values() for b in boxes} == {
        "centerface"
    }
    second = ProcessOptions(detectors=(scrfd_spec(scrfd_model),), batch_size=4, merge=True)
    merged = [process_chunk(store, layout, chunk.index, second) for chunk in manifest.chunks]
    assert all(r.detectors == ["centerface", "scrfd"] for r in merged)

    # the same as one pass with both detectors
    both = ProcessOptions(detectors=(DetectorSpec(), scrfd_spec(scrfd_model)), batch_size=4)
    store2, layout2, _ = split_job(square_video, tmp_path / "both", chunk_frames=6, mode=SplitMode.COPY)
    for chunk in manifest.chunks:
        process_chunk(store2, layout2, chunk.index, both)
        merged_boxes = boxes_of(store, layout, chunk.index)
        one_pass = boxes_of(store2, layout2, chunk.index)
        assert merged_boxes.frames == one_pass.frames
        for boxes in merged_boxes.frames.values():
            assert sorted(b.detector for b in boxes) == ["centerface", "scrfd"]
        output = decode_bgr(tmp_path / "merged" / layout.processed(chunk.index))
        assert (
            output[0][SQUARE[1] + 12 : SQUARE[3] - 12, SQUARE[0] + 12 : SQUARE[2] - 12].mean() < 230
        )  # white before

    # merging the same detector again replaces its boxes instead of doubling them
    again = process_chunk(store, layout, 0, second)
    assert again.verification is not None
    assert merged[0].verification is not None
    check = merged[0].verification.model_copy(update={"seconds": again.verification.seconds})
    assert again == merged[0].model_copy(update={"seconds": again.seconds, "verification": check})


def test_merge_without_earlier_detections_is_a_normal_run(square_video: Path, tmp_path: Path) -> None:
    store, layout, _manifest = split_job(square_video, tmp_path, chunk_frames=6, mode=SplitMode.COPY)
    result = process_chunk(store, layout, 0, ProcessOptions(merge=True))
    assert result.detectors == ["centerface"]
    assert ChunkResult.model_validate_json(store.get_bytes(layout.chunk_result(0))) == result


def test_not_a_detection_model_is_refused(tmp_path: Path) -> None:
    from faceblur.detectors.models import dynamic_centerface_path

    with pytest.raises(ModelError, match="is not an SCRFD detection model"):
        build_detector(
            [DetectorSpec(DetectorName.SCRFD, model=str(dynamic_centerface_path()))],
            ExecutionProvider.CPU,
            None,
        )
