"""Split real videos: every frame in exactly one chunk, exact timestamps, audio, a safe manifest."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import pytest
from faceblur.errors import InvalidInputError, ObjectNotFoundError
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Manifest
from faceblur.job.split import split
from faceblur.storage import LocalStore, S3Settings, S3Store
from faceblur_contract.enums import SplitMode
from faceblur_testenv.measure import decode_bgr
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary


def chunk_packets(path: Path) -> tuple[list[int], list[bool]]:
    """Sorted pts and, in the same order, keyframe flags of a chunk file's video packets."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = sorted((p.pts, p.is_keyframe) for p in container.demux(stream) if p.size)
    return [p for p, _ in packets], [k for _, k in packets]


def assert_covers_every_frame(video: FaceVideo, manifest: Manifest, store: LocalStore) -> None:
    assert manifest.frame_count == video.frame_count
    assert [c.first_frame for c in manifest.chunks] == [0] + [c.last_frame + 1 for c in manifest.chunks[:-1]]
    assert manifest.chunks[-1].last_frame == video.frame_count - 1
    seen: list[int] = []
    for chunk in manifest.chunks:
        pts, keys = chunk_packets(store.path(chunk.key))
        assert len(pts) == chunk.frame_count
        assert pts == chunk.frame_pts()  # the chunk file keeps the input's time base and pts
        assert (pts[0], pts[-1]) == (chunk.first_pts, chunk.last_pts)
        assert keys[0], f"chunk {chunk.index} does not start with a keyframe"
        seen += pts
    assert seen == list(video.pts)  # every frame once, in order


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_copy_split_at_keyframes(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(gop=10, audio_streams=2)
    before = sha256(video.path)
    store = LocalStore(tmp_path)
    manifest = split(str(video.path), store, JobLayout("job"), chunks=3)
    assert manifest.split_mode is SplitMode.COPY
    assert [c.first_frame for c in manifest.chunks] == [0, 20, 30]
    assert_covers_every_frame(video, manifest, store)
    chunk_bytes = sum(store.size(c.key) for c in manifest.chunks)
    assert chunk_bytes <= 1.0 * video.size_bytes  # lossless copy: no growth
    assert sha256(video.path) == before
    with av.open(str(store.path("job/audio.mka"))) as audio:
        assert len(audio.streams.audio) == 2
        assert len(audio.streams.video) == 0


def test_reencode_split_at_exact_frames(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get()  # one keyframe only: AUTO must re-encode to get 3 chunks
    store = LocalStore(tmp_path)
    manifest = split(str(video.path), store, JobLayout("job"), chunks=3)
    assert manifest.split_mode is SplitMode.REENCODE
    assert [c.frame_count for c in manifest.chunks] == [17, 16, 17]
    assert_covers_every_frame(video, manifest, store)
    ratio = sum(store.size(c.key) for c in manifest.chunks) / video.size_bytes
    assert ratio <= 1.5


@pytest.mark.parametrize(("chunks", "min_psnr_db"), [(3, 38.0), (8, 32.0), (16, 28.0)])
def test_reencode_split_pays_for_its_keyframes_within_the_bound(
    videos: VideoLibrary, tmp_path: Path, chunks: int, min_psnr_db: float
) -> None:
    """Each chunk adds a keyframe the input lacks; the rate cap keeps it within 1.5x however fine a cut."""
    video = videos.get(width=640, height=480, frames=100)  # one keyframe
    store = LocalStore(tmp_path)
    manifest = split(str(video.path), store, JobLayout("job"), chunks=chunks, mode=SplitMode.REENCODE)
    ratio = sum(store.size(c.key) for c in manifest.chunks) / video.size_bytes
    assert ratio <= 1.5
    source = decode_bgr(video.path)
    cut = [frame for c in manifest.chunks for frame in decode_bgr(store.path(c.key))]
    assert len(cut) == len(source)
    psnr = sum(cv2.PSNR(a, b) for a, b in zip(source, cut, strict=True)) / len(source)
    assert psnr >= min_psnr_db  # bounded by rate control, not by giving the picture away


def test_vfr_reencode_keeps_every_timestamp(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(vfr=True, container="mkv")
    store = LocalStore(tmp_path)
    manifest = split(str(video.path), store, JobLayout("job"), chunks=2, mode=SplitMode.REENCODE)
    assert manifest.video.variable_frame_rate
    assert_covers_every_frame(video, manifest, store)


def test_single_chunk_is_a_copy_with_the_manifest_last(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(rotation=90)
    store = LocalStore(tmp_path)
    manifest = split(str(video.path), store, JobLayout("a/job"), chunks=1)
    assert manifest.split_mode is SplitMode.COPY
    assert manifest.video.rotation == 90
    assert manifest.input == str(video.path)
    assert_covers_every_frame(video, manifest, store)
    written = {key: store.path(key).stat().st_mtime_ns for key in store.list("a/job/")}
    assert written["a/job/manifest.json"] == max(written.values())
    assert Manifest.model_validate_json(store.get_bytes("a/job/manifest.json")) == manifest

    again = split(str(video.path), store, JobLayout("a/job"), chunks=5)  # finished: a no-op
    assert again == manifest
    assert {key: store.path(key).stat().st_mtime_ns for key in store.list("a/job/")} == written


def test_frame_export(videos: VideoLibrary, tmp_path: Path) -> None:
    video = videos.get(frames=12)
    store = LocalStore(tmp_path)
    split(str(video.path), store, JobLayout("job"), export_frames="png")
    frames = list(store.list("job/frames/"))
    assert frames == [f"job/frames/{n:08d}.png" for n in range(12)]


def test_unreadable_input_leaves_no_manifest(videos: VideoLibrary, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(InvalidInputError, match="corrupt"):
        split(str(videos.corrupt()), store, JobLayout("job"))
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        split(str(tmp_path / "missing.mp4"), store, JobLayout("job"))
    assert list(store.list("job/")) == []


@pytest.mark.parametrize("mode", [SplitMode.COPY, SplitMode.REENCODE])
def test_odd_frame_sizes_are_cut_at_their_size(videos: VideoLibrary, tmp_path: Path, mode: SplitMode) -> None:
    """An odd size in 4:2:0 (VP9 codes it) is cut as it is, or re-encoded as 4:4:4, which H.264 codes."""
    video = videos.get(width=319, height=239, frames=12, gop=4, codec="vp9")
    store = LocalStore(tmp_path)
    manifest = split(str(video.path), store, JobLayout("job"), chunks=3, mode=mode)
    assert manifest.split_mode is mode
    assert manifest.output is not None
    assert manifest.output.video == "yuv444p"  # decided before any work
    assert_covers_every_frame(video, manifest, store)
    for chunk in manifest.chunks:
        with av.open(str(tmp_path / chunk.key)) as container:
            frames = list(container.decode(video=0))
        assert {(f.width, f.height) for f in frames} == {(319, 239)}
        expected = "yuv420p" if mode is SplitMode.COPY else "yuv444p"
        assert {f.format.name for f in frames} == {expected}


def test_s3_input_and_job(videos: VideoLibrary, s3_server: S3Server, tmp_path: Path) -> None:
    video = videos.get(gop=10)
    s3_server.make_bucket("split-in")
    client = s3_server.client()
    client.fput_object("split-in", "videos/in.mp4", str(video.path))
    etag = client.stat_object("split-in", "videos/in.mp4").etag
    settings = S3Settings.from_env(s3_server.env())
    store = S3Store("split-in", settings)
    manifest = split(
        "s3://split-in/videos/in.mp4", store, JobLayout("jobs/1"), chunks=5, s3_settings=settings
    )
    assert manifest.split_mode is SplitMode.COPY
    assert len(manifest.chunks) == 5
    assert store.exists("jobs/1/manifest.json")
    assert store.exists("jobs/1/audio.mka")
    assert client.stat_object("split-in", "videos/in.mp4").etag == etag
    with pytest.raises(ObjectNotFoundError, match=r"s3://split-in/videos/nope\.mp4"):
        split("s3://split-in/videos/nope.mp4", store, JobLayout("jobs/2"), s3_settings=settings)
    assert list(store.list("jobs/2/")) == []


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server (with Range support, as ffmpeg seeks) serving a folder."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(RangeRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        header = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not header or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first_text, _, last_text = header.removeprefix("bytes=").partition("-")
        first = int(first_text or 0)
        last = min(int(last_text) if last_text else size - 1, size - 1)
        handle = path.open("rb")
        handle.seek(first)
        self.send_response(206)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        return io.BytesIO(handle.read(last - first + 1))


def test_http_input(videos: VideoLibrary, http_folder: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = http_folder
    video = videos.get(gop=10)
    shutil.copyfile(video.path, folder / "clip.mp4")
    store = LocalStore(tmp_path / "store")
    manifest = split(f"{base}/clip.mp4", store, JobLayout("job"), chunks=2)
    assert manifest.input == f"{base}/clip.mp4"
    assert_covers_every_frame(video, manifest, store)
    with pytest.raises(ObjectNotFoundError, match="not found"):
        split(f"{base}/missing.mp4", store, JobLayout("job2"))
