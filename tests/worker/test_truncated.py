"""A truncated upload (its header intact, its end missing) is diagnosed at split, before any work:
refused by default, naming the object and the choice; with `--truncated-input readable` the frames
that can be read are anonymized, without a gap, and the result says how many."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import pytest
from faceblur.errors import InputTruncatedError
from faceblur.media.probe import probe_with_frames
from faceblur_contract.exits import ExitCode
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary
from test_cli import error_line, run, termination

CONTAINERS = ["mp4", "mkv"]


@pytest.mark.parametrize("container", CONTAINERS)
def test_a_cut_input_is_refused_naming_it_and_the_choice(videos: VideoLibrary, container: str) -> None:
    cut = videos.cut(container)
    with pytest.raises(InputTruncatedError) as info:
        probe_with_frames(cut, display_name=f"s3://media/{cut.name}")
    message = str(info.value)
    assert message.startswith(f"s3://media/{cut.name} is truncated or damaged: ")
    assert "Upload it again complete" in message
    assert "--truncated-input readable" in message
    assert "spec.input.ifTruncated: readable" in message
    assert info.value.exit_code == ExitCode.INPUT_TRUNCATED


@pytest.mark.parametrize("container", CONTAINERS)
def test_the_readable_frames_are_the_inputs_first_frames_without_a_gap(
    videos: VideoLibrary, container: str
) -> None:
    whole = videos.get()
    info, times = probe_with_frames(videos.cut(container), readable=True)
    assert info.truncated is not None
    assert 2 <= info.frame_count < whole.spec.frames // 2
    in_seconds = [float((p - times.pts[0]) * info.time_base_fraction) for p in times.pts]
    expected = [float((p - whole.pts[0]) * whole.time_base) for p in whole.pts[: info.frame_count]]
    assert in_seconds == pytest.approx(expected, abs=0.0011)  # Matroska keeps milliseconds


def test_split_of_a_cut_object_fails_before_any_work(
    s3_server: S3Server, videos: VideoLibrary, tmp_path: Path
) -> None:
    s3_server.make_bucket("cut-input")
    s3_server.client().fput_object("cut-input", "in/cut.mp4", str(videos.cut("mp4")))
    log = tmp_path / "termination"

    result = run(
        "split", "--input", "s3://cut-input/in/cut.mp4", "--job", "s3://cut-input/jobs/j",
        env=s3_server.env(), log=log,
    )  # fmt: skip

    assert result.returncode == ExitCode.INPUT_TRUNCATED
    line = error_line(result, "split")
    assert "s3://cut-input/in/cut.mp4 is truncated or damaged" in line
    assert "faceblur-split-" not in line  # not the pod's scratch copy
    assert "--truncated-input readable" in line
    record = termination(log)
    assert (record["reason"], record["permanent"]) == ("InputTruncated", True)
    written = [o.object_name for o in s3_server.client().list_objects("cut-input", "jobs/", recursive=True)]
    assert written == []


@pytest.mark.parametrize("container", CONTAINERS)
def test_blur_with_readable_anonymizes_the_readable_frames_and_says_how_many(
    videos: VideoLibrary, tmp_path: Path, container: str
) -> None:
    cut = videos.cut(container)
    output = tmp_path / f"out.{container}"
    log = tmp_path / "termination"

    refused = run("blur", str(cut), "-o", str(output), log=log)
    assert refused.returncode == ExitCode.INPUT_TRUNCATED
    assert not output.exists()

    readable = ["--truncated-input", "readable", "--workers", "1"]
    done = run("blur", str(cut), "-o", str(output), *readable, log=log)

    assert done.returncode == 0, done.stderr
    expected, _ = probe_with_frames(cut, readable=True)
    record = json.loads(log.read_text())
    assert record["frames"] == expected.frame_count
    assert record["truncated"] == expected.truncated
    assert f"only the first {expected.frame_count} frames were processed" in " ".join(done.stdout.split())
    with av.open(str(output)) as container_:
        decoded = sum(1 for _ in container_.decode(video=0))
    assert decoded == expected.frame_count
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(output)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert float(shown.stdout) == pytest.approx(expected.duration_s, abs=0.1)
