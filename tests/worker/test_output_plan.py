"""The output plan: split decides the container and each stream's fate, compose carries it out.

Real inputs made here with ffmpeg from the test videos (PCM in MOV and AVI, Matroska with two audio
tracks, subtitles and chapters), split and composed for real, chunks passed through unchanged.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest
from faceblur.errors import InvalidInputError
from faceblur.job.compose import compose
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Manifest, StreamAction
from faceblur.job.outputplan import plan_output
from faceblur.job.split import split
from faceblur.media.streams import SideStream
from faceblur.storage import LocalStore
from faceblur_testenv.videos import VideoLibrary
from formats_support import audio_seconds
from test_compose import audio_spans, pass_through

_SUBTITLES = "1\n00:00:00,000 --> 00:00:00,800\nHello\n\n2\n00:00:01,000 --> 00:00:01,800\nWorld\n"
_TIMECODE = "01:00:00:00"
_CHAPTERS = (
    ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=Two\n"
)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def streams_of(path: Path) -> list[tuple[str, str]]:
    """Kind and codec of every stream but MP4's chapter track (data)."""
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name) for s in container.streams if s.type != "data"]


def run_job(source: Path, output: Path, root: Path, chunks: int = 2) -> tuple[Manifest, Path]:
    store, layout = LocalStore(root), JobLayout("job")
    manifest = split(str(source), store, layout, chunks=chunks, output_url=str(output))
    pass_through(store, layout, manifest)
    compose(store, layout, str(output))
    return manifest, output


@pytest.fixture(scope="module")
def pcm_mov(videos: VideoLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    video = videos.get(frames=50)
    path = tmp_path_factory.mktemp("inputs") / "camera.mov"
    ffmpeg("-i", str(video.path), "-map", "0", "-c:v", "copy", "-c:a", "pcm_s16le", str(path))
    return path


@pytest.fixture(scope="module")
def mkv_with_subtitles(videos: VideoLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    video = videos.get(frames=50, audio_streams=2)
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "subs.srt").write_text(_SUBTITLES)
    (folder / "chapters.txt").write_text(_CHAPTERS)
    path = folder / "talk.mkv"
    ffmpeg(
        "-i", str(video.path), "-i", str(folder / "subs.srt"), "-i", str(folder / "chapters.txt"),
        "-map", "0", "-map", "1", "-map_chapters", "2", "-c", "copy", "-c:s", "srt",
        "-metadata:s:s:0", "language=eng", str(path),
    )  # fmt: skip
    return path


def test_pcm_mov_to_mov_keeps_the_pcm_as_it_is(pcm_mov: Path, tmp_path: Path) -> None:
    manifest, output = run_job(pcm_mov, tmp_path / "out.mov", tmp_path / "job")
    assert manifest.output is not None
    assert manifest.output.container == "mov"
    assert [s.action for s in manifest.output.streams] == [StreamAction.COPY]
    assert streams_of(output) == [("video", "h264"), ("audio", "pcm_s16le")]
    assert audio_seconds(output) == pytest.approx([2.0], abs=0.03)


def test_pcm_mov_to_mp4_gets_aac_and_says_so(
    pcm_mov: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, output = run_job(pcm_mov, tmp_path / "out.mp4", tmp_path / "job")
    assert manifest.output is not None
    (audio,) = manifest.output.streams
    assert (audio.action, audio.to_codec, audio.bit_rate) == (StreamAction.TRANSCODE, "aac", 128_000)
    assert ".mov or .mkv" in audio.reason
    assert "pcm_s16le -> aac 128 kb/s" in manifest.output.summary()
    assert any("pcm_s16le -> aac" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert streams_of(output) == [("video", "h264"), ("audio", "aac")]
    assert audio_seconds(output) == pytest.approx([2.0], abs=0.05)
    (span,) = audio_spans(output)
    assert span == pytest.approx((0.0, 2.0), abs=0.03)  # in time with the video, priming hidden


def test_pcm_input_to_an_output_without_extension_chooses_mov(pcm_mov: Path, tmp_path: Path) -> None:
    manifest, output = run_job(pcm_mov, tmp_path / "anonymized", tmp_path / "job")
    assert manifest.output is not None
    assert manifest.output.container == "mov"
    assert streams_of(output) == [("video", "h264"), ("audio", "pcm_s16le")]


def test_mjpeg_pcm_avi_comes_out_with_its_audio(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(frames=30)
    avi = tmp_path / "cam.avi"
    ffmpeg("-i", str(video.path), "-map", "0", "-c:v", "mjpeg", "-q:v", "3", "-c:a", "pcm_s16le", str(avi))
    manifest, output = run_job(avi, tmp_path / "cam.mp4", tmp_path / "job")
    assert manifest.output is not None
    assert manifest.output.streams[0].action is StreamAction.TRANSCODE
    assert streams_of(output) == [("video", "h264"), ("audio", "aac")]
    assert audio_seconds(output) == pytest.approx([1.2], abs=0.05)


def test_mkv_keeps_both_audio_tracks_subtitles_and_chapters(mkv_with_subtitles: Path, tmp_path: Path) -> None:
    manifest, output = run_job(mkv_with_subtitles, tmp_path / "out.mkv", tmp_path / "job")
    assert manifest.output is not None
    assert [s.action for s in manifest.output.streams] == [StreamAction.COPY] * 3
    assert streams_of(output) == [
        ("video", "h264"),
        ("audio", "aac"),
        ("audio", "aac"),
        ("subtitle", "srt"),
    ]
    with av.open(str(output)) as container:
        assert container.streams.subtitles[0].metadata.get("language") == "eng"
        assert [c["metadata"].get("title") for c in container.chapters()] == ["One", "Two"]
        texts = [
            bytes(p).decode(errors="replace")
            for p in container.demux(container.streams.subtitles[0])
            if p.size
        ]
    assert texts == ["Hello", "World"]


def subtitle_texts(path: Path) -> list[tuple[float, str]]:
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        return [
            (round(float(p.pts * p.time_base), 3), bytes(p).decode(errors="replace"))
            for p in container.demux(stream)
            if p.size and p.pts is not None
        ]


def test_srt_subtitles_go_into_mp4_as_mov_text_and_back_into_mkv(
    mkv_with_subtitles: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, output = run_job(mkv_with_subtitles, tmp_path / "out.mp4", tmp_path / "job")
    assert manifest.output is not None
    subtitle = manifest.output.streams[2]
    assert (subtitle.action, subtitle.to_codec) == (StreamAction.TRANSCODE, "mov_text")
    assert any("srt -> mov_text" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert streams_of(output) == [
        ("video", "h264"),
        ("audio", "aac"),
        ("audio", "aac"),
        ("subtitle", "mov_text"),
    ]
    texts = subtitle_texts(output)
    assert [t for _, t in texts if t.strip("\x00\x02")]
    assert [s for s, _ in texts][:1] == [0.0]
    with av.open(str(output)) as container:  # MP4 holds chapters
        assert [c["metadata"].get("title") for c in container.chapters()] == ["One", "Two"]
    # MP4's mov_text (which Matroska cannot hold) travels through a job as subrip, and comes out whole
    again, _ = run_job(output, tmp_path / "again.mp4", tmp_path / "job2")
    assert again.output is not None
    assert again.output.streams[2].action is StreamAction.COPY
    assert not again.output.dropped  # MP4's chapter track is read as chapters, not dropped as data
    assert len(again.output.chapters) == 2
    assert subtitle_texts(tmp_path / "again.mp4") == texts
    run_job(output, tmp_path / "again.mkv", tmp_path / "job3")
    assert [t for _, t in subtitle_texts(tmp_path / "again.mkv")] == ["Hello", "World"]


@pytest.fixture(scope="module")
def timecode_mov(videos: VideoLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera's .mov with a timecode track (tmcd) starting at 01:00:00:00."""
    path = tmp_path_factory.mktemp("inputs") / "timecode.mov"
    ffmpeg(
        "-i", str(videos.get(frames=25).path), "-map", "0", "-c", "copy", "-timecode", _TIMECODE, str(path)
    )
    return path


def timecode_tracks(path: Path) -> list[str]:
    """The start of each timecode track (data streams FFmpeg tags with their timecode)."""
    with av.open(str(path)) as container:
        return [s.metadata.get("timecode", "") for s in container.streams if s.type == "data"]


@pytest.mark.parametrize("suffix", ["mov", "mp4"])
def test_a_timecode_track_is_written_again_in_mov_and_mp4(
    timecode_mov: Path, tmp_path: Path, suffix: str
) -> None:
    manifest, output = run_job(timecode_mov, tmp_path / f"out.{suffix}", tmp_path / "job", chunks=2)
    assert manifest.output is not None
    assert manifest.output.timecode == _TIMECODE
    assert [(s.kind, s.codec, s.action) for s in manifest.output.streams if s.kind == "data"] == [
        ("data", "tmcd", StreamAction.RECREATE)
    ]
    assert f"tmcd recreated ({suffix.upper()} writes it again from its start {_TIMECODE})" in (
        manifest.output.summary()
    )
    assert timecode_tracks(output) == [_TIMECODE]
    assert streams_of(output) == [("video", "h264"), ("audio", "aac")]


def test_a_timecode_is_a_tag_in_mkv_its_track_dropped_with_a_warning(
    timecode_mov: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, output = run_job(timecode_mov, tmp_path / "out.mkv", tmp_path / "job", chunks=1)
    assert manifest.output is not None
    (dropped,) = manifest.output.dropped
    assert (dropped.kind, dropped.codec) == ("data", "tmcd")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"data #{dropped.index} (tmcd) dropped: MKV has no timecode track" in w for w in warnings)
    assert timecode_tracks(output) == []
    with av.open(str(output)) as container:
        assert container.streams.video[0].metadata.get("TIMECODE") == _TIMECODE


def test_a_job_split_for_mkv_and_composed_to_mov_gets_its_timecode_track(
    timecode_mov: Path, tmp_path: Path
) -> None:
    store, layout = LocalStore(tmp_path / "job"), JobLayout("job")
    manifest = split(str(timecode_mov), store, layout, chunks=1, output_url=str(tmp_path / "a.mkv"))
    pass_through(store, layout, manifest)
    compose(store, layout, str(tmp_path / "b.mov"))
    assert timecode_tracks(tmp_path / "b.mov") == [_TIMECODE]


def test_other_data_tracks_are_dropped_with_a_warning(
    videos: VideoLibrary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Data FFmpeg's MOV, MP4 and Matroska muxers take no copy of (MPEG-TS private data here)."""
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 8)
    source = tmp_path / "telemetry.ts"
    ffmpeg(
        "-i", str(videos.get(frames=25).path), "-f", "data", "-i", str(tmp_path / "data.bin"),
        "-map", "0", "-map", "1", "-c", "copy", str(source),
    )  # fmt: skip
    manifest, output = run_job(source, tmp_path / "out.mov", tmp_path / "job", chunks=1)
    assert manifest.output is not None
    (dropped,) = manifest.output.dropped
    assert (dropped.kind, dropped.codec) == ("data", "bin_data")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        f"data #{dropped.index} (bin_data) dropped: data tracks other than a timecode" in w for w in warnings
    )
    assert manifest.output.timecode is None
    assert timecode_tracks(output) == []
    assert streams_of(output) == [("video", "h264"), ("audio", "aac")]


def test_compose_to_another_container_plans_again(pcm_mov: Path, tmp_path: Path) -> None:
    """A job split for .mov and composed to .mp4 (renamed output) transcodes rather than fails."""
    store, layout = LocalStore(tmp_path / "job"), JobLayout("job")
    manifest = split(str(pcm_mov), store, layout, chunks=1, output_url=str(tmp_path / "a.mov"))
    pass_through(store, layout, manifest)
    compose(store, layout, str(tmp_path / "b.mp4"))
    assert streams_of(tmp_path / "b.mp4") == [("video", "h264"), ("audio", "aac")]


def test_an_extension_faceblur_cannot_write_is_refused_at_split(pcm_mov: Path, tmp_path: Path) -> None:
    store, layout = LocalStore(tmp_path / "job"), JobLayout("job")
    with pytest.raises(InvalidInputError, match=r"out\.webm.*\.mp4.*\.mov.*\.mkv"):
        split(str(pcm_mov), store, layout, chunks=1, output_url=str(tmp_path / "out.webm"))
    assert not store.exists(layout.manifest)


def _holds_everything_but_subtitles_in_mp4(container: str, stream: SideStream) -> str | None:
    return "no" if (container, stream.kind) == ("mp4", "subtitle") else None


def test_plan_rules_without_media() -> None:
    """PCM into MP4 is transcoded, a bitmap subtitle MP4 cannot hold is dropped, saying to name the
    output .mov or .mkv; data and extra video tracks are dropped; a free choice holds them all."""
    streams = [
        SideStream(1, "audio", "pcm_s24le", channels=6),
        SideStream(2, "subtitle", "hdmv_pgs_subtitle"),
        SideStream(3, "data", "bin_data"),
        SideStream(4, "video", "h264"),
    ]
    plan = plan_output("s3://b/out.mp4", streams, [], _holds_everything_but_subtitles_in_mp4)
    actions = [(s.index, s.action, s.bit_rate) for s in plan.streams]
    assert actions == [
        (1, StreamAction.TRANSCODE, 512_000),
        (2, StreamAction.DROP, None),
        (3, StreamAction.DROP, None),
        (4, StreamAction.DROP, None),
    ]
    assert "never carried" in plan.streams[3].reason
    assert "name the output .mov or .mkv to keep them" in plan.streams[1].reason
    free = plan_output("s3://b/out", streams, [], _holds_everything_but_subtitles_in_mp4)
    assert free.container == "mov"  # holds PCM and (here) subtitles; MP4 holds neither
    assert [s.action for s in free.streams[:2]] == [StreamAction.COPY, StreamAction.COPY]


def test_a_muxer_refusal_names_the_stream_the_container_and_the_fix(
    videos: VideoLibrary, tmp_path: Path
) -> None:
    """A plan that asks too much of a container (written by hand here: split never plans it) fails
    with the stream and the fix, not with FFmpeg's bare "Invalid argument"."""
    video = videos.get(frames=25)
    source = tmp_path / "u8.mkv"
    ffmpeg("-i", str(video.path), "-map", "0", "-c:v", "copy", "-c:a", "pcm_u8", str(source))
    store, layout = LocalStore(tmp_path / "job"), JobLayout("job")
    manifest = split(str(source), store, layout, chunks=1, output_url=str(tmp_path / "a.mkv"))
    assert manifest.output is not None
    forced = manifest.output.model_copy(update={"container": "mp4"})
    store.put_bytes(layout.manifest, manifest.model_copy(update={"output": forced}).to_json())
    pass_through(store, layout, manifest)
    output = tmp_path / "out.mp4"
    with pytest.raises(InvalidInputError) as failure:
        compose(store, layout, str(output))
    message = str(failure.value)
    assert f"the MP4 output {output}" in message
    assert "audio #1 (pcm_u8)" in message
    assert ".mkv" in message
    assert not output.exists()


def test_an_ffmpeg_failure_while_cutting_names_the_stream_the_time_and_the_fix(pcm_mov: Path) -> None:
    from faceblur.job.split import _read_failure

    failure = av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
    with av.open(str(pcm_mov)) as container:
        packets = container.demux(container.streams.audio[0])
        next(packets)
        packet = next(packets)
        message = _read_failure("s3://media/camera.mov", container.streams.video[0], packet, failure)
    assert message.startswith("cannot cut s3://media/camera.mov: its audio stream #1 (pcm_s16le) fails at 0.")
    assert "(Invalid data found when processing input); check that the file plays to its end" in message
    assert "ffmpeg -i INPUT" in message


def test_a_manifest_from_before_plans_is_planned_at_compose(pcm_mov: Path, tmp_path: Path) -> None:
    """A job split by an older worker (no plan; audio.mka holds every audio stream) still gets the
    plan's treatment: PCM into MP4 is transcoded, not refused."""
    store, layout = LocalStore(tmp_path / "job"), JobLayout("job")
    manifest = split(str(pcm_mov), store, layout, chunks=1, output_url=str(tmp_path / "a.mp4"))
    older = manifest.model_copy(update={"output": None})
    store.put_bytes(layout.manifest, older.to_json())
    pass_through(store, layout, older)
    compose(store, layout, str(tmp_path / "b.mp4"))
    assert streams_of(tmp_path / "b.mp4") == [("video", "h264"), ("audio", "aac")]
