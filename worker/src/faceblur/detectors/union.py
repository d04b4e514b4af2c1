"""Several detectors run on the same frames, each box kept with the name of its detector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceblur.detectors.base import Boxes, FaceDetector, Image, empty_boxes


class UnionDetector:
    def __init__(self, detectors: Sequence[FaceDetector]) -> None:
        if not detectors:
            raise ValueError("a union needs at least one detector")
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique, got {names}")
        self.detectors = tuple(detectors)

    @property
    def name(self) -> str:
        return "+".join(d.name for d in self.detectors)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.detectors]

    def detect_each(self, frames: Sequence[Image]) -> list[dict[str, Boxes]]:
        """Per frame: detector name -> its boxes."""
        per_frame: list[dict[str, Boxes]] = [{} for _ in frames]
        for detector in self.detectors:
            for found, boxes in zip(per_frame, detector(frames), strict=True):
                found[detector.name] = boxes
        return per_frame

    def __call__(self, frames: Sequence[Image]) -> list[Boxes]:
        return [
            np.concatenate(list(found.values())) if found else empty_boxes()
            for found in self.detect_each(frames)
        ]
