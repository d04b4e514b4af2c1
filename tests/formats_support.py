"""The README's format table as test inputs, and the checks every path's output must pass: the CLI and
the pods' commands (tests/worker/test_formats.py) and FaceBlurJobs on the real node
(tests/node/test_formats_node.py). One copy here (tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from faceblur.job.manifest import VideoInfo
from faceblur.media.probe import probe_with_frames
from faceblur_testenv.videos import Colour, VideoLibrary, VideoSpec

_SUBTITLES = "1\n00:00:00,000 --> 00:00:00,800\nHello\n\n2\n00:00:01,000 --> 00:00:01,800\nWorld\n"


@dataclass(frozen=True)
class Format:
    """One row of the table: a test video, how ffmpeg turns it into this input, and the output's name."""

    name: str
    spec: VideoSpec
    suffix: str  # of the input
    output: str  # of the output the user asks for
    remux: tuple[str, ...] = ("-c", "copy")
    subtitles: bool = False


FORMATS = [
    Format("mp4-h264-aac", VideoSpec(), "mp4", "mp4"),
    Format("mov-h264-pcm", VideoSpec(), "mov", "mov", ("-c:v", "copy", "-c:a", "pcm_s16le")),
    Format(
        "mov-hevc-10bit-hlg",
        VideoSpec(codec="hevc", colour=Colour.HLG_10BIT),
        "mov",
        "mov",
    ),
    Format(
        "mkv-2-audio-subtitles",
        VideoSpec(container="mkv", audio_streams=2),
        "mkv",
        "mkv",
        subtitles=True,
    ),
    Format("webm-vp9-opus", VideoSpec(codec="vp9"), "webm", "mkv", ("-c:v", "copy", "-c:a", "libopus")),
    Format(
        "avi-mjpeg-pcm",
        VideoSpec(),
        "avi",
        "mkv",
        ("-c:v", "mjpeg", "-q:v", "3", "-c:a", "pcm_s16le"),
    ),
    Format("odd-size", VideoSpec(width=319, height=239, codec="vp9"), "mp4", "mp4"),
    Format("one-frame", VideoSpec(frames=1), "mp4", "mp4"),
    Format("variable-frame-rate", VideoSpec(vfr=True), "mp4", "mp4"),
    Format("rotation", VideoSpec(rotation=90), "mp4", "mp4"),
]


def make_input(videos: VideoLibrary, fmt: Format, folder: Path) -> Path:
    source = videos.get(fmt.spec).path
    path = folder / f"{fmt.name}.{fmt.suffix}"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source)]
    if fmt.subtitles:
        subtitles = folder / "subtitles.srt"
        subtitles.write_text(_SUBTITLES)
        command += ["-i", str(subtitles), "-map", "0", "-map", "1", "-c:s", "srt"]
    else:
        command += ["-map", "0"]
    subprocess.run([*command, *fmt.remux, str(path)], check=True, capture_output=True)
    return path


def streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name) for s in container.streams if s.type in ("audio", "subtitle")]


def audio_seconds(path: Path) -> list[float]:
    """Decoded duration of each audio stream: the sound is there, whole."""
    seconds = []
    with av.open(str(path)) as container:
        for stream in container.streams.audio:
            samples = sum(frame.samples for frame in container.decode(stream))
            seconds.append(samples / stream.sample_rate)
            container.seek(0)
    return seconds


def bit_depth(info: VideoInfo) -> int:
    return 10 if info.pix_fmt and "10" in info.pix_fmt else 8


def check_output(source: Path, output: Path) -> None:
    """What comes out is what went in: frames, their times, size, rotation, streams and tags."""
    before, times_before = probe_with_frames(source)
    after, times_after = probe_with_frames(output)
    assert after.frame_count == before.frame_count
    seconds_before = [float((p - times_before.pts[0]) * before.time_base_fraction) for p in times_before.pts]
    seconds_after = [float((p - times_after.pts[0]) * after.time_base_fraction) for p in times_after.pts]
    assert seconds_after == pytest.approx(seconds_before, abs=0.0011)  # Matroska keeps milliseconds
    assert (after.width, after.height, after.rotation) == (before.width, before.height, before.rotation)
    colour = ("color_range", "color_space", "color_primaries", "color_trc")
    assert {k: getattr(after, k) for k in colour} == {k: getattr(before, k) for k in colour}
    assert bit_depth(after) == bit_depth(before)
    assert after.codec == "h264"
    if before.width % 2 or before.height % 2:
        assert "444" in str(after.pix_fmt)  # H.264 4:2:0 has no odd sides
    assert after.tags.get("title") == before.tags.get("title") == "faceblur test video"
    assert streams(output) == streams(source)  # every audio and subtitle stream, as it was
    assert audio_seconds(output) == pytest.approx(audio_seconds(source), abs=0.05)
