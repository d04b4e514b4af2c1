"""Detection framing: how a chunk's frames are shown to the detectors (upright, each at the size a
detector works at), and how the boxes they find map back to the stored pixels. Fail-secure detection
keeps a model's failure from failing the chunk: the frames it could not look at are marked."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np

from faceblur.detectors import Boxes, UnionDetector
from faceblur.job.manifest import Box
from faceblur.media.codec import StreamFacts, to_bgr
from faceblur.media.orientation import boxes_to_stored, normalize_rotation, to_display

log = logging.getLogger(__name__)

DetectImages = dict[tuple[int, int] | None, np.ndarray]  # upright BGR per size (None: full size)


class Framed(Protocol):
    """A frame on its way to the detectors: its number and its images at the detectors' sizes."""

    @property
    def number(self) -> int: ...

    @property
    def detect_images(self) -> Mapping[tuple[int, int] | None, np.ndarray]: ...


@dataclass(frozen=True)
class DetectionView:
    """How frames are shown to the detectors, and how their boxes map back to stored pixels.

    Detectors see frames upright (display orientation), each at the size it works at:
    frames are shrunk straight from the decoder (one cheap conversion, small buffers).
    """

    rotation: int
    stored: tuple[int, int]  # width, height as decoded
    upright: tuple[int, int]  # width, height as displayed
    sizes: tuple[tuple[int, int] | None, ...]  # distinct sizes the detectors want (None: full)

    @classmethod
    def of(cls, facts: StreamFacts, rotation: int, detector: UnionDetector) -> DetectionView:
        turned = normalize_rotation(rotation)
        upright = (facts.height, facts.width) if turned in (90, 270) else (facts.width, facts.height)
        sizes = tuple(dict.fromkeys(detector.stretch_sizes(*upright)))
        return cls(turned, (facts.width, facts.height), upright, sizes)

    def images(self, frame: av.VideoFrame) -> DetectImages:
        images = {}
        for size in self.sizes:
            width, height = size or self.upright
            stored_size = (height, width) if self.rotation in (90, 270) else (width, height)
            images[size] = to_display(to_bgr(frame, stored_size), self.rotation)
        return images

    def detect(self, detector: UnionDetector, batch: Sequence[Framed]) -> list[list[Box]]:
        found = detector.detect_resized([work.detect_images for work in batch], *self.upright)
        return [self._boxes(per_detector) for per_detector in found]

    def _boxes(self, per_detector: Mapping[str, Boxes]) -> list[Box]:
        found = []
        for name, boxes in per_detector.items():
            stored = boxes_to_stored(boxes, self.rotation, *self.stored)
            for x1, y1, x2, y2, score in stored.tolist():
                found.append(Box(x1=x1, y1=y1, x2=x2, y2=y2, score=score, detector=name))
        return found


def detect_fail_secure(
    view: DetectionView, detector: UnionDetector, batch: Sequence[Framed], failed: set[int]
) -> list[list[Box]]:
    """Fail-secure detection: a batch that raises is retried frame by frame, and the frames that
    still raise are marked failed (anonymized whole) instead of failing the chunk."""
    try:
        return view.detect(detector, batch)
    except Exception as exc:  # any failure of the model: it must not leave a face showing
        first, last = batch[0].number, batch[-1].number
        log.warning("detection failed on frames %d-%d (%s): retrying one by one", first, last, exc)
    found: list[list[Box]] = []
    for work in batch:
        try:
            found.extend(view.detect(detector, [work]))
        except Exception as exc:
            log.warning("frame %d: detection failed (%s): anonymized whole (fail-secure)", work.number, exc)
            failed.add(work.number)
            found.append([])
    return found
