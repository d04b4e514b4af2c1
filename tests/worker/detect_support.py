"""Helpers for DETECT's tests: real face images, a fake-but-real SCRFD graph, chunked jobs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Chunk, Manifest
from faceblur.storage import LocalStore
from faceblur_contract.enums import SplitMode
from onnx import TensorProto, helper

SCRFD_STRIDES = (8, 16, 32)
SCRFD_ANCHORS = 2
SCRFD_BRIGHT_STRIDE = 32  # only this stride reports faces


def iou(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2, ...) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def insightface_image(name: str) -> np.ndarray:
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / name
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def astronaut_bgr() -> np.ndarray:
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def write_scrfd_like_onnx(path: Path) -> Path:
    """An ONNX graph with SCRFD's interface (one input, 9 outputs: 3 strides x score, box, landmarks).

    It "detects" bright squares: the score of each stride-32 cell is the mean of the
    normalised input over that cell, and every cell's box is the cell itself, so a white
    32x32 square aligned to the grid is found exactly where it is. Strides 8 and 16 never fire.
    """
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    outputs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}

    def const(
        name: str, values: list[float] | list[int], dims: list[int], dtype: int = TensorProto.FLOAT
    ) -> str:
        inits.append(helper.make_tensor(name, dtype, dims, values))
        return name

    def per_anchor(name: str, source: str, channels: int) -> str:
        """(1,C,h,w) -> (h*w*anchors, C), cell-major as insightface's anchor centres are."""
        nodes.append(helper.make_node("Transpose", [source], [f"{name}_t"], perm=[0, 2, 3, 1]))
        nodes.append(
            helper.make_node(
                "Reshape",
                [f"{name}_t", const(f"{name}_s1", [-1, 1, channels], [3], TensorProto.INT64)],
                [f"{name}_r"],
            )
        )
        nodes.append(helper.make_node("Concat", [f"{name}_r"] * SCRFD_ANCHORS, [f"{name}_c"], axis=1))
        nodes.append(
            helper.make_node(
                "Reshape", [f"{name}_c", const(f"{name}_s2", [-1, channels], [2], TensorProto.INT64)], [name]
            )
        )
        return name

    for stride in SCRFD_STRIDES:
        s = str(stride)
        nodes.append(
            helper.make_node(
                "AveragePool",
                ["input.1"],
                [f"pool{s}"],
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            )
        )
        nodes.append(helper.make_node("ReduceMean", [f"pool{s}"], [f"mean{s}"], axes=[1], keepdims=1))
        gain, bias = (1.0, 0.0) if stride == SCRFD_BRIGHT_STRIDE else (0.0, -1.0)
        nodes.append(helper.make_node("Mul", [f"mean{s}", const(f"gain{s}", [gain], [1])], [f"gained{s}"]))
        nodes.append(
            helper.make_node("Add", [f"gained{s}", const(f"bias{s}", [bias], [1])], [f"scoremap{s}"])
        )
        nodes.append(helper.make_node("Mul", [f"mean{s}", const(f"zero{s}", [0.0], [1])], [f"zeros{s}"]))
        nodes.append(helper.make_node("Concat", [f"zeros{s}"] * 4, [f"zeros4_{s}"], axis=1))
        # distances (left, top, right, bottom) in strides from the anchor at the cell's top-left corner
        nodes.append(
            helper.make_node(
                "Add", [f"zeros4_{s}", const(f"dist{s}", [0.0, 0.0, 1.0, 1.0], [1, 4, 1, 1])], [f"distmap{s}"]
            )
        )
        nodes.append(helper.make_node("Concat", [f"zeros{s}"] * 10, [f"kpsmap{s}"], axis=1))
        outputs["score"].append(per_anchor(f"score_{s}", f"scoremap{s}", 1))
        outputs["bbox"].append(per_anchor(f"bbox_{s}", f"distmap{s}", 4))
        outputs["kps"].append(per_anchor(f"kps_{s}", f"kpsmap{s}", 10))

    names = outputs["score"] + outputs["bbox"] + outputs["kps"]
    widths = [1] * 3 + [4] * 3 + [10] * 3
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, [f"n_{n}", w])
            for n, w in zip(names, widths, strict=True)
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def split_job(video: Path, root: Path, **split_args: Any) -> tuple[LocalStore, JobLayout, Manifest]:
    """A job folder as `faceblur split` leaves it in a local store at root (split_args go to split)."""
    from faceblur.job.split import split

    store, layout = LocalStore(root), JobLayout("job")
    return store, layout, split(str(video), store, layout, **split_args)


def make_job(source: Path, root: Path, chunk_sizes: list[int]) -> tuple[LocalStore, JobLayout, Manifest]:
    """A job folder as split would leave it: lossless chunks of the given frame counts, and a manifest.

    Chunks are re-encoded losslessly, so every split of a video decodes to the same pixels.
    """
    from faceblur.media.codec import ChunkEncoder, decode_frames, stream_facts
    from faceblur.media.probe import probe

    info = probe(source)
    assert sum(chunk_sizes) == info.frame_count, (chunk_sizes, info.frame_count)
    store = LocalStore(root)
    layout = JobLayout("job")
    facts = stream_facts(source)
    frames = list(decode_frames(source))
    chunks, first = [], 0
    for index, size in enumerate(chunk_sizes):
        part = frames[first : first + size]
        path = root / layout.chunk(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        with ChunkEncoder(path, facts, crf=0, preset="ultrafast") as encoder:
            for frame in part:
                encoder.encode(frame)
        chunks.append(
            Chunk(
                index=index,
                first_frame=first,
                last_frame=first + size - 1,
                first_pts=int(part[0].pts),
                last_pts=int(part[-1].pts),
                key=layout.chunk(index),
            )
        )
        first += size
    manifest = Manifest(input=str(source), split_mode=SplitMode.REENCODE, video=info, chunks=chunks)
    store.put_bytes(layout.manifest, manifest.to_json())
    return store, layout, manifest


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, gop: int = 10) -> Path:
    """Encode BGR frames to an H.264 MP4 (near-lossless), a keyframe every `gop` frames."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "0"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def decode_pts_seconds(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return [float(frame.pts * stream.time_base) for frame in container.decode(stream)]
