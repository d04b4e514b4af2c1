"""Fail-secure's lost-face decision: which frames a confirmed face that stopped being detected
anonymizes whole, and that a chunk worker seeing only its halo decides exactly as a whole run."""

from __future__ import annotations

from faceblur.job.manifest import Box
from faceblur.temporal.failsecure import FailSecure, LostFaces, horizon_before
from faceblur.temporal.hysteresis import Confirmations
from faceblur.temporal.smoothing import SmoothingParams

PARAMS = SmoothingParams.for_window(10, 5)
SIZE = (320, 240)


def face(frame: int, x: float = 100.0, score: float = 0.9) -> Box:
    """A face box moving a quarter pixel a frame, well inside the frame."""
    left = x + frame / 4
    return Box(x1=left, y1=80, x2=left + 30, y2=120, score=score, detector="centerface")


def lost_frames(
    detections: dict[int, list[Box]], frames: range, hold: int = 50, params: SmoothingParams = PARAMS
) -> list[int]:
    decisions = Confirmations(detections, params.hysteresis, params.iou_threshold)
    lost = LostFaces(FailSecure(params, hold, *SIZE), decisions)
    return [n for n in frames if lost.lost(n)]


def test_a_face_that_is_never_missed_loses_nothing() -> None:
    assert lost_frames({n: [face(n)] for n in range(100)}, range(100)) == []


def test_a_face_missed_longer_than_the_look_back_anonymizes_until_found_again() -> None:
    seen = [n for n in range(100) if not 20 <= n < 50]  # missed in frames 20..49
    frames = lost_frames({n: [face(n)] for n in seen}, range(100))
    # covered by smoothing up to 19 + look_back, and from 50 - look_ahead on: lost in between
    assert frames == list(range(30, 45))


def test_a_face_found_again_elsewhere_does_not_end_the_loss() -> None:
    """Only a box overlapping the lost one as the tracker links boxes (IoU >= 0.3) ends it: a
    neighbour's face must not vouch for a face that may still be showing unseen."""
    detections = {n: [face(n)] for n in range(20)} | {n: [face(n, x=140.0)] for n in range(50, 100)}
    assert lost_frames(detections, range(100)) == list(range(30, 80))


def test_a_face_that_never_comes_back_anonymizes_for_the_hold_only() -> None:
    frames = lost_frames({n: [face(n)] for n in range(20)}, range(200), hold=40)
    assert frames == list(range(30, 70))


def test_a_face_that_left_through_the_edge_is_not_lost() -> None:
    near_edge = {n: [face(n, x=280.0)] for n in range(20)}  # its last box ends 5 px from the edge
    assert lost_frames(near_edge, range(100)) == []


def test_a_short_miss_within_the_look_back_is_smoothing_s_job() -> None:
    seen = [n for n in range(100) if not 20 <= n < 30]
    assert lost_frames({n: [face(n)] for n in seen}, range(100)) == []


def test_an_unconfirmed_detection_loses_nothing() -> None:
    assert lost_frames({10: [face(10, score=0.3)]}, range(100)) == []


def test_a_spot_only_weak_scores_ever_confirmed_loses_nothing() -> None:
    """A still object at the detector's limit (a glass at 10 px) scoring 0.3: the hysteresis
    confirms it where enough neighbours add up, and its confirmations end; no face was lost."""
    assert Confirmations({n: [face(n, score=0.3)] for n in range(20)}, PARAMS.hysteresis, 0.3).confirmed(10)
    assert lost_frames({n: [face(n, score=0.3)] for n in range(20)}, range(100)) == []


def test_a_face_seen_clearly_that_fades_to_weak_scores_is_lost() -> None:
    fading = {n: [face(n, score=0.9 if n < 14 else 0.3)] for n in range(20)}
    assert lost_frames(fading, range(100)) == lost_frames({n: [face(n)] for n in range(20)}, range(100))
    assert lost_frames(fading, range(100)) == list(range(30, 80))


def test_regions_that_account_for_the_face_ignore_its_loss() -> None:
    detections = {n: [face(n)] for n in range(20)}
    decisions = Confirmations(detections, PARAMS.hysteresis, PARAMS.iou_threshold)
    lost = LostFaces(FailSecure(PARAMS, 50, *SIZE), decisions, lambda frame, box: frame >= 40)
    assert [n for n in range(100) if lost.lost(n)] == list(range(30, 40))


def test_a_chunk_worker_with_its_halo_decides_as_a_whole_run() -> None:
    seen = [n for n in range(300) if not (20 <= n < 50 or 100 <= n < 190)]
    everything = {n: [face(n % 150)] for n in seen}
    whole = lost_frames(everything, range(300))
    assert whole  # both misses anonymize frames, the second one across the boundaries below
    before = horizon_before(PARAMS, 50)
    after = PARAMS.horizon_after
    for first, last in [(0, 119), (120, 159), (160, 299)]:
        window = {n: b for n, b in everything.items() if first - before <= n <= last + after}
        assert lost_frames(window, range(first, last + 1)) == [n for n in whole if first <= n <= last]


def test_without_smoothing_any_missed_frame_after_a_face_counts() -> None:
    params = SmoothingParams.for_window(0, 0)
    seen = [n for n in range(40) if n != 20]
    assert lost_frames({n: [face(n)] for n in seen}, range(40), params=params) == [20]
