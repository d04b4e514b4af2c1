"""process_chunk end to end: real face videos split into real chunks, real CenterFace, real encodes."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from detect_support import decode_pts_seconds, iou, split_job
from faceblur.anonymization.drawing import COLOURS
from faceblur.detectors import UnionDetector, build_detector
from faceblur.detectors.centerface import SECOND_LOOK_MAX_HEIGHT
from faceblur.detectors.providers import CUDA, available_providers
from faceblur.errors import GpuUnavailableError, InvalidInputError
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Box, BoxSource, ChunkDetections, Manifest
from faceblur.job.split import split
from faceblur.process.chunk import process_chunk
from faceblur.process.halo import plan_segments
from faceblur.storage import LocalStore, S3Settings, S3Store
from faceblur_contract.enums import ExecutionProvider, SplitMode
from faceblur_contract.options import DetectorSpec, ProcessOptions
from faceblur_contract.records import ChunkResult
from faceblur_testenv.measure import decode_bgr, sharpness
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceBox, FaceVideo, Scene, VideoLibrary, VideoSpec

OPTIONS = ProcessOptions(batch_size=4)


@pytest.fixture(scope="module")
def centerface() -> UnionDetector:
    """A confident CenterFace: the known faces score above 0.8, blurred blobs at most 0.4."""
    return build_detector([DetectorSpec(threshold=0.5)], ExecutionProvider.AUTO, None)


def process_all(store: LocalStore, layout: JobLayout, manifest: Manifest, options: ProcessOptions) -> None:
    for chunk in manifest.chunks:
        process_chunk(store, layout, chunk.index, options)


def all_boxes(store: LocalStore, layout: JobLayout, manifest: Manifest) -> dict[int, list[Box]]:
    boxes: dict[int, list[Box]] = {}
    for chunk in manifest.chunks:
        detections = ChunkDetections.model_validate_json(store.get_bytes(layout.detections(chunk.index)))
        assert (detections.first_frame, detections.last_frame) == (chunk.first_frame, chunk.last_frame)
        boxes.update(detections.frames)
    return boxes


def box_iou(a: FaceBox | Box | np.ndarray, b: FaceBox | Box) -> float:
    corners = a if isinstance(a, np.ndarray) else (a.x1, a.y1, a.x2, a.y2)
    return iou(corners, (b.x1, b.y1, b.x2, b.y2))


@pytest.mark.parametrize("scene", [Scene.ASTRONAUT, Scene.GROUP])
def test_every_known_face_is_anonymized_in_every_frame(
    videos: VideoLibrary, centerface: UnionDetector, tmp_path: Path, scene: Scene
) -> None:
    video = videos.get(VideoSpec(scene=scene, frames=30, gop=15))
    store, layout, manifest = split_job(video.path, tmp_path, chunk_frames=15, mode=SplitMode.COPY)
    assert len(manifest.chunks) == 2
    process_all(store, layout, manifest, OPTIONS)
    anonymized = all_boxes(store, layout, manifest)
    for chunk in manifest.chunks:
        source = decode_bgr(tmp_path / chunk.key)
        output = decode_bgr(tmp_path / layout.processed(chunk.index))
        assert len(output) == len(source) == chunk.frame_count
        assert decode_pts_seconds(tmp_path / layout.processed(chunk.index)) == pytest.approx(
            decode_pts_seconds(tmp_path / chunk.key), abs=0.0011
        )
        found_before, found_after = centerface(source), centerface(output)
        for offset, (before, after) in enumerate(zip(source, output, strict=True)):
            faces = video.faces[chunk.first_frame + offset]
            assert faces
            far = np.ones(before.shape[:2], bool)
            for face in faces:
                assert any(box_iou(box, face) > 0.5 for box in found_before[offset])
                assert not any(box_iou(box, face) > 0.2 for box in found_after[offset]), "face detected again"
                x1, y1, x2, y2 = (round(v) for v in (face.x1, face.y1, face.x2, face.y2))
                assert sharpness(after[y1:y2, x1:x2]) < 0.25 * sharpness(before[y1:y2, x1:x2])
                w, h = x2 - x1, y2 - y1
                far[max(0, y1 - h) : y2 + h, max(0, x1 - w) : x2 + w] = False
            # Besides the known faces, only small face-like spots the second look finds (in the
            # group photo a painted bust and a stack of poker chips, 10-12 pixels), nothing larger.
            others = [
                b
                for b in anonymized[chunk.first_frame + offset]
                if b.source != BoxSource.REJECTED and not any(box_iou(b, f) > 0.2 for f in faces)
            ]
            for box in others:
                x1, y1, x2, y2 = (round(v) for v in (box.x1, box.y1, box.x2, box.y2))
                w, h = x2 - x1, y2 - y1
                assert h <= SECOND_LOOK_MAX_HEIGHT
                far[max(0, y1 - h) : y2 + h, max(0, x1 - w) : x2 + w] = False
            assert far.any()
            assert cv2.PSNR(before[far], after[far]) > 35


def test_chunk_boundaries_are_invisible(videos: VideoLibrary, tmp_path: Path) -> None:
    # faces vanish around the chunk boundaries (10, 20, 30), so frames there are covered by
    # interpolated and carried boxes that depend on detections in the neighbouring chunks
    hidden = {8, 9, 10, 11, 12, 19, 20, 21, 29, 31, 32, 33, 34, 35, 36, 37, 38, 39}
    video = videos.get(
        VideoSpec(scene=Scene.GROUP, frames=40, gop=10, face_frames=frozenset(set(range(40)) - hidden))
    )
    whole = split_job(video.path, tmp_path / "one", chunks=1, mode=SplitMode.COPY)
    pieces = split_job(video.path, tmp_path / "four", chunk_frames=10, mode=SplitMode.COPY)
    assert len(pieces[2].chunks) == 4
    process_all(*whole, OPTIONS)
    process_all(*pieces, OPTIONS)
    one, four = all_boxes(*whole), all_boxes(*pieces)
    assert sorted(one) == sorted(four) == list(range(40))
    sources = {b.source for boxes in one.values() for b in boxes}
    assert sources == {BoxSource.DETECTED, BoxSource.CARRIED, BoxSource.INTERPOLATED}
    for frame in one:
        assert [(b.detector, b.source) for b in one[frame]] == [(b.detector, b.source) for b in four[frame]]
        for a, b in zip(one[frame], four[frame], strict=True):
            assert (a.x1, a.y1, a.x2, a.y2) == pytest.approx((b.x1, b.y1, b.x2, b.y2), abs=0.05)


@pytest.mark.parametrize("chunk_frames", [10, 4])  # 4: the halo spans several neighbouring chunks
def test_face_seen_only_on_the_last_frame_of_a_chunk_covers_the_next(
    videos: VideoLibrary, tmp_path: Path, chunk_frames: int
) -> None:
    face_frame = 2 * chunk_frames - 1  # last frame of chunk 1
    video = videos.get(VideoSpec(frames=40, gop=chunk_frames, face_frames=frozenset({face_frame})))
    store, layout, manifest = split_job(video.path, tmp_path, chunk_frames=chunk_frames, mode=SplitMode.COPY)
    assert manifest.chunks[1].last_frame == face_frame
    process_all(store, layout, manifest, OPTIONS)
    boxes = all_boxes(store, layout, manifest)
    window = range(face_frame - OPTIONS.look_ahead, face_frame + OPTIONS.look_back + 1)
    assert sorted(boxes) == list(window)
    for frame in window:
        assert [b.source for b in boxes[frame]] == [
            BoxSource.DETECTED if frame == face_frame else BoxSource.CARRIED
        ]
    results = [
        ChunkResult.model_validate_json(store.get_bytes(layout.chunk_result(c.index)))
        for c in manifest.chunks
    ]
    assert sum(r.detected_faces for r in results) == 1
    assert sum(r.frames_with_faces for r in results) == len(window)


def test_rerun_of_a_done_index_does_nothing(
    videos: VideoLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = videos.get(VideoSpec(frames=10))
    store, layout, _manifest = split_job(video.path, tmp_path, chunks=1)
    first = process_chunk(store, layout, 0, OPTIONS)
    keys = [layout.chunk_result(0), layout.processed(0), layout.detections(0)]
    stamps = {key: (store.path(key).stat().st_mtime_ns, store.get_bytes(key)) for key in keys}

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished index was encoded again")

    monkeypatch.setattr("faceblur.process.run.ChunkEncoder", no_encoding)
    assert process_chunk(store, layout, 0, OPTIONS) == first
    assert {key: (store.path(key).stat().st_mtime_ns, store.get_bytes(key)) for key in keys} == stamps
    monkeypatch.undo()
    again = process_chunk(store, layout, 0, replace(OPTIONS, force=True))
    assert again.frames == first.frames
    assert store.path(layout.processed(0)).stat().st_mtime_ns != stamps[layout.processed(0)][0]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("fail_at", ["encode", "detect"])
def test_crash_mid_index_publishes_nothing(
    videos: VideoLibrary, tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    video = videos.get(VideoSpec(frames=20))
    store, layout, _manifest = split_job(video.path, tmp_path / "store", chunks=1)
    calls = 0

    def broken(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("disk on fire")
        return original(*args, **kwargs)

    if fail_at == "encode":
        from faceblur.media.codec import ChunkEncoder

        original = ChunkEncoder.encode
        monkeypatch.setattr(ChunkEncoder, "encode", broken)
    else:
        original = UnionDetector.detect_resized
        monkeypatch.setattr(UnionDetector, "detect_resized", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        process_chunk(store, layout, 0, ProcessOptions(batch_size=2, debug=True))
    for key in (layout.chunk_result(0), layout.processed(0), layout.detections(0), layout.debug_chunk(0)):
        assert not store.exists(key)
    assert not list(private_tmp.iterdir())  # temporary files removed


def test_debug_chunk_progress_and_publishing_order(
    videos: VideoLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = videos.get(VideoSpec(frames=12))
    store, layout, _manifest = split_job(video.path, tmp_path, chunks=1)
    published: list[str] = []
    for method in ("put_bytes", "upload"):
        original = getattr(store, method)

        def recording(
            *args: object, _original: object = original, _method: str = method, **kwargs: object
        ) -> None:
            published.append(str(args[0] if _method == "put_bytes" else args[1]))
            _original(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(store, method, recording)
    done: list[int] = []
    result = process_chunk(
        store, layout, 0, replace(OPTIONS, debug=True, draw_scores=True), progress=done.append
    )
    assert published == [
        layout.detections(0),
        layout.debug_chunk(0),
        layout.chunk_verification(0),  # the check of the encoded chunk, before the chunk itself
        layout.processed(0),
        layout.chunk_result(0),
    ]
    assert sum(done) == result.frames == 12
    assert len(decode_bgr(tmp_path / layout.debug_chunk(0))) == 12
    assert result.frames_with_faces == 12
    assert result.detectors == ["centerface"]


def outline_band(shape: tuple[int, ...], box: Box, width: int = 1) -> np.ndarray:
    """The pixels within `width` of the rectangle draw_boxes draws for `box`."""
    x1, y1, x2, y2 = (round(v) for v in (box.x1, box.y1, box.x2, box.y2))
    band = np.zeros(shape[:2], bool)
    band[max(0, y1 - width) : y2 + width + 1, max(0, x1 - width) : x2 + width + 1] = True
    band[y1 + width + 1 : y2 - width, x1 + width + 1 : x2 - width] = False
    return band


def drawn_colour(processed: np.ndarray, debug: np.ndarray, band: np.ndarray) -> BoxSource:
    """Which box colour the debug frame adds along `band`: the colour whose direction from the
    processed pixels best matches the change (mean over the band, so robust to H.264 and 4:2:0)."""
    before = processed[band].astype(np.float64).mean(axis=0)
    change = debug[band].astype(np.float64).mean(axis=0) - before
    assert np.linalg.norm(change) > 20, f"nothing drawn along the box outline: change {change}"

    def agreement(colour: tuple[int, int, int]) -> float:
        towards = np.subtract(colour, before)
        return float(change @ towards / (np.linalg.norm(change) * np.linalg.norm(towards)))

    return max(COLOURS, key=lambda source: agreement(COLOURS[source]))


def test_debug_chunk_shows_every_box_in_its_source_colour(videos: VideoLibrary, tmp_path: Path) -> None:
    # faces hidden in 8-11 (the tracker interpolates through) and from 16 on (carried after the last)
    video = videos.get(
        VideoSpec(scene=Scene.GROUP, frames=24, face_frames=frozenset(set(range(16)) - {8, 9, 10, 11}))
    )
    store, layout, manifest = split_job(video.path, tmp_path, chunks=1)
    process_chunk(store, layout, 0, replace(OPTIONS, debug=True))
    boxes = all_boxes(store, layout, manifest)
    processed = decode_bgr(tmp_path / layout.processed(0))
    debug = decode_bgr(tmp_path / layout.debug_chunk(0))
    assert len(debug) == len(processed) == 24
    drawn: set[BoxSource] = set()
    for frame, frame_boxes in boxes.items():
        for box in frame_boxes:
            band = outline_band(debug[frame].shape, box)
            colour = drawn_colour(processed[frame], debug[frame], band)
            assert colour is box.source, f"frame {frame}: a {box.source.value} box drawn as {colour.value}"
            drawn.add(colour)
    assert drawn == {BoxSource.DETECTED, BoxSource.CARRIED, BoxSource.INTERPOLATED}
    assert {b.source for b in boxes[4]} == {BoxSource.DETECTED}
    assert {b.source for b in boxes[9]} == {BoxSource.INTERPOLATED}
    assert {b.source for b in boxes[20]} == {BoxSource.CARRIED}


def test_rotated_video_faces_are_found_upright(videos: VideoLibrary, tmp_path: Path) -> None:
    video: FaceVideo = videos.get(VideoSpec(frames=8, rotation=90))
    store, layout, manifest = split_job(video.path, tmp_path, chunks=1)
    assert manifest.video.rotation == 90
    assert (video.width, video.height) == (240, 320)  # stored sideways
    process_chunk(store, layout, 0, OPTIONS)
    boxes = all_boxes(store, layout, manifest)
    for frame, faces in enumerate(video.faces):
        detected = [b for b in boxes[frame] if b.source is BoxSource.DETECTED]
        for face in faces:
            assert any(box_iou(box, face) > 0.5 for box in detected)
    output = decode_bgr(tmp_path / layout.processed(0))
    assert output[0].shape == (320, 240, 3)  # encoded as stored


def test_vfr_timestamps_are_kept(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(VideoSpec(frames=16, vfr=True))
    store, layout, manifest = split_job(video.path, tmp_path, chunks=2, mode=SplitMode.REENCODE)
    process_all(store, layout, manifest, OPTIONS)
    for chunk in manifest.chunks:
        expected = [
            float(pts * video.time_base) for pts in video.pts[chunk.first_frame : chunk.last_frame + 1]
        ]
        assert decode_pts_seconds(tmp_path / layout.processed(chunk.index)) == pytest.approx(
            expected, abs=1e-3
        )


def test_unknown_index_and_missing_manifest(videos: VideoLibrary, tmp_path: Path) -> None:
    store, layout, _manifest = split_job(videos.get(VideoSpec(frames=10)).path, tmp_path, chunks=1)
    with pytest.raises(InvalidInputError, match="chunk index 3 out of range: the job has 1 chunks"):
        process_chunk(store, layout, 3, OPTIONS)
    with pytest.raises(InvalidInputError, match="no manifest"):
        process_chunk(store, JobLayout("elsewhere"), 0, OPTIONS)


def test_a_damaged_chunk_is_named_by_the_job_s_object_not_by_its_scratch_copy(
    videos: VideoLibrary, s3_server: S3Server
) -> None:
    s3_server.make_bucket("damaged-chunk")
    store, layout = S3Store("damaged-chunk", S3Settings.from_env(s3_server.env())), JobLayout("jobs/d")
    manifest = split(str(videos.get(VideoSpec(frames=20)).path), store, layout, chunks=2)
    store.put_bytes(manifest.chunks[1].key, b"not a video")
    with pytest.raises(InvalidInputError) as info:
        process_chunk(store, layout, 1, OPTIONS)
    message = str(info.value)
    assert message.startswith(f"chunk 1 (s3://damaged-chunk/{manifest.chunks[1].key}): not a readable video")
    assert "split the input again into a new job" in message
    assert tempfile.gettempdir() not in message
    assert "chunk-000001" not in message  # the scratch copy's name
    assert not store.exists(layout.chunk_result(1))


def test_unavailable_provider_publishes_nothing(videos: VideoLibrary, tmp_path: Path) -> None:
    if CUDA in available_providers():
        pytest.skip("this machine has CUDA")
    store, layout, _manifest = split_job(videos.get(VideoSpec(frames=10)).path, tmp_path, chunks=1)
    with pytest.raises(GpuUnavailableError, match="no CUDA provider"):  # never the CPU instead
        process_chunk(store, layout, 0, replace(OPTIONS, execution_provider=ExecutionProvider.CUDA))
    assert not list(store.list(layout.key("processed")))
    assert not list(store.list(layout.key("results")))


def test_plan_segments_reads_only_the_halo(videos: VideoLibrary, tmp_path: Path) -> None:
    _store, _layout, manifest = split_job(
        videos.get(VideoSpec(frames=40, gop=4)).path, tmp_path, chunk_frames=4, mode=SplitMode.COPY
    )
    plan = plan_segments(manifest.chunks, 5, before=6, after=3)
    assert [(s.chunk.index, s.part, s.count) for s in plan] == [
        (3, "tail", 2),
        (4, "all", 4),
        (5, "all", 4),
        (6, "head", 3),
    ]
    assert next(list(s.frames) for s in plan) == [14, 15]
    first = plan_segments(manifest.chunks, 0, before=10, after=10)
    assert [(s.chunk.index, s.part) for s in first] == [(0, "all"), (1, "all"), (2, "all"), (3, "head")]
