"""Fixed regions on stored frames: displayed coordinates turned like the test videos' own rotation,
pixel rounding that favours privacy, exact frame times, and the masks applied to real pixels."""

from __future__ import annotations

import numpy as np
import pytest
from faceblur.anonymization.anonymize import FrameMasks, MaskStyle, anonymize_i420, anonymize_i420_masked
from faceblur.anonymization.regions import FrameRegions, kept_on_display, region_map, stored_rect
from faceblur.job.manifest import Box, Chunk, VideoInfo, frame_seconds
from faceblur_contract.enums import MaskShape
from faceblur_contract.regions import Region
from faceblur_testenv.videos import FaceBox, VideoSpec, box_to_coded

DISPLAY = (320, 240)  # displayed width, height of the test videos


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_a_displayed_region_lands_where_the_test_videos_put_displayed_pixels(rotation: int) -> None:
    """testenv's box_to_coded is how the test videos store a displayed box: an independent mapping."""
    spec = VideoSpec(width=DISPLAY[0], height=DISPLAY[1], rotation=rotation)
    stored = (DISPLAY[1], DISPLAY[0]) if rotation in (90, 270) else DISPLAY
    region = Region(left=0.25, top=0.125, width=0.5, height=0.25)
    shown = FaceBox(80.0, 30.0, 240.0, 90.0)
    coded = box_to_coded(spec, shown)
    expected = (round(coded.x1), round(coded.y1), round(coded.x2), round(coded.y2))
    assert stored_rect(region, rotation, *stored, outward=True) == expected
    assert stored_rect(region, rotation, *stored, outward=False) == expected


def test_blur_regions_round_outwards_and_keep_regions_inwards() -> None:
    region = Region(left=0.1, top=0.1, width=0.2, height=0.2)  # 33.3 .. 100 of a 333-pixel frame
    assert stored_rect(region, 0, 333, 333, outward=True) == (33, 33, 100, 100)
    assert stored_rect(region, 0, 333, 333, outward=False) == (34, 34, 99, 99)
    assert stored_rect(Region(0.5, 0.5, 0.001, 0.001), 0, 100, 100, outward=False) is None


def test_regions_apply_in_their_time_range_only() -> None:
    regions = region_map(
        keep=[Region(0, 0, 0.5, 1, start=1.0, end=2.0)], blur=[Region(0.5, 0, 0.5, 1, end=1.0)],
        rotation=0, width=100, height=100,
    )  # fmt: skip
    assert regions is not None
    assert regions.at(0.0) == FrameRegions(keep=(), blur=((50, 0, 100, 100),))
    assert regions.at(1.0) == FrameRegions(keep=((0, 0, 50, 100),), blur=())
    assert regions.at(1.999) == FrameRegions(keep=((0, 0, 50, 100),), blur=())
    assert regions.at(2.0) == FrameRegions()
    assert region_map((), (), 90, 100, 100) is None


def test_keep_and_blur_regions_account_for_faces() -> None:
    at = FrameRegions(keep=((0, 0, 50, 50),), blur=((50, 50, 100, 100),))
    face = Box(x1=10, y1=10, x2=30, y2=30, score=0.9, detector="centerface")
    assert at.keeps(face)
    assert not at.hides(face)
    half_in = face.model_copy(update={"x1": 40.0, "x2": 70.0, "y1": 60.0, "y2": 90.0})
    assert not at.keeps(half_in)
    assert not at.hides(half_in)
    inside = face.model_copy(update={"x1": 60.0, "x2": 90.0, "y1": 60.0, "y2": 90.0})
    assert at.hides(inside)


def test_frame_times_are_the_manifests_exact_timestamps() -> None:
    video = VideoInfo(
        container="mp4", codec="h264", width=320, height=240, time_base="1/1000", frame_count=5,
        duration_s=0.2, start_pts=100,
    )  # fmt: skip
    chunk = Chunk(
        index=1, first_frame=2, last_frame=4, first_pts=180, last_pts=300, key="c",
        pts_runs=[(180, 40, 2), (300, 0, 1)],
    )  # fmt: skip
    assert frame_seconds(chunk, video) == [0.08, 0.12, 0.2]
    old = chunk.model_copy(update={"pts_runs": []})
    rated = video.model_copy(update={"avg_frame_rate": "25/1"})
    assert frame_seconds(old, rated) == pytest.approx([0.08, 0.12, 0.16])


def _frame(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)


def test_without_regions_the_masked_path_anonymizes_exactly_as_before() -> None:
    planes = _frame(64, 48)
    boxes = [(10.0, 10.0, 30.0, 30.0), (20.0, 5.0, 50.0, 40.0)]
    for shape in MaskShape:
        style = MaskStyle(shape=shape)
        before, after = planes.copy(), planes.copy()
        anonymize_i420(before, 64, 48, boxes, style, full_range=False)
        anonymize_i420_masked(after, 64, 48, boxes, style, FrameMasks(), full_range=False)
        assert np.array_equal(before, after)


def test_keep_regions_are_left_as_decoded_and_blur_regions_always_anonymized() -> None:
    planes = _frame(64, 48)
    out = planes.copy()
    masks = FrameMasks(keep=((0, 0, 32, 48),), blur=((40, 0, 64, 16),))
    anonymize_i420_masked(out, 64, 48, [(8.0, 8.0, 56.0, 40.0)], MaskStyle(), masks, full_range=False)
    luma, original = out[:48], planes[:48]
    assert np.array_equal(luma[:, :32], original[:, :32])  # the face mask's left half is kept
    assert not np.array_equal(luma[16:40, 34:40], original[16:40, 34:40])  # its right half is not
    assert luma[:16, 40:].std() < original[:16, 40:].std() / 4  # the blur region is blurred


def test_the_whole_frame_is_anonymized_except_keep_regions() -> None:
    planes = _frame(64, 48)
    out = planes.copy()
    anonymize_i420_masked(out, 64, 48, [], MaskStyle(), FrameMasks(whole=True, keep=((0, 0, 16, 16),)), False)
    luma, original = out[:48], planes[:48]
    assert np.array_equal(luma[:16, :16], original[:16, :16])
    assert luma[16:, 16:].std() < original[16:, 16:].std() / 4


def test_the_verification_pass_reads_keep_regions_on_upright_frames() -> None:
    kept = [Region(0.5, 0, 0.5, 0.5, start=1.0)]
    assert kept_on_display(kept, 1.0, (200, 100), (120, 10, 160, 40))
    assert not kept_on_display(kept, 0.5, (200, 100), (120, 10, 160, 40))  # before its start
    assert not kept_on_display(kept, 1.0, (200, 100), (60, 10, 120, 40))  # centre outside
