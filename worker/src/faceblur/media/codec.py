"""Decode chunk files to frames and encode processed frames to a chunk file, with PyAV.

Frames stay `av.VideoFrame`s in the video's processing format (`processing_format`) from
decoder to encoder, so a frame without faces is re-encoded without any colour conversion;
callers take 8-bit BGR arrays only to detect. The encoder writes Matroska with one H.264
stream and the input's timestamps (Matroska stores them in milliseconds whatever time base
is asked for).

Colour is kept exactly: samples keep their range (a full-range frame stays 0-255, a
limited one 16-235), their bit depth (a 10-bit input is encoded as 10-bit H.264, High 10)
and the encoder tags the stream with the input's range, matrix, primaries and transfer,
and repeats its HDR10 mastering-display and content-light metadata. Every conversion
names its source and destination matrix and range (`faceblur.media.colour`). Other chroma
layouts (4:2:2) are converted once, on decode, to 4:2:0 of the same depth, range and matrix.

H.264 is kept for 10-bit input too, HEVC included: every chunk, the concatenation and every
output container (MP4, MOV, Matroska) then take one codec with one set of quality options
(crf, preset); High 10 plays in every software decoder (FFmpeg, VLC, browsers' players) but
rarely in hardware.

Odd frame sizes are kept exactly by encoding 4:4:4 (High 4:4:4 Predictive): H.264 crops a
4:2:0 picture only by whole chroma samples (2 pixels), so 639x359 cannot be 4:2:0.
"""

from __future__ import annotations

import collections
import logging
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.container
import av.error
import cv2
import numpy as np
import numpy.typing as npt
from av.sidedata.sidedata import Type as SideDataType
from av.video.frame import PictureType
from av.video.reformatter import ColorRange
from faceblur_contract.enums import VideoEncoder

from faceblur.errors import GpuUnavailableError, InvalidInputError, MediaFileError, reason
from faceblur.media import colour

log = logging.getLogger(__name__)

ENCODER_PIX_FMT = "yuv420p"  # the processing format of an 8-bit, even-sized video
X264, NVENC = "libx264", "h264_nvenc"  # FFmpeg's names of the two H.264 encoders
NVENC_GOP = 250  # libx264's default keyint (FFmpeg passes g=-1 to it): the same keyframe spacing
NVENC_B_FRAMES = 3  # x264's veryfast default; NVENC's middle-reference B-frames need 3 or more
NVENC_FORMATS = frozenset({ENCODER_PIX_FMT})  # NVENC's H.264 has no 10-bit and, on most GPUs, no 4:4:4
TAIL_SEEK_MARGIN = 8  # frames decoded before the wanted tail when seeking, for safety
Samples = npt.NDArray[np.uint8] | npt.NDArray[np.uint16]  # one plane, 8-bit or deeper


@cache
def processing_format(pix_fmt: str, width: int, height: int) -> str:
    """The pixel format a video is processed and encoded in: the input's depth (8, or 10 for
    anything deeper: x264's most), 4:2:0, or 4:4:4 when a side is odd (see the module docstring)."""
    deep = colour.bit_depth(pix_fmt) > 8
    chroma = "444" if width % 2 or height % 2 else "420"
    return f"yuv{chroma}p{'10le' if deep else ''}"


@dataclass(frozen=True)
class HdrMetadata:
    """A stream's HDR10 static metadata in x264's terms (SMPTE ST 2086 and CTA-861.3 units).

    `mastering_display`: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min), chromaticities in 1/50000,
    luminance in 1/10000 cd/m2; `content_light`: MaxCLL,MaxFALL in cd/m2."""

    mastering_display: str | None = None
    content_light: str | None = None

    @classmethod
    def of(cls, frame: av.VideoFrame) -> HdrMetadata | None:
        """The metadata a decoded frame carries (from the stream's SEI or container), None if none."""
        side_data: Any = frame.side_data  # a mapping by side data type (PyAV's stub says otherwise)
        display_data = side_data.get(SideDataType.MASTERING_DISPLAY_METADATA)
        light_data = side_data.get(SideDataType.CONTENT_LIGHT_LEVEL)
        display = _mastering_display(bytes(display_data)) if display_data is not None else None
        light = None
        if light_data is not None:
            max_cll, max_fall = struct.unpack_from("<II", bytes(light_data))
            light = f"{max_cll},{max_fall}"
        return cls(display, light) if display or light else None

    def x264_params(self) -> list[str]:
        params = [] if self.mastering_display is None else [f"mastering-display={self.mastering_display}"]
        return params + ([] if self.content_light is None else [f"cll={self.content_light}"])


def _mastering_display(data: bytes) -> str | None:
    """x264's mastering-display value from FFmpeg's AVMasteringDisplayMetadata (rationals: R, G, B
    primaries' x and y, the white point's, min and max luminance; then has_primaries, has_luminance)."""
    values = struct.unpack_from("<20i2i", data)
    rationals = [
        Fraction(values[i], values[i + 1]) if values[i + 1] else Fraction(0) for i in range(0, 20, 2)
    ]
    has_primaries, has_luminance = values[20:22]
    if not (has_primaries and has_luminance):
        return None  # x264 takes both or neither
    (rx, ry, gx, gy, bx, by, wx, wy), (low, high) = rationals[:8], rationals[8:]
    xy = [round(v * 50000) for v in (gx, gy, bx, by, rx, ry, wx, wy)]
    return (
        f"G({xy[0]},{xy[1]})B({xy[2]},{xy[3]})R({xy[4]},{xy[5]})WP({xy[6]},{xy[7]})"
        f"L({round(high * 10000)},{round(low * 10000)})"
    )


@dataclass(frozen=True)
class StreamFacts:
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    frame_rate: Fraction | None
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    hdr: HdrMetadata | None = None

    @property
    def full_range(self) -> bool:
        return colour.sample_range(self.color_range, self.pix_fmt) is ColorRange.JPEG

    @property
    def processing_pix_fmt(self) -> str:
        return processing_format(self.pix_fmt, self.width, self.height)

    @property
    def converted_on_decode(self) -> bool:
        """Whether frames change format on decode (4:2:2 or 4:4:4 to 4:2:0, odd sizes to 4:4:4)."""
        same = {self.processing_pix_fmt, "yuvj420p" if self.processing_pix_fmt == ENCODER_PIX_FMT else ""}
        return self.pix_fmt not in same


def stream_facts(path: Path) -> StreamFacts:
    """The chunk's video stream as the encoder must reproduce it (its first frame has the HDR metadata)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        time_base = stream.time_base
        if time_base is None:
            raise MediaFileError(path, "video stream has no time base")
        rate = stream.average_rate or stream.guessed_rate
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise MediaFileError(path, f"cannot decode frame 0 ({reason(exc)})") from exc
        return StreamFacts(
            width=context.width,
            height=context.height,
            pix_fmt=context.pix_fmt or ENCODER_PIX_FMT,
            time_base=Fraction(time_base),
            frame_rate=Fraction(rate) if rate else None,
            color_range=colour.range_tag(context.color_range, context.pix_fmt or ""),
            colorspace=int(context.colorspace),
            color_primaries=int(context.color_primaries),
            color_trc=int(context.color_trc),
            hdr=HdrMetadata.of(first) if first is not None else None,
        )


def decode_frames(path: Path, limit: int | None = None, threads: int = 0) -> Iterator[av.VideoFrame]:
    """Frames of the first video stream in presentation order, in its processing format;
    `threads` 0: FFmpeg's choice."""
    with _open(path) as container:
        stream = container.streams.video[0]
        _decode_threads(stream, threads)
        count = 0
        try:
            for frame in container.decode(stream):
                if limit is not None and count >= limit:
                    return
                yield _as_processed(frame)
                count += 1
        except av.error.FFmpegError as exc:
            raise MediaFileError(path, f"cannot decode frame {count} ({reason(exc)})") from exc


def decode_tail(path: Path, count: int, total: int, threads: int = 0) -> list[av.VideoFrame]:
    """The last `count` of a file's `total` frames; seeks near the end when keyframes allow."""
    if count <= 0:
        return []
    if count < total:
        tail = _decode_tail_after_seek(path, count, total, threads)
        if tail is not None:
            return tail
    frames: collections.deque[av.VideoFrame] = collections.deque(maxlen=count)
    frames.extend(decode_frames(path, threads=threads))
    return list(frames)


def _decode_threads(stream: Any, threads: int) -> None:
    """FFmpeg's frame and slice threads (`threads` 0: as many as it likes; 1: in the caller's thread)."""
    stream.thread_type = "AUTO"
    if threads:
        stream.codec_context.thread_count = threads


def _decode_tail_after_seek(
    path: Path, count: int, total: int, threads: int = 0
) -> list[av.VideoFrame] | None:
    """Decode from a keyframe before the estimated start of the tail; None when it lands too late.

    Frames are counted from the end (the last decoded frame is frame total-1), so frames a
    decoder drops right after a seek cannot shift the numbering of the tail.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        _decode_threads(stream, threads)
        start, duration = stream.start_time, stream.duration
        if duration is None and container.duration is not None and stream.time_base:
            duration = int(container.duration / 1_000_000 / stream.time_base)
        if start is None or not duration:
            return None
        target_index = max(0, total - count - TAIL_SEEK_MARGIN)
        target_pts = start + duration * target_index // total
        if target_index == 0:
            return None
        try:
            container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            tail: collections.deque[av.VideoFrame] = collections.deque(maxlen=count + TAIL_SEEK_MARGIN)
            for frame in container.decode(stream):
                tail.append(_as_processed(frame))
        except av.error.FFmpegError as exc:
            log.debug("seek in %s failed (%s): decoding from the start", path.name, exc)
            return None
    if len(tail) < count + TAIL_SEEK_MARGIN:
        return None
    return list(tail)[-count:]


def _as_processed(frame: av.VideoFrame) -> av.VideoFrame:
    wanted = processing_format(frame.format.name, frame.width, frame.height)
    if frame.format.name == wanted:
        return frame
    return colour.same_colour(frame, wanted)


def to_bgr(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> npt.NDArray[np.uint8]:
    """The frame as a BGR array, optionally resized (area-averaged) to size = (width, height).

    Read with the frame's own matrix and range, so the detector sees the colours and
    contrast a player shows.
    """
    resize = size is not None and size != (frame.width, frame.height)
    width, height = size if size is not None and resize else (frame.width, frame.height)
    bgr = frame.reformat(
        width=width,
        height=height,
        format="bgr24",
        src_colorspace=colour.matrix(frame.colorspace),
        src_color_range=colour.sample_range(frame.color_range, frame.format.name),
        dst_color_range=ColorRange.JPEG,
        interpolation="AREA" if resize else None,
        threads=colour.SWSCALE_THREADS,
    )
    return np.asarray(bgr.to_ndarray(), dtype=np.uint8)


def i420_planes(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """A copy of the frame as one (H*3/2, W) array: Y rows, then U, then V, packed."""
    return np.asarray(frame.to_ndarray(format=ENCODER_PIX_FMT), dtype=np.uint8)


def frame_from_i420(planes: npt.NDArray[np.uint8], like: av.VideoFrame) -> av.VideoFrame:
    return _with_metadata(av.VideoFrame.from_ndarray(planes, format=ENCODER_PIX_FMT), like)


def yuv_planes(frame: av.VideoFrame) -> list[Samples]:
    """Copies of a planar YUV frame's Y, U and V planes, uint8 or (deeper than 8 bits) uint16."""
    dtype = np.dtype("<u2") if colour.bit_depth(frame.format.name) > 8 else np.dtype(np.uint8)
    planes: list[Samples] = []
    for plane in frame.planes[:3]:
        rows = np.frombuffer(memoryview(plane), dtype=dtype).reshape(plane.height, -1)
        planes.append(np.asarray(rows[:, : plane.width].copy()))
    return planes


def frame_from_planes(planes: Sequence[Samples], like: av.VideoFrame) -> av.VideoFrame:
    """A frame of `like`'s format, size, timestamp and colour tags with these Y, U and V planes."""
    frame = av.VideoFrame(like.width, like.height, like.format.name)
    for plane, samples in zip(frame.planes, planes, strict=True):  # written in place: planes are writable
        rows = np.frombuffer(memoryview(plane), dtype=samples.dtype).reshape(plane.height, -1)
        rows[:, : plane.width] = samples
    return _with_metadata(frame, like)


def chroma_step(frame: av.VideoFrame) -> int:
    """Luma pixels per chroma sample along each side: 2 for 4:2:0, 1 for 4:4:4."""
    return 1 << int(frame.format.components[1].width != frame.width)


def frame_from_bgr(image: npt.NDArray[np.uint8], like: av.VideoFrame) -> av.VideoFrame:
    """A frame of `like`'s format from a BGR image, converted with `like`'s colour matrix and range."""
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    converted = frame.reformat(
        format=like.format.name,
        src_color_range=ColorRange.JPEG,
        dst_colorspace=colour.matrix(like.colorspace),
        dst_color_range=colour.sample_range(like.color_range, like.format.name),
        threads=colour.SWSCALE_THREADS,
    )
    return _with_metadata(converted, like)


def frame_with_drawing(frame: av.VideoFrame, paint: Callable[[npt.NDArray[np.uint8]], None]) -> av.VideoFrame:
    """The frame with `paint` applied to a BGR copy of it, every sample it leaves alone kept as decoded.

    Only the pixels the painting changes (and their 2x2 chroma blocks) take the converted
    values, so the picture around the boxes of a debug frame keeps its exact samples
    instead of going through a lossy YUV -> BGR -> YUV round trip.
    """
    image = to_bgr(frame)
    painted = image.copy()
    paint(painted)
    diff = np.asarray(cv2.absdiff(painted, image), dtype=np.uint8)  # numpy's any(axis=2): ~15x slower
    changed = (diff[:, :, 0] | diff[:, :, 1] | diff[:, :, 2]) != 0
    if not changed.any():
        return frame
    planes, drawn = yuv_planes(frame), yuv_planes(frame_from_bgr(painted, frame))
    np.copyto(planes[0], drawn[0], where=changed)
    if chroma_step(frame) == 2:
        changed = changed[0::2, 0::2] | changed[1::2, 0::2] | changed[0::2, 1::2] | changed[1::2, 1::2]
    for plane, new in zip(planes[1:], drawn[1:], strict=True):
        np.copyto(plane, new, where=changed)
    return frame_from_planes(planes, frame)


def _with_metadata(frame: av.VideoFrame, like: av.VideoFrame) -> av.VideoFrame:
    frame.pts = like.pts
    if like.time_base is not None:  # some decoders (VP9) leave it unset
        frame.time_base = like.time_base
    frame.color_range, frame.colorspace = like.color_range, like.colorspace
    frame.color_primaries, frame.color_trc = like.color_primaries, like.color_trc
    return frame


class ChunkEncoder:
    """Writes frames (with their original pts) to a Matroska file with one H.264 stream of the
    video's processing format, its colour tags and its HDR metadata.

    Used as a context manager: leaving with an exception closes the file without
    finishing it; the caller owns the (temporary) path and discards it.
    """

    def __init__(
        self, path: Path, facts: StreamFacts, crf: int, preset: str, threads: int = 0, encoder: str = X264
    ) -> None:
        self.path = path
        self._container: Any = av.open(str(path), mode="w", format="matroska")
        try:
            stream: Any = self._container.add_stream(encoder, rate=facts.frame_rate or Fraction(25))
            stream.width, stream.height = facts.width, facts.height
            stream.pix_fmt = facts.processing_pix_fmt
            stream.time_base = facts.time_base
            context = stream.codec_context
            context.time_base = facts.time_base  # PyAV rebases frame pts to this: keep them exact
            context.color_range, context.colorspace = facts.color_range, facts.colorspace
            context.color_primaries, context.color_trc = facts.color_primaries, facts.color_trc
            if encoder == NVENC:
                stream.options = nvenc_options(crf)
                context.gop_size = NVENC_GOP  # x264's default keyint: the same keyframe rules
                context.max_b_frames = NVENC_B_FRAMES
            else:
                stream.options = x264_options(crf, preset, facts.hdr)
            if threads and encoder == X264:  # 1: x264 in the caller's thread, no frame/lookahead threads
                context.thread_count = threads
            self._stream = stream
        except (av.error.FFmpegError, ValueError) as exc:
            self._container.close()
            raise InvalidInputError(f"cannot set up the H.264 encoder {encoder}: {exc}") from exc
        self.frames = 0

    def encode(self, frame: av.VideoFrame) -> None:
        frame.pict_type = PictureType.NONE  # let the encoder choose frame types, not copy the input's
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> ChunkEncoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()


def x264_options(crf: int, preset: str, hdr: HdrMetadata | None, **more: str) -> dict[str, object]:
    """libx264's options: quality, speed, and the HDR metadata to repeat in the stream's SEI."""
    options: dict[str, object] = {
        "crf": str(crf),
        "preset": str(preset),
        **more,
    }  # Cython refuses str subclasses
    if hdr is not None:
        options["x264-params"] = ":".join(hdr.x264_params())
    return options


@dataclass(frozen=True)
class EncoderChoice:
    """The H.264 encoder a chunk is written with, and why (a sentence for the log and the docs)."""

    name: str  # X264 or NVENC
    why: str


def choose_encoder(
    requested: VideoEncoder, pix_fmt: str, hdr: bool, on_gpu: bool, nvenc_refusal: Callable[[], str | None]
) -> EncoderChoice:
    """`auto`: NVENC when inference runs on a GPU, the processing format is one NVENC's H.264 codes
    and the encoder opens (`nvenc_refusal` is asked last, as it opens one); else x264. `nvenc`: NVENC
    or a `GpuUnavailableError` naming why not, never x264 in its place; `x264`: x264.

    `pix_fmt`: the processing format (10-bit and 4:4:4 stay x264); `hdr`: HDR10 metadata to repeat,
    which FFmpeg's h264_nvenc does not write (x264 does, `HdrMetadata.x264_params`)."""
    if requested is VideoEncoder.X264:
        return EncoderChoice(X264, "x264 asked for")
    unfit = None
    if pix_fmt not in NVENC_FORMATS:
        unfit = f"the video is {pix_fmt}, which NVENC's H.264 does not code (8-bit 4:2:0 only)"
    elif hdr:
        unfit = "the video carries HDR10 metadata, which FFmpeg's h264_nvenc does not write"
    if requested is VideoEncoder.AUTO and unfit is None and not on_gpu:
        return EncoderChoice(X264, "NVENC not tried: inference runs on the CPU")
    refusal = unfit or nvenc_refusal()
    if refusal is None:
        return EncoderChoice(NVENC, "NVENC opens on this GPU")
    if requested is VideoEncoder.NVENC:
        raise GpuUnavailableError(
            f"--encoder nvenc (encoding.encoder) cannot be used: {refusal}; use encoder x264 or auto,"
            " or run the job on a GPU with NVENC (L4, T4, A10G, L40S; H100 and H200 have none)"
        )
    return EncoderChoice(X264, f"NVENC not used: {refusal}")


@cache
def nvenc_refusal(width: int = 256, height: int = 144) -> str | None:
    """Why h264_nvenc cannot encode in this process (this FFmpeg lacks it, or it does not open with
    `ChunkEncoder`'s settings at this frame size: no NVIDIA driver, no GPU with NVENC or with its
    B-frame references, a container without the `video` capability, a size beyond NVENC's); None:
    it opens."""
    if NVENC not in av.codecs_available:
        return f"this FFmpeg ({av.__version__} of PyAV) has no {NVENC}"
    context: Any = av.CodecContext.create(NVENC, "w")
    context.width, context.height, context.pix_fmt = width, height, ENCODER_PIX_FMT
    context.time_base = Fraction(1, 25)
    context.gop_size, context.max_b_frames = NVENC_GOP, NVENC_B_FRAMES
    context.options = nvenc_options(18)
    try:
        context.open()
    except (av.error.FFmpegError, ValueError) as exc:
        return (
            f"{NVENC} does not open here at {width}x{height} ({reason(exc)}): no GPU with NVENC, no"
            " NVIDIA driver, a container without the video capability, or a size beyond NVENC's"
        )
    return None


def nvenc_options(crf: int) -> dict[str, object]:
    """h264_nvenc at about x264's quality at CRF `crf` (chosen on paper from FFmpeg's and NVIDIA's
    documentation, not measured here: no GPU with NVENC was at hand; see docs/gpu-clusters.md).

    Constant quality (rc vbr, cq = crf, no bitrate cap) is NVENC's counterpart of CRF; p6 and tune hq
    with spatial and temporal adaptive quantisation and a lookahead spend the bits where x264's
    psy-rd and mb-tree would; middle-reference B-frames as x264's b-pyramid."""
    return {
        "preset": "p6",
        "tune": "hq",
        "rc": "vbr",
        "cq": str(crf),
        "b": "0",  # no target bitrate: quality alone decides
        "spatial-aq": "1",
        "temporal-aq": "1",
        "rc-lookahead": "20",
        "b_ref_mode": "middle",
        "profile": "high",
    }


def _open(path: Path) -> Any:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaFileError(path, f"not a readable video ({reason(exc)})") from exc
