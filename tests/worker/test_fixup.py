"""Verify and fix: a face the main pass leaves sharp and the residual check finds comes out anonymized
in every frame it shows in, with real faces, real CenterFace and real encoding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from faceblur.job.blur import blur
from faceblur_contract.options import DetectorSpec, ProcessOptions, VerifyOptions
from faceblur_contract.records import VerificationReport
from faceblur_testenv.measure import decode_bgr, sharpness
from faceblur_testenv.videos import FaceVideo, Scene, VideoLibrary, VideoSpec

GROUP = VideoSpec(scene=Scene.GROUP, width=848, height=480, frames=40)
# One of the six faces scores 0.81-0.85 at full scale, the others 0.87 and more: at --thresh 0.85
# without smoothing the main pass leaves it sharp in most frames; the check (0.68) finds it.
ONE_FACE_LEFT = ProcessOptions(detectors=(DetectorSpec(threshold=0.85),), look_back=0, look_ahead=0)
MISSED = 4  # that face's index among the scene's known faces
NO_FIX = VerifyOptions(fix=False)


@pytest.fixture(scope="module")
def group(videos: VideoLibrary) -> FaceVideo:
    return videos.get(GROUP)


def _run(video: FaceVideo, tmp: Path, name: str, options: ProcessOptions, chunks: int) -> Path:
    output = tmp / f"{name}.mp4"
    blur(str(video.path), str(output), options, workers=1, chunks=chunks, workdir=tmp / f"{name}.job")
    return output


@pytest.mark.parametrize("chunks", [1, 2])
def test_a_face_the_main_pass_leaves_sharp_is_anonymized_in_every_frame_it_shows_in(
    group: FaceVideo, tmp_path: Path, chunks: int
) -> None:
    unfixed = _run(group, tmp_path, "unfixed", replace(ONE_FACE_LEFT, verification=NO_FIX), chunks)
    sharp = _sharp_frames(group, unfixed)
    assert len(sharp[MISSED]) > group.frame_count // 2, "the main pass must leave the face sharp"
    report = VerificationReport.model_validate_json((tmp_path / "unfixed.verify.json").read_bytes())
    assert report.fixed == []
    assert report.summary.unfixed_frames == report.summary.residual_frames > 0

    fixed = _run(group, tmp_path, "fixed", ONE_FACE_LEFT, chunks)
    after = _sharp_frames(group, fixed)
    assert MISSED not in after  # sharp in no frame: checked or not
    report = VerificationReport.model_validate_json((tmp_path / "fixed.verify.json").read_bytes())
    # The face scores about the main pass's threshold: the frames it is left sharp in may differ
    # a little from run to run, what the report says of them may not.
    assert report.summary.residual_frames >= 2
    assert all(b.fixed for f in report.residual for b in f.boxes)
    assert report.summary.unfixed_frames == 0
    fixed_frames = [f.frame for f in report.fixed]
    assert len(fixed_frames) > group.frame_count // 2  # checked or not
    assert {f.frame for f in report.residual} <= set(fixed_frames)
    assert report.summary.fixed_frames == len(fixed_frames)
    assert all(f.found_at and f.boxes for f in report.fixed)


def _sharp_frames(video: FaceVideo, output: Path) -> dict[int, list[int]]:
    """Per known face (its index), the frames of `output` where it kept a quarter of its sharpness."""
    before, after = decode_bgr(video.path), decode_bgr(output)
    found: dict[int, list[int]] = {}
    for number, (original, anonymized) in enumerate(zip(before, after, strict=True)):
        for index, face in enumerate(video.faces[number]):
            x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
            region = (slice(y1, y2), slice(x1, x2))
            if sharpness(anonymized[region]) >= 0.25 * sharpness(original[region]):
                found.setdefault(index, []).append(number)
    return found
