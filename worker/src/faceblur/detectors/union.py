"""Several detectors run on the same frames, each box kept with the name of its detector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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

    def stretch_sizes(self, width: int, height: int) -> list[tuple[int, int] | None]:
        """Per detector, the size it stretches width x height frames to; None: it needs the frame itself.

        A caller can then shrink each frame once, cheaply, straight from the decoder, and
        every detector sees the same pixels whichever detectors it is combined with.
        """
        sizes: list[tuple[int, int] | None] = []
        for detector in self.detectors:
            stretch = getattr(detector, "stretch_size", None)
            sizes.append(stretch(width, height) if stretch is not None else None)
        return sizes

    def detect_resized(
        self, images: Sequence[Mapping[tuple[int, int] | None, Image]], width: int, height: int
    ) -> list[dict[str, Boxes]]:
        """Like detect_each, on frames already resized: `images[i][size]` is frame i at the size
        `stretch_sizes` gave (None: full size, width x height); boxes come back at full size."""
        per_frame: list[dict[str, Boxes]] = [{} for _ in images]
        for detector, size in zip(self.detectors, self.stretch_sizes(width, height), strict=True):
            found = detector([frame_images[size] for frame_images in images])
            factors = np.ones(5, dtype=np.float32)
            if size is not None:
                factors[0:4] = [width / size[0], height / size[1]] * 2
            for result, boxes in zip(per_frame, found, strict=True):
                result[detector.name] = boxes * factors
        return per_frame

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
