"""Probe reads exact facts of real videos and refuses what cannot be processed."""

from __future__ import annotations

from pathlib import Path

import pytest
from faceblur.errors import InvalidInputError, ObjectNotFoundError
from faceblur.media.probe import is_variable_frame_rate, normalize_rotation, probe, probe_with_frames
from faceblur_testenv.videos import ZERO_FRAME_CONTAINERS, VideoLibrary


def test_cfr_facts(videos: VideoLibrary) -> None:
    video = videos.get(gop=10, audio_streams=2)
    info, times = probe_with_frames(video.path)
    assert info.frame_count == video.frame_count == 50
    assert (info.width, info.height) == (320, 240)
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert not info.variable_frame_rate
    assert info.avg_frame_rate == "25/1"
    assert info.duration_s == pytest.approx(2.0)
    assert info.rotation == 0
    assert (info.color_primaries, info.color_trc, info.color_space, info.color_range) == (
        "bt709",
        "bt709",
        "bt709",
        "tv",
    )
    assert [a.codec for a in info.audio] == ["aac", "aac"]
    assert info.tags["title"] == "faceblur test video"
    assert info.keyframes == 5
    assert times.keyframes == video.keyframes
    assert times.pts == video.pts


def test_vfr_is_detected_and_duration_exact(videos: VideoLibrary) -> None:
    video = videos.get(vfr=True)
    info = probe(video.path)
    assert info.variable_frame_rate
    assert info.frame_count == video.frame_count
    assert info.time_base == "1/1000"
    span = (video.pts[-1] - video.pts[0]) / 1000
    assert span + 0.02 <= info.duration_s <= span + 0.09  # plus the last frame's own duration


def test_rotation_from_display_matrix(videos: VideoLibrary) -> None:
    info = probe(videos.get(rotation=90).path)
    assert info.rotation == 90
    assert (info.width, info.height) == (240, 320)  # coded size, as frames decode
    assert probe(videos.get(rotation=270).path).rotation == 270


def test_refuses_unreadable_file(videos: VideoLibrary) -> None:
    with pytest.raises(InvalidInputError, match=r"cannot read .*corrupt\.mp4"):
        probe(videos.corrupt())
    with pytest.raises(InvalidInputError, match=r"truncated\.mp4"):
        probe(videos.truncated())


def test_refuses_audio_only_file(videos: VideoLibrary) -> None:
    with pytest.raises(InvalidInputError, match=r"has no video stream \(streams: audio aac\)"):
        probe(videos.audio_only())


@pytest.mark.parametrize("container", sorted(ZERO_FRAME_CONTAINERS))
def test_refuses_video_stream_without_frames(videos: VideoLibrary, container: str) -> None:
    path = videos.zero_frames(container)
    with pytest.raises(InvalidInputError) as info:
        probe(path)
    assert str(info.value) == f"{path} has a video stream but no frames"


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_frame_rate_rules() -> None:
    assert not is_variable_frame_rate([0, 33, 67, 100, 133, 167])  # 29.97 fps rounded to ms
    assert is_variable_frame_rate([0, 40, 80, 160, 200])
    assert not is_variable_frame_rate([0])
    assert [normalize_rotation(d) for d in (0, -90, 90, -180, 180, 270, 89.6)] == [
        0,
        270,
        90,
        180,
        180,
        270,
        90,
    ]
