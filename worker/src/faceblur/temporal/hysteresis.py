"""Which detections are likely faces: hysteresis before smoothing extends anything.

Smoothing covers a face for frames around each detection, so a single spurious box
(a bush, a cat's head scoring 0.2-0.3) would become a blob lasting half a second. A
detection is therefore *confirmed* before it is carried or interpolated, and an
unconfirmed one is not blurred at all, only drawn in the debug video:

* a detection is *strong* when it scores at least `start_score` (it starts a track on its
  own), or when the boxes overlapping it in the `span` frames either side add up, with
  its own score, to `support` or more: a face seen weakly in most frames of a short window;
* a detection is confirmed when it is strong, or when it continues a strong one: a box
  of the same detector overlapping it in one of those frames is strong. So the weak
  first and last detections of a track are kept as well as its middle.

Everything is decided from detections within `reach` (2 * span) frames of the box, so a
chunk worker that sees a few more frames of its neighbours decides exactly as a
whole-video run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from faceblur.job.manifest import Box, BoxSource
from faceblur.temporal.tracking import Detections, best_overlap, iou

START_SCORE = 0.5  # the known faces of the tests score above 0.8; false ones seen so far up to 0.32
SUPPORT_SPAN = 4  # frames either side that can support a weak detection: a 9-frame window
SUPPORT = 2.0  # e.g. a face scoring 0.25 in 8 of those 9 frames, or 0.4 in 5


@dataclass(frozen=True)
class Hysteresis:
    start_score: float = START_SCORE
    span: int = SUPPORT_SPAN
    support: float = SUPPORT

    def __post_init__(self) -> None:
        if self.span < 0:
            raise ValueError("the support span must not be negative")

    @classmethod
    def every_detection(cls) -> Hysteresis:
        """Confirms every detection on its own, looking at no other frame."""
        return cls(start_score=0.0, span=0)

    @property
    def reach(self) -> int:
        """Frames either side of a detection that its confirmation depends on."""
        return 2 * self.span


class Confirmations:
    """The decisions for one set of detections, each frame decided once and remembered.

    A frame's answer depends on the detections within `rule.reach` frames of it, so it
    stays right while those no longer change: a chunk worker asks about a frame only once
    its whole horizon is detected, and keeps one of these for the chunk (each box is then
    compared with its neighbours once, not once per frame that looks at it).
    """

    def __init__(self, detections: Detections, rule: Hysteresis, iou_threshold: float) -> None:
        self._detections = detections
        self._rule = rule
        self._iou = iou_threshold
        self._strong: dict[int, list[bool]] = {}
        self._confirmed: dict[int, list[bool]] = {}

    @property
    def rule(self) -> Hysteresis:
        return self._rule

    def confirmed(self, frame: int) -> list[Box]:
        """The frame's detections that may be blurred, carried and linked."""
        boxes = self._detections.get(frame, ())
        return [b for b, ok in zip(boxes, self._confirmations(frame), strict=True) if ok]

    def rejected(self, frame: int) -> list[Box]:
        """The frame's other detections, marked so: never blurred, drawn in the debug video."""
        boxes = self._detections.get(frame, ())
        return [
            b.model_copy(update={"source": BoxSource.REJECTED})
            for b, ok in zip(boxes, self._confirmations(frame), strict=True)
            if not ok
        ]

    def seen_confidently(self, frame: int, box: Box) -> bool:
        """Whether the box, or one of the same detector overlapping it within `rule.reach` frames,
        scored `start_score`: a face seen with confidence, not a spot only its neighbours' weak
        scores added up to (a glass or a stack of chips at the detector's size limit)."""
        if box.score >= self._rule.start_score:
            return True
        for other in range(frame - self._rule.reach, frame + self._rule.reach + 1):
            for candidate in self._detections.get(other, ()):
                if (
                    candidate.score >= self._rule.start_score
                    and candidate.detector == box.detector
                    and iou(box, candidate) >= self._iou
                ):
                    return True
        return False

    def _confirmations(self, frame: int) -> list[bool]:
        """Per box: strong itself, or overlapping a strong box of the same detector within the span."""
        known = self._confirmed.get(frame)
        if known is None:
            known = [
                strong or self._continues_strong(frame, box)
                for box, strong in zip(self._detections.get(frame, ()), self._strengths(frame), strict=True)
            ]
            self._confirmed[frame] = known
        return known

    def _continues_strong(self, frame: int, box: Box) -> bool:
        for other in _neighbours(frame, self._rule.span):
            candidates = self._detections.get(other, ())
            if not candidates:
                continue
            for candidate, strong in zip(candidates, self._strengths(other), strict=True):
                if strong and candidate.detector == box.detector and iou(box, candidate) >= self._iou:
                    return True
        return False

    def _strengths(self, frame: int) -> list[bool]:
        """Per box: confident, or supported: its score plus the best overlap's in each frame of the span."""
        known = self._strong.get(frame)
        if known is None:
            known = [self._is_strong(frame, box) for box in self._detections.get(frame, ())]
            self._strong[frame] = known
        return known

    def _is_strong(self, frame: int, box: Box) -> bool:
        if box.score >= self._rule.start_score:
            return True
        total = box.score
        for other in _neighbours(frame, self._rule.span):
            match = best_overlap(box, self._detections.get(other, ()), self._iou)
            if match is not None:
                total += match.score
        return total >= self._rule.support


def _neighbours(frame: int, span: int) -> Iterator[int]:
    for other in range(frame - span, frame + span + 1):
        if other != frame:
            yield other


def confirmed(
    detections: Detections, frames: Iterable[int], rule: Hysteresis, iou_threshold: float
) -> dict[int, list[Box]]:
    """The confirmed detections of `frames` (frames without any are omitted)."""
    decisions = Confirmations(detections, rule, iou_threshold)
    return {frame: boxes for frame in frames if (boxes := decisions.confirmed(frame))}


def rejected(detections: Detections, frame: int, rule: Hysteresis, iou_threshold: float) -> list[Box]:
    """The frame's detections that are not confirmed, marked so: never blurred, drawn in the debug video."""
    return Confirmations(detections, rule, iou_threshold).rejected(frame)
