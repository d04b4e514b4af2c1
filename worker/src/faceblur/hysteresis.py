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

from faceblur.manifest import Box, BoxSource
from faceblur.tracking import Detections, best_overlap, iou

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

    @property
    def reach(self) -> int:
        """Frames either side of a detection that its confirmation depends on."""
        return 2 * self.span


def is_confirmed(
    detections: Detections, frame: int, box: Box, rule: Hysteresis, iou_threshold: float
) -> bool:
    """Strong itself, or overlapping a strong detection of the same detector within the span."""
    if _is_strong(detections, frame, box, rule, iou_threshold):
        return True
    for other in _neighbours(frame, rule.span):
        for candidate in detections.get(other, ()):
            if (
                candidate.detector == box.detector
                and iou(box, candidate) >= iou_threshold
                and _is_strong(detections, other, candidate, rule, iou_threshold)
            ):
                return True
    return False


def _is_strong(detections: Detections, frame: int, box: Box, rule: Hysteresis, iou_threshold: float) -> bool:
    """Confident, or supported: its score plus the best overlap's score in each frame of the span."""
    if box.score >= rule.start_score:
        return True
    total = box.score
    for other in _neighbours(frame, rule.span):
        match = best_overlap(box, detections.get(other, ()), iou_threshold)
        if match is not None:
            total += match.score
    return total >= rule.support


def _neighbours(frame: int, span: int) -> Iterator[int]:
    for other in range(frame - span, frame + span + 1):
        if other != frame:
            yield other


def confirmed(
    detections: Detections, frames: Iterable[int], rule: Hysteresis, iou_threshold: float
) -> dict[int, list[Box]]:
    """The confirmed detections of `frames` (frames without any are omitted)."""
    kept: dict[int, list[Box]] = {}
    for frame in frames:
        boxes = [
            b for b in detections.get(frame, ()) if is_confirmed(detections, frame, b, rule, iou_threshold)
        ]
        if boxes:
            kept[frame] = boxes
    return kept


def rejected(detections: Detections, frame: int, rule: Hysteresis, iou_threshold: float) -> list[Box]:
    """The frame's detections that are not confirmed, marked so: never blurred, drawn in the debug video."""
    return [
        b.model_copy(update={"source": BoxSource.REJECTED})
        for b in detections.get(frame, ())
        if not is_confirmed(detections, frame, b, rule, iou_threshold)
    ]
