"""An odd frame size comes out of `faceblur blur` as it went in: every frame, at its size, with its
timestamps, faces hidden. H.264 crops 4:2:0 only by whole chroma samples (2 pixels), so the output is
4:4:4 (High 4:4:4 Predictive); the input is VP9, which codes odd sizes in 4:2:0 as screen recorders
and browsers write them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from faceblur.media.probe import probe_with_frames
from faceblur_testenv.measure import frames_with_a_sharp_face
from faceblur_testenv.videos import VideoLibrary, VideoSpec

FACEBLUR = str(Path(sys.executable).parent / "faceblur")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(VideoSpec(width=319, height=239, frames=12, gop=4, codec="vp9"), id="copied-chunks"),
        pytest.param(VideoSpec(width=319, height=239, frames=12, codec="vp9", vfr=True), id="re-encoded-vfr"),
    ],
)
def test_odd_width_and_height_are_kept(videos: VideoLibrary, tmp_path: Path, spec: VideoSpec) -> None:
    video = videos.get(spec)
    output = tmp_path / "out.mp4"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FACEBLUR_", "AWS_"))}
    command = [FACEBLUR, "blur", str(video.path), "-o", str(output), "--workers", "1", "--chunks", "3", "-v"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "H.264 yuv444p (High 4:4:4 Predictive" in result.stderr
    source, _ = probe_with_frames(video.path)
    info, times = probe_with_frames(output)
    assert (info.width, info.height) == (source.width, source.height) == (319, 239)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv444p")  # 8 bits in, 8 bits out
    assert info.frame_count == video.frame_count
    assert info.time_base_fraction == video.time_base
    assert list(times.pts) == list(video.pts)
    assert frames_with_a_sharp_face(video, output, max_ratio=0.2) == [], "faces visible"
