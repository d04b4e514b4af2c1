"""Compose real chunks: every frame with its original timestamp, audio, rotation, atomic publishing.

Processed chunks are made here with the worker's own chunk encoder (faceblur.media.codec), frames
passed through unchanged, so these tests check compose alone; the whole pipeline with
real detection is tested in test_pipeline.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from faceblur.errors import InvalidInputError, ObjectNotFoundError
from faceblur.job.compose import compose
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Manifest
from faceblur.job.split import split
from faceblur.media.codec import ChunkEncoder, decode_frames, stream_facts
from faceblur.media.probe import probe_with_frames
from faceblur.storage import LocalStore, ObjectStore, S3Settings, S3Store
from faceblur_contract.records import ChunkResult
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary


def pass_through(store: ObjectStore, layout: JobLayout, manifest: Manifest, debug: bool = False) -> None:
    """Stand-in for process: re-encode each chunk unchanged in the processed-chunk format."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for chunk in manifest.chunks:
            source = tmp / f"{chunk.index}.mp4"
            store.download(chunk.key, source)
            target = tmp / f"{chunk.index}.mkv"
            with ChunkEncoder(target, stream_facts(source), crf=18, preset="ultrafast") as encoder:
                for frame in decode_frames(source):
                    encoder.encode(frame)
            store.upload(target, layout.processed(chunk.index))
            if debug:
                store.upload(target, layout.debug_chunk(chunk.index))
            result = ChunkResult(
                index=chunk.index,
                frames=chunk.frame_count,
                faces=chunk.frame_count,
                detected_faces=chunk.frame_count,
                frames_with_faces=chunk.frame_count,
                detectors=["none"],
                seconds=0.0,
            )
            store.put_bytes(layout.chunk_result(chunk.index), result.to_json())


def audio_spans(path: Path) -> list[tuple[float, float]]:
    """(start, end) in seconds of every audio stream, from its packets (one pass, no seeking)."""
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    with av.open(str(path)) as container:
        for packet in container.demux(*container.streams.audio):
            if not packet.size or packet.pts is None:
                continue
            i = packet.stream.index
            start = float(packet.pts * packet.time_base)
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            starts[i], ends[i] = min(starts.get(i, start), start), max(ends.get(i, end), end)
    return [(starts[i], ends[i]) for i in sorted(starts)]


def prepared_job(
    video: FaceVideo, root: Path, chunks: int, debug: bool = False
) -> tuple[LocalStore, JobLayout]:
    store, layout = LocalStore(root), JobLayout("job")
    manifest = split(str(video.path), store, layout, chunks=chunks)
    pass_through(store, layout, manifest, debug)
    return store, layout


def assert_faithful(video: FaceVideo, output: Path) -> None:
    info, times = probe_with_frames(output)
    source = probe_with_frames(video.path)[0]
    assert info.frame_count == video.frame_count
    assert info.time_base == source.time_base
    assert list(times.pts) == list(video.pts)  # every frame at its original time
    assert abs(info.duration_s - source.duration_s) <= 1 / 25
    assert info.rotation == source.rotation
    assert info.variable_frame_rate == source.variable_frame_rate
    assert info.tags["title"] == "faceblur test video"
    assert (info.color_primaries, info.color_space) == (source.color_primaries, source.color_space)
    spans_in, spans_out = audio_spans(video.path), audio_spans(output)
    assert len(spans_out) == len(spans_in) == video.spec.audio_streams
    for (a0, a1), (b0, b1) in zip(spans_in, spans_out, strict=True):
        assert abs(a0 - b0) < 0.005
        assert abs((a1 - a0) - (b1 - b0)) < 0.005


@pytest.mark.parametrize(
    ("changes", "chunks"),
    [
        ({"gop": 10, "audio_streams": 2}, 3),  # CFR, copy split, two audio tracks
        ({"vfr": True, "container": "mkv"}, 2),  # VFR with a pts offset, re-encoded split
        ({"rotation": 90}, 2),  # display matrix
    ],
    ids=["cfr", "vfr", "rotated"],
)
def test_output_keeps_frames_timestamps_audio_and_rotation(
    videos: VideoLibrary, tmp_path: Path, changes: dict[str, object], chunks: int
) -> None:
    video = videos.get(**changes)
    store, layout = prepared_job(video, tmp_path / "store", chunks)
    output = tmp_path / "out" / "blurred.mp4"
    result = compose(store, layout, str(output))
    assert result.frames == video.frame_count
    assert result.chunks == chunks
    assert_faithful(video, output)
    assert store.exists(layout.result)


def test_matroska_output_by_name(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    store, layout = prepared_job(video, tmp_path / "store", 2)
    output = tmp_path / "blurred.mkv"
    compose(store, layout, str(output))
    with av.open(str(output)) as container:
        assert container.format.name == "matroska,webm"
        assert len([p for p in container.demux(video=0) if p.size]) == video.frame_count


def test_missing_chunk_publishes_nothing(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    store, layout = prepared_job(video, tmp_path / "store", 5)
    store.delete(layout.processed(1))
    store.delete(layout.chunk_result(3))
    output = tmp_path / "blurred.mp4"
    with pytest.raises(ObjectNotFoundError, match=r"2 of 5 processed chunks missing \(indexes 1, 3\)"):
        compose(store, layout, str(output))
    assert not output.exists()
    assert not store.exists(layout.result)


def test_chunk_with_wrong_frame_count_publishes_nothing(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    store, layout = prepared_job(video, tmp_path / "store", 2)  # chunks of 20 and 30 frames
    store.put_bytes(layout.processed(1), store.get_bytes(layout.processed(0)))
    output = tmp_path / "blurred.mp4"
    with pytest.raises(InvalidInputError, match="has 20 frames, the manifest expects 30"):
        compose(store, layout, str(output))
    assert not output.exists()
    assert list(tmp_path.glob("*blurred*")) == []


def test_a_damaged_chunk_is_named_by_the_job_s_object_not_by_its_scratch_copy(
    videos: VideoLibrary, s3_server: S3Server
) -> None:
    s3_server.make_bucket("damaged-processed")
    settings = S3Settings.from_env(s3_server.env())
    store, layout = S3Store("damaged-processed", settings), JobLayout("jobs/d")
    manifest = split(str(videos.get(gop=10).path), store, layout, chunks=2)
    pass_through(store, layout, manifest)
    store.put_bytes(layout.processed(1), b"not a video")
    with pytest.raises(InvalidInputError) as info:
        compose(store, layout, "s3://damaged-processed/out/blurred.mp4", s3_settings=settings)
    message = str(info.value)
    assert message.startswith(f"chunk 1 (s3://damaged-processed/{layout.processed(1)}): not a readable video")
    assert "process it again (faceblur process --index 1 --force)" in message
    assert tempfile.gettempdir() not in message
    assert "part-000001" not in message  # the scratch copy's name
    assert not store.exists("out/blurred.mp4")


def test_debug_video_contact_sheet_and_cleanup(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    store, layout = prepared_job(video, tmp_path / "store", 3, debug=True)
    output = tmp_path / "blurred.mp4"
    result = compose(store, layout, str(output), debug=True, cleanup=True)
    assert result.debug_video == str(store.path(layout.debug_video))
    sheet = cv2.imread(str(store.path(layout.contact_sheet)))
    assert sheet is not None
    assert sheet.shape == (3 * 240, 4 * 320, 3)  # 12 thumbnails in a 4x3 grid
    assert float(np.std(sheet)) > 10  # real pictures, not a blank
    assert probe_with_frames(store.path(layout.debug_video))[0].frame_count == video.frame_count
    left = set(store.list("job/"))
    # the record stays, with the claim that keeps the prefix this job's (faceblur.job.claim)
    kept = {
        layout.claim,
        layout.manifest,
        layout.publishing,
        layout.result,
        layout.debug_video,
        layout.contact_sheet,
    }
    assert left == kept
    assert output.exists()


def test_s3_job_and_output(videos: VideoLibrary, s3_server: S3Server, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    s3_server.make_bucket("compose")
    settings = S3Settings.from_env(s3_server.env())
    store, layout = S3Store("compose", settings), JobLayout("jobs/x")
    manifest = split(str(video.path), store, layout, chunks=2)
    pass_through(store, layout, manifest)
    result = compose(store, layout, "s3://compose/out/blurred.mp4", s3_settings=settings)
    assert result.output == "s3://compose/out/blurred.mp4"
    local = tmp_path / "fetched.mp4"
    store.download("out/blurred.mp4", local)
    assert_faithful(video, local)


def test_output_over_the_input_is_refused(videos: VideoLibrary, tmp_path: Path) -> None:
    source = tmp_path / "input.mp4"
    source.write_bytes(videos.get(gop=10).path.read_bytes())
    before = source.read_bytes()
    store, layout = LocalStore(tmp_path / "store"), JobLayout("job")
    pass_through(store, layout, split(str(source), store, layout, chunks=2))
    with pytest.raises(InvalidInputError, match="is the input"):
        compose(store, layout, f"file://{source}")
    assert source.read_bytes() == before
