"""Decode chunk files to frames and encode processed frames to a chunk file, with PyAV.

Frames stay `av.VideoFrame`s (I420) from decoder to encoder, so a frame without faces is
re-encoded without any colour conversion; callers take BGR arrays only to detect.
The encoder writes Matroska with one H.264 yuv420p stream and the input's timestamps
(Matroska stores them in milliseconds whatever time base is asked for).

Colour is kept exactly: samples keep their range (a full-range frame stays 0-255, a
limited one 16-235) and the encoder tags the stream with the input's range, matrix,
primaries and transfer. Every conversion names its source and destination matrix and
range (`faceblur.colour`). Inputs with more than 8 bits or other chroma layouts are
converted once, on decode, to 8-bit 4:2:0 of the same range and matrix.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.container
import av.error
import cv2
import numpy as np
import numpy.typing as npt
from av.video.frame import PictureType
from av.video.reformatter import ColorRange

from faceblur import colour
from faceblur.errors import InvalidInputError, MediaFileError, reason

log = logging.getLogger(__name__)

ENCODER_PIX_FMT = "yuv420p"
TAIL_SEEK_MARGIN = 8  # frames decoded before the wanted tail when seeking, for safety


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

    @property
    def full_range(self) -> bool:
        return colour.sample_range(self.color_range, self.pix_fmt) is ColorRange.JPEG

    @property
    def converted_on_decode(self) -> bool:
        """Whether frames are changed to 8-bit 4:2:0 on decode (10-bit, 4:2:2, 4:4:4 inputs)."""
        return self.pix_fmt not in (ENCODER_PIX_FMT, "yuvj420p")


def stream_facts(path: Path) -> StreamFacts:
    with _open(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        time_base = stream.time_base
        if time_base is None:
            raise MediaFileError(path, "video stream has no time base")
        rate = stream.average_rate or stream.guessed_rate
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
        )


def decode_frames(path: Path, limit: int | None = None, threads: int = 0) -> Iterator[av.VideoFrame]:
    """Frames of the first video stream in presentation order, I420; `threads` 0: FFmpeg's choice."""
    with _open(path) as container:
        stream = container.streams.video[0]
        _decode_threads(stream, threads)
        count = 0
        try:
            for frame in container.decode(stream):
                if limit is not None and count >= limit:
                    return
                yield _as_i420(frame)
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
                tail.append(_as_i420(frame))
        except av.error.FFmpegError as exc:
            log.debug("seek in %s failed (%s): decoding from the start", path.name, exc)
            return None
    if len(tail) < count + TAIL_SEEK_MARGIN:
        return None
    return list(tail)[-count:]


def _as_i420(frame: av.VideoFrame) -> av.VideoFrame:
    if frame.format.name == ENCODER_PIX_FMT:
        return frame
    return colour.same_colour(frame, ENCODER_PIX_FMT)


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


def frame_from_bgr(image: npt.NDArray[np.uint8], like: av.VideoFrame) -> av.VideoFrame:
    """A yuv420p frame from a BGR image, converted with the colour matrix and range of `like`."""
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    converted = frame.reformat(
        format=ENCODER_PIX_FMT,
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
    width, height = frame.width, frame.height
    if width % 2 or height % 2:
        return frame_from_bgr(painted, frame)
    planes = i420_planes(frame)
    drawn = i420_planes(frame_from_bgr(painted, frame))
    np.copyto(planes[:height], drawn[:height], where=changed)
    blocks = changed[0::2, 0::2] | changed[1::2, 0::2] | changed[0::2, 1::2] | changed[1::2, 1::2]
    chroma_shape = (2, height // 2, width // 2)  # U then V, packed below the Y rows
    np.copyto(planes[height:].reshape(chroma_shape), drawn[height:].reshape(chroma_shape), where=blocks)
    return frame_from_i420(planes, frame)


def _with_metadata(frame: av.VideoFrame, like: av.VideoFrame) -> av.VideoFrame:
    frame.pts, frame.time_base = like.pts, like.time_base
    frame.color_range, frame.colorspace = like.color_range, like.colorspace
    frame.color_primaries, frame.color_trc = like.color_primaries, like.color_trc
    return frame


class ChunkEncoder:
    """Writes frames (with their original pts) to a Matroska file with one H.264 stream.

    Used as a context manager: leaving with an exception closes the file without
    finishing it; the caller owns the (temporary) path and discards it.
    """

    def __init__(self, path: Path, facts: StreamFacts, crf: int, preset: str, threads: int = 0) -> None:
        self.path = path
        self._container: Any = av.open(str(path), mode="w", format="matroska")
        try:
            stream = self._container.add_stream("libx264", rate=facts.frame_rate or Fraction(25))
            stream.width, stream.height = facts.width, facts.height
            stream.pix_fmt = ENCODER_PIX_FMT
            stream.time_base = facts.time_base
            context = stream.codec_context
            context.time_base = facts.time_base  # PyAV rebases frame pts to this: keep them exact
            context.color_range, context.colorspace = facts.color_range, facts.colorspace
            context.color_primaries, context.color_trc = facts.color_primaries, facts.color_trc
            stream.options = {"crf": str(crf), "preset": str(preset)}  # Cython refuses str subclasses
            if threads:  # 1: x264 encodes in the caller's thread, no frame or lookahead threads
                context.thread_count = threads
            self._stream = stream
        except (av.error.FFmpegError, ValueError) as exc:
            self._container.close()
            raise InvalidInputError(f"cannot set up the H.264 encoder: {exc}") from exc
        self.frames = 0

    def encode(self, frame: av.VideoFrame) -> None:
        frame.pict_type = PictureType.NONE  # let x264 choose frame types, not copy the input's
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


def _open(path: Path) -> Any:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaFileError(path, f"not a readable video ({reason(exc)})") from exc
