"""Fail-secure where detection itself fails: a real onnxruntime error on some frames anonymizes those
frames whole and the chunk is published; without fail-secure the same error fails the chunk.

The model is the SCRFD-shaped test graph with one more branch that onnxruntime cannot run on frames
holding a bright patch: a Reshape whose target size depends on the picture (7 elements, the input
has thousands), as a model meeting input it was not built for fails on some frames only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from detect_support import write_scrfd_like_onnx, write_video
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import ChunkDetections
from faceblur.job.split import split
from faceblur.process.chunk import process_chunk
from faceblur.storage import LocalStore
from faceblur_contract.enums import DetectorName, SplitMode
from faceblur_contract.options import DetectorSpec, ProcessOptions
from faceblur_testenv.measure import decode_bgr, sharpness
from onnx import TensorProto, helper

BRIGHT = range(12, 15)  # frames with the patch the model fails on
FRAMES = 30


def write_failing_model(path: Path) -> Path:
    model = onnx.load(str(write_scrfd_like_onnx(path.with_name("scrfd_like.onnx"))))
    graph = model.graph
    first = graph.output[0].name  # a score output: the new branch is added to it, so it always runs
    producer = next(node for node in graph.node if first in node.output)
    producer.output[list(producer.output).index(first)] = f"{first}_raw"
    graph.initializer.extend(
        [
            helper.make_tensor("bright_level", TensorProto.FLOAT, [], [0.9]),
            helper.make_tensor("bright_size", TensorProto.INT64, [1], [8]),
            helper.make_tensor("any_size", TensorProto.INT64, [1], [-1]),
            helper.make_tensor("nothing", TensorProto.FLOAT, [], [0.0]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceMax", ["input.1"], ["peak"], keepdims=0),
            helper.make_node("Greater", ["peak", "bright_level"], ["bright"]),
            helper.make_node("Cast", ["bright"], ["bright_int"], to=TensorProto.INT64),
            helper.make_node("Mul", ["bright_int", "bright_size"], ["extra"]),
            helper.make_node("Add", ["extra", "any_size"], ["target"]),  # -1 (any), or 7 on a bright frame
            helper.make_node("Reshape", ["input.1", "target"], ["flat"]),
            helper.make_node("ReduceSum", ["flat"], ["total"], keepdims=0),
            helper.make_node("Mul", ["total", "nothing"], ["zero"]),
            helper.make_node("Add", [f"{first}_raw", "zero"], [first]),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ProcessOptions]:
    root = tmp_path_factory.mktemp("failing")
    rng = np.random.default_rng(3)
    frames = []
    for number in range(FRAMES):
        image = np.clip(rng.normal(128, 25, (240, 320, 3)), 0, 255).astype(np.uint8)  # textured, no face
        if number in BRIGHT:
            image[100:116, 150:166] = 255
        frames.append(image)
    video = write_video(root / "bright.mp4", frames, gop=10)
    detector = DetectorSpec(DetectorName.SCRFD, model=str(write_failing_model(root / "failing.onnx")))
    return video, ProcessOptions(detectors=(detector,), batch_size=4)


def run(video: Path, root: Path, options: ProcessOptions) -> tuple[Path, ChunkDetections]:
    store, layout = LocalStore(root), JobLayout("job")
    split(str(video), store, layout, chunks=1, mode=SplitMode.COPY)
    result = process_chunk(store, layout, 0, options)
    detections = ChunkDetections.model_validate_json(store.get_bytes(layout.detections(0)))
    assert result.whole_frames == len(detections.whole_frames)  # what the operator and summaries count
    return root / layout.processed(0), detections


def test_frames_whose_detection_fails_are_anonymized_whole(
    failing: tuple[Path, ProcessOptions], tmp_path: Path
) -> None:
    video, options = failing
    processed, detections = run(video, tmp_path, replace(options, fail_secure=True))
    assert detections.whole_frames == dict.fromkeys(BRIGHT, "detection failed")
    for number, (before, after) in enumerate(zip(decode_bgr(video), decode_bgr(processed), strict=True)):
        ratio = sharpness(after) / sharpness(before)
        if number in BRIGHT:
            assert ratio < 0.05, f"frame {number} kept its picture ({ratio:.2f})"
        else:
            assert ratio > 0.5, f"frame {number} anonymized ({ratio:.2f})"


def test_without_fail_secure_the_failure_fails_the_chunk(
    failing: tuple[Path, ProcessOptions], tmp_path: Path
) -> None:
    video, options = failing
    with pytest.raises(Exception, match=r"(?i)reshape"):
        run(video, tmp_path, options)
    assert not (tmp_path / JobLayout("job").chunk_result(0)).exists()
