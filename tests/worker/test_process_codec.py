"""Chunk decoding (whole, head, tail after a seek) and the processed-chunk encoder."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from faceblur.errors import InvalidInputError
from faceblur.media.codec import (
    ChunkEncoder,
    decode_frames,
    decode_tail,
    frame_from_bgr,
    frame_with_drawing,
    i420_planes,
    stream_facts,
    to_bgr,
)

pytestmark = pytest.mark.media  # every test makes its clips with ffmpeg


def make_clip(path: Path, frames: int, gop: int | None, extra: list[str] | None = None) -> Path:
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25,trim=end_frame={frames}"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", *(extra or [])]
    if gop is not None:
        command += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    subprocess.run([*command, str(path)], check=True)
    return path


def ffprobe_stream(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    stream: dict[str, object] = json.loads(out.stdout)["streams"][0]
    return stream


@pytest.mark.parametrize(("gop", "count"), [(5, 10), (5, 1), (None, 10), (12, 30), (5, 40)])
def test_tail_equals_the_end_of_a_full_decode(tmp_path: Path, gop: int | None, count: int) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 40, gop)
    full = list(decode_frames(clip))
    tail = decode_tail(clip, count, total=40)
    assert [f.pts for f in tail] == [f.pts for f in full[-count:]]
    assert all((to_bgr(a) == to_bgr(b)).all() for a, b in zip(tail, full[-count:], strict=True))


def test_head_stops_early(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 20, 5)
    assert [f.pts for f in decode_frames(clip, limit=3)] == [f.pts for f in list(decode_frames(clip))[:3]]


def test_frames_are_shrunk_on_request(tmp_path: Path) -> None:
    frame = next(decode_frames(make_clip(tmp_path / "clip.mp4", 2, None)))
    assert to_bgr(frame).shape == (120, 160, 3)
    assert to_bgr(frame, (64, 32)).shape == (32, 64, 3)


def test_encoder_keeps_timestamps_and_colour_tags(tmp_path: Path) -> None:
    tags = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
    clip = make_clip(tmp_path / "clip.mp4", 12, 4, tags)
    facts = stream_facts(clip)
    assert (facts.width, facts.height, facts.frame_rate) == (160, 120, Fraction(25))
    source = list(decode_frames(clip))
    out = tmp_path / "out.mkv"
    with ChunkEncoder(out, facts, crf=18, preset="ultrafast") as encoder:
        for frame in source:
            encoder.encode(frame)
    assert encoder.frames == 12
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = list(container.decode(stream))
        seconds = [float(f.pts * stream.time_base) for f in decoded]
    assert seconds == pytest.approx([float(f.pts * f.time_base) for f in source], abs=1e-3)
    assert decoded[0].format.name == "yuv420p"
    probed = ffprobe_stream(out)
    assert (probed["color_space"], probed["color_primaries"], probed["color_transfer"]) == ("bt709",) * 3


def test_bgr_round_trip_keeps_pixels(tmp_path: Path) -> None:
    frame = next(decode_frames(make_clip(tmp_path / "clip.mp4", 1, None)))
    image = to_bgr(frame)
    back = frame_from_bgr(image, frame)
    assert back.format.name == "yuv420p"
    assert back.pts == frame.pts
    assert np.abs(to_bgr(back).astype(int) - image).mean() < 2


def test_leaving_with_an_error_does_not_finish_the_file(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 8, None)
    out = tmp_path / "out.mkv"

    def encode_then_fail() -> None:
        with ChunkEncoder(out, stream_facts(clip), 18, "veryfast") as encoder:
            for frame in decode_frames(clip):
                encoder.encode(frame)
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        encode_then_fail()
    if out.exists():  # PyAV opens the file with the first packet
        with av.open(str(out)) as container:  # the frames x264 still held were never flushed
            assert len(list(container.decode(video=0))) < 8


def test_unreadable_chunk_is_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InvalidInputError, match=r"bad\.mp4"):
        list(decode_frames(bad))
    with pytest.raises(InvalidInputError, match=r"bad\.mp4"):
        stream_facts(bad)


def test_drawing_on_a_frame_keeps_every_other_sample(tmp_path: Path) -> None:
    tags = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
    frame = next(decode_frames(make_clip(tmp_path / "clip.mp4", 1, None, tags)))

    def paint(image: np.ndarray) -> None:
        image[40:50, 60:100] = (0, 0, 255)

    drawn = frame_with_drawing(frame, paint)
    before, after = i420_planes(frame), i420_planes(drawn)
    luma_changed = before[:120] != after[:120]
    assert luma_changed[40:50, 60:100].any()
    luma_changed[40:50, 60:100] = False
    assert not luma_changed.any()  # outside the painted pixels, the decoded samples exactly
    chroma_changed = (before[120:] != after[120:]).reshape(2, 60, 80)  # U, V: the painted 2x2 blocks only
    chroma_changed[:, 20:25, 30:50] = False
    assert not chroma_changed.any()
    assert (drawn.color_range, drawn.colorspace) == (frame.color_range, frame.colorspace)
    assert drawn.pts == frame.pts
    assert np.abs(to_bgr(drawn)[42:48, 62:98].astype(int) - (0, 0, 255)).max() < 40
    assert frame_with_drawing(frame, lambda image: None) is frame
