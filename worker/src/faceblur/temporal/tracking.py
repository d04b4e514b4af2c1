"""A simple IoU tracker: links a face's boxes across frames and fills short gaps between them.

Links are decided locally, so a chunk worker that sees only a window of frames links
exactly as a run over the whole video would: box `a` in frame f and box `b` in frame
f' > f are linked when f' is the first frame after f (within `max_gap` missing frames)
holding a box of the same detector that overlaps `a` (IoU >= threshold), `b` is the
best such box there, and, looking back from `b`, f is the first frame with an
overlapping box and `a` the best one in it (mutual nearest neighbours). Everything a
link depends on lies between f and f'.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from faceblur.job.manifest import Box, BoxSource

Detections = Mapping[int, Sequence[Box]]  # frame number -> boxes detected in that frame
CARRY_SPREAD = 0.05  # a lone carried box grows by this share of its size on each side, a frame


def iou(a: Box, b: Box) -> float:
    inter_w = min(a.x2, b.x2) - max(a.x1, b.x1)
    inter_h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


def best_overlap(box: Box, candidates: Sequence[Box], threshold: float) -> Box | None:
    """The candidate of the same detector overlapping `box` most, if any reaches the threshold."""
    best, best_iou = None, threshold
    for candidate in candidates:
        if candidate.detector != box.detector:
            continue
        overlap = iou(box, candidate)
        if overlap >= best_iou:
            best, best_iou = candidate, overlap
    return best


def _nearest_match(
    detections: Detections, frame: int, box: Box, frames: range, threshold: float
) -> tuple[int, Box] | None:
    for other in frames:
        match = best_overlap(box, detections.get(other, ()), threshold)
        if match is not None:
            return other, match
    return None


def next_match(
    detections: Detections, frame: int, box: Box, max_gap: int, threshold: float
) -> tuple[int, Box] | None:
    return _nearest_match(detections, frame, box, range(frame + 1, frame + max_gap + 2), threshold)


def previous_match(
    detections: Detections, frame: int, box: Box, max_gap: int, threshold: float
) -> tuple[int, Box] | None:
    return _nearest_match(detections, frame, box, range(frame - 1, frame - max_gap - 2, -1), threshold)


def forward_link(
    detections: Detections, frame: int, box: Box, max_gap: int, threshold: float
) -> tuple[int, Box] | None:
    """The next box of this face's track, if the link is mutual (see the module doc)."""
    found = next_match(detections, frame, box, max_gap, threshold)
    if found is None:
        return None
    back = previous_match(detections, found[0], found[1], max_gap, threshold)
    if back is None or back[0] != frame or back[1] is not box:
        return None
    return found


def interpolate(first: Box, first_frame: int, last: Box, last_frame: int, frame: int) -> Box:
    """The box linearly between two linked boxes, at a frame strictly between them."""
    t = (frame - first_frame) / (last_frame - first_frame)
    return Box(
        x1=first.x1 + (last.x1 - first.x1) * t,
        y1=first.y1 + (last.y1 - first.y1) * t,
        x2=first.x2 + (last.x2 - first.x2) * t,
        y2=first.y2 + (last.y2 - first.y2) * t,
        score=min(first.score, last.score),
        detector=first.detector,
        source=BoxSource.INTERPOLATED,
    )


def interpolated_boxes(detections: Detections, frame: int, max_gap: int, threshold: float) -> Iterator[Box]:
    """Boxes of tracks that pass through `frame` without a detection in it."""
    for earlier in range(frame - 1, frame - max_gap - 2, -1):
        for box in detections.get(earlier, ()):
            link = forward_link(detections, earlier, box, max_gap, threshold)
            if link is not None and link[0] > frame:
                yield interpolate(box, earlier, link[1], link[0], frame)


def _centre(box: Box) -> tuple[float, float]:
    return (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2


def track_end(
    detections: Detections, frame: int, box: Box, span: int, max_gap: int, threshold: float, later: bool
) -> tuple[int, Box] | None:
    """The box of this face's track furthest from `frame` within `span` frames (before it, or
    `later` after it), following mutual links; None where the track has no other box there."""
    start, end = frame, None
    while True:
        link = forward_link(detections, frame, box, max_gap, threshold) if later else None
        if not later:
            found = previous_match(detections, frame, box, max_gap, threshold)
            ahead = forward_link(detections, *found, max_gap, threshold) if found is not None else None
            link = found if ahead is not None and ahead[1] is box else None
        if link is None or abs(link[0] - start) > span:
            return end
        end = link
        frame, box = link


def carried(
    detections: Detections, source: int, box: Box, frame: int, span: int, max_gap: int, threshold: float
) -> Box:
    """`box` of frame `source` moved to `frame` as its track moved over the `span` frames before
    (carried later) or after (carried earlier) it, by at most the distance it moved there: a face
    walking out of view takes its box along instead of leaving it on the background. A box whose
    track has no other box stays where it was, and a box carried before its track's first detection
    follows the motion seen after it; both grow by CARRY_SPREAD of their size on each side for every
    frame carried: which way a lone box's face went is unknown (a small face walking past a fixed
    camera moves 10-20 % of its height a frame), and a face not yet detected is faint or turned, so
    its track's later motion says little of its earlier path (a face not quite under its box is left
    partly sharp). A box carried after its track's last detection does not grow: its face most often
    walked out of view or behind something, and a growing box would blur the background it left."""
    later = frame < source  # carried to an earlier frame: the motion is the one after it
    end = track_end(detections, source, box, span, max_gap, threshold, later)
    dx = dy = 0.0
    if end is not None:
        (ex, ey), (bx, by) = _centre(end[1]), _centre(box)
        # no further than the motion was seen: one jittery link is not extrapolated ten frames
        step = max(-1.0, (frame - source) / (end[0] - source))
        dx, dy = (ex - bx) * step, (ey - by) * step
    spread = CARRY_SPREAD * abs(frame - source) if end is None or later else 0.0
    sx, sy = spread * (box.x2 - box.x1), spread * (box.y2 - box.y1)
    return box.model_copy(
        update={
            "x1": box.x1 + dx - sx,
            "y1": box.y1 + dy - sy,
            "x2": box.x2 + dx + sx,
            "y2": box.y2 + dy + sy,
            "source": BoxSource.CARRIED,
        }
    )
