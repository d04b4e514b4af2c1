"""Stored versus displayed orientation of rotated videos (phones store portrait video sideways).

Frames are decoded, anonymized and encoded as stored, with the rotation kept as metadata;
only detection needs upright faces. `rotation` is the manifest's: degrees counter-clockwise
that turn a stored frame into the displayed one (0, 90, 180 or 270).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from faceblur.detectors.base import Boxes

_TO_DISPLAY = {
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_CLOCKWISE,
}


def normalize_rotation(rotation: int) -> int:
    turned = rotation % 360
    if turned not in (0, 90, 180, 270):
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    return turned


def to_display(image: npt.NDArray[np.uint8], rotation: int) -> npt.NDArray[np.uint8]:
    turned = normalize_rotation(rotation)
    return image if turned == 0 else np.asarray(cv2.rotate(image, _TO_DISPLAY[turned]), dtype=np.uint8)


def rect_to_stored(
    rect: tuple[float, float, float, float], rotation: int, stored_width: int, stored_height: int
) -> tuple[float, float, float, float]:
    """One displayed-frame rectangle (x1, y1, x2, y2) on the stored frame, in float64 (fixed regions)."""
    x1, y1, x2, y2 = rect
    turned = normalize_rotation(rotation)
    if turned == 90:  # as boxes_to_stored
        return stored_width - y2, x1, stored_width - y1, x2
    if turned == 180:
        return stored_width - x2, stored_height - y2, stored_width - x1, stored_height - y1
    if turned == 270:
        return y1, stored_height - x2, y2, stored_height - x1
    return rect


def boxes_to_stored(boxes: Boxes, rotation: int, stored_width: int, stored_height: int) -> Boxes:
    """Map boxes found on the displayed frame back onto the stored frame."""
    turned = normalize_rotation(rotation)
    if turned == 0 or len(boxes) == 0:
        return boxes
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    if turned == 90:  # displayed (x, y) came from stored (W - y, x)
        corners = (stored_width - y2, x1, stored_width - y1, x2)
    elif turned == 180:
        corners = (stored_width - x2, stored_height - y2, stored_width - x1, stored_height - y1)
    else:  # 270: displayed (x, y) came from stored (y, H - x)
        corners = (y1, stored_height - x2, y2, stored_height - x1)
    mapped = boxes.copy()
    mapped[:, :4] = np.stack(corners, axis=1)
    return mapped
