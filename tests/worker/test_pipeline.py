"""`faceblur blur` end to end on a real face video, from S3 to S3, and resuming a local job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from faceblur.media.probe import probe_with_frames
from faceblur_testenv.measure import decode_bgr, frames_with_a_sharp_face
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary

FACEBLUR = str(Path(sys.executable).parent / "faceblur")
pytestmark = pytest.mark.slow


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FACEBLUR_", "AWS_", "JOB_COMPLETION"))
    }
    environment.update(env or {})
    return subprocess.run([FACEBLUR, *args], capture_output=True, text=True, env=environment, timeout=600)


def assert_faces_hidden_and_rest_kept(video: FaceVideo, output: Path) -> None:
    assert frames_with_a_sharp_face(video, output, max_ratio=0.2) == [], "faces visible"
    before, after = decode_bgr(video.path), decode_bgr(output)
    assert len(after) == len(before) == video.frame_count
    far = (slice(0, 240), slice(260, 320))  # right edge of the astronaut scene: no face there
    for n, (original, blurred) in enumerate(zip(before, after, strict=True)):
        assert cv2.PSNR(original[far], blurred[far]) > 30, f"background changed in frame {n}"


def test_blur_from_s3_to_s3_with_two_workers(
    videos: VideoLibrary, s3_server: S3Server, tmp_path: Path
) -> None:
    video = videos.get(gop=10)
    s3_server.make_bucket("pipeline")
    client = s3_server.client()
    client.fput_object("pipeline", "in/video.mp4", str(video.path))
    log = tmp_path / "termination"
    workdir = tmp_path / "work"
    env = {**s3_server.env(), "FACEBLUR_TERMINATION_LOG": str(log)}
    result = run(
        "blur", "s3://pipeline/in/video.mp4", "-o", "s3://pipeline/out/video.mp4",
        "--workers", "2", "--chunks", "3", "--workdir", str(workdir), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "frames with faces" in result.stdout
    record = json.loads(log.read_text())
    assert record["stage"] == "blur"
    assert record["frames"] == video.frame_count
    assert record["frames_with_faces"] == video.frame_count
    assert not workdir.exists()  # intermediates removed after success

    output = tmp_path / "out.mp4"
    client.fget_object("pipeline", "out/video.mp4", str(output))
    info, times = probe_with_frames(output)
    assert "mp4" in info.container.split(",")  # the default output: MP4, H.264, yuv420p
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert list(times.pts) == list(video.pts)
    assert len(info.audio) == 1
    assert_faces_hidden_and_rest_kept(video, output)


def test_blur_resumes_a_job_and_skips_finished_chunks(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    output = tmp_path / "blurred.mp4"
    workdir = tmp_path / ".blurred.mp4.faceblur"  # the default work folder of this output
    assert run("split", "--input", str(video.path), "--job", str(workdir), "--chunks", "2").returncode == 0
    first = run("process", "--job", str(workdir), "--index", "0")
    assert first.returncode == 0, first.stderr
    done = workdir / "results" / "000000.json"
    stamp = done.stat().st_mtime_ns

    result = run("blur", str(video.path), "-o", str(output), "--workers", "1", "--keep-intermediates")
    assert result.returncode == 0, result.stderr
    assert done.stat().st_mtime_ns == stamp  # chunk 0 was not processed again
    assert (workdir / "results" / "000001.json").exists()
    assert probe_with_frames(output)[0].frame_count == video.frame_count
    assert_faces_hidden_and_rest_kept(video, output)

    other = videos.get(gop=10, frames=30)
    refused = run("blur", str(other.path), "-o", str(output))
    assert refused.returncode == 3
    assert "belongs to another input" in refused.stderr


def test_blur_debug_artefacts_outlive_the_work_folder(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10, frames=30)
    output = tmp_path / "clip.mp4"
    result = run("blur", str(video.path), "-o", str(output), "--workers", "1", "--debug")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".clip.mp4.faceblur").exists()
    debug_video, sheet = tmp_path / "clip.debug.mp4", tmp_path / "clip.contact-sheet.png"
    assert probe_with_frames(debug_video)[0].frame_count == video.frame_count
    image = cv2.imread(str(sheet))
    assert image is not None
    assert image.shape[0] > 100
    assert image.shape[1] > 100
    shown = "".join(line.strip(" │┃") for line in result.stdout.splitlines())
    assert str(debug_video) in shown
