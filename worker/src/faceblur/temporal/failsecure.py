"""Fail-secure: which frames are anonymized whole because a face may be showing unseen.

Smoothing covers a confirmed face for `look_back` frames after its last detection. When a face's
track ends and nothing takes over, either the face left, or it is still there and the detector
misses it (turned, occluded, blurred by motion). Fail-secure assumes the second: a frame is *lost*
when a confirmed box seen more than `look_back` but at most `look_back + hold` frames earlier has
no continuation, i.e. no confirmed box of any detector overlapping it (IoU >= the tracker's
threshold) in any frame from just after it up to `look_ahead` frames after this one (those would
cover this frame by smoothing). Boxes that came within half their size of the frame's edge are
taken to have left the picture, and boxes that keep or blur regions account for are ignored. So
are boxes of a spot never seen with confidence (no box over it within the hysteresis's reach
scored the start score): weak detections the hysteresis confirmed only by adding up neighbours'
scores flicker in and out of confirmation on a still object (a glass on a table at 10 pixels), and
their end is not a face gone unseen; a face that was once seen clearly and then fades still counts.

Everything depends on confirmed detections from `look_back + hold` frames before a frame to
`look_ahead` after it, so a chunk worker whose halo reaches `horizon_before` frames back decides
exactly as a whole-video run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faceblur.job.manifest import Box
from faceblur.temporal.hysteresis import Confirmations
from faceblur.temporal.smoothing import SmoothingParams
from faceblur.temporal.tracking import iou

EDGE_MARGIN = 0.5  # of a box's own width/height: a face this close to the edge may have left

Ignored = Callable[[int, Box], bool]  # (frame being decided, lost box): regions account for it


@dataclass(frozen=True)
class FailSecure:
    params: SmoothingParams
    hold: int  # most frames one lost face anonymizes whole
    width: int  # stored frame size
    height: int

    def __post_init__(self) -> None:
        if self.hold < 1:
            raise ValueError("the fail-secure hold must be at least one frame")

    @property
    def horizon_before(self) -> int:
        """Frames before a frame whose detections the decision needs (confirmations included)."""
        return max(
            self.params.horizon_before, self.params.look_back + self.hold + self.params.hysteresis.reach
        )

    def at_edge(self, box: Box) -> bool:
        w, h = (box.x2 - box.x1) * EDGE_MARGIN, (box.y2 - box.y1) * EDGE_MARGIN
        return box.x1 - w <= 0 or box.y1 - h <= 0 or box.x2 + w >= self.width or box.y2 + h >= self.height


def horizon_before(params: SmoothingParams, hold: int) -> int:
    """Frames before a frame whose detections the decision needs (their confirmations included)."""
    return max(params.horizon_before, params.look_back + hold + params.hysteresis.reach)


class LostFaces:
    """The lost-face decisions of one run over increasing frames, sharing its `Confirmations`.

    Each confirmed box's continuation is searched once, incrementally, never past the frames whose
    confirmations are final (`look_ahead` after the frame decided), so answers stay exact."""

    def __init__(self, rule: FailSecure, decisions: Confirmations, ignored: Ignored | None = None) -> None:
        self._rule = rule
        self._decisions = decisions
        self._ignored = ignored
        self._searched: dict[tuple[int, int], tuple[int, bool]] = {}  # (frame, box) -> (up to, found)

    def lost(self, frame: int) -> list[Box]:
        """The boxes lost at `frame` (empty: nothing lost): their faces may show unseen there."""
        params = self._rule.params
        limit = frame + params.look_ahead
        found = []
        for seen in range(frame - params.look_back - self._rule.hold, frame - params.look_back):
            for position, box in enumerate(self._decisions.confirmed(seen)):
                if self._rule.at_edge(box) or not self._decisions.seen_confidently(seen, box):
                    continue
                if self._continued(seen, position, box, limit):
                    continue
                if self._ignored is None or not self._ignored(frame, box):
                    found.append(box)
        return found

    def _continued(self, seen: int, position: int, box: Box, limit: int) -> bool:
        """Whether a confirmed box overlapping `box` appears in frames seen+1 .. limit."""
        upto, found = self._searched.get((seen, position), (seen, False))
        if found or upto >= limit:
            return found
        threshold = self._rule.params.iou_threshold
        for other in range(upto + 1, limit + 1):
            if any(iou(box, candidate) >= threshold for candidate in self._decisions.confirmed(other)):
                self._searched[(seen, position)] = (other, True)
                return True
        self._searched[(seen, position)] = (limit, False)
        return False
