"""Probe: the facts of an input video, read with PyAV, exact where it matters.

The frame count comes from demuxing every packet of the video stream (container
headers often guess), the frame rate is called variable when the gaps between
consecutive timestamps differ by more than rounding, and the rotation comes from the
display matrix the decoder attaches to frames. Inputs that can never be processed
(unreadable, no video stream, no frames) are refused with `InvalidInputError`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.stream
import av.video.stream
from faceblur_contract import defaults as d
from faceblur_contract.enums import TruncatedInput

from faceblur.errors import InputTruncatedError, InvalidInputError, ObjectNotFoundError, reason
from faceblur.job.manifest import AudioStreamInfo, VideoInfo

log = logging.getLogger(__name__)

_NETWORK_OPTIONS = {"rw_timeout": "30000000", "reconnect": "1", "reconnect_streamed": "1"}

# FFmpeg's names (as ffprobe prints them) for the AVColor* enum values; unspecified -> None.
_COLOR_RANGES = {1: "tv", 2: "pc"}
_COLOR_PRIMARIES = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}  # fmt: skip
_COLOR_TRCS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
_COLOR_SPACES = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
    9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c",
    14: "ictcp",
}  # fmt: skip


@dataclass(frozen=True)
class FrameTimes:
    """Presentation timestamps of every frame (sorted) and which frames are keyframes."""

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]  # frame numbers (indexes into pts) of keyframe packets
    last_duration: int  # duration of the last frame in time-base ticks (0 when unknown)
    decode_order: tuple[int, ...] = ()  # the same timestamps in packet (decode) order

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    @property
    def end_pts(self) -> int:
        return self.pts[-1] + self.last_duration


def is_variable_frame_rate(pts: Sequence[int]) -> bool:
    """True when frame gaps vary beyond timestamp rounding (1 tick, or 2% of the typical gap)."""
    gaps = [b - a for a, b in itertools.pairwise(pts)]
    if len(gaps) < 2:
        return False
    typical = statistics.median(gaps)
    tolerance = max(1.0, 0.02 * typical)
    return any(abs(g - typical) > tolerance for g in gaps)


def normalize_rotation(degrees: float) -> int:
    """Display-matrix angle (counter-clockwise, maybe negative) -> one of 0, 90, 180, 270."""
    return round(degrees / 90.0) * 90 % 360


def color_name(table: dict[int, str], value: int | None) -> str | None:
    return table.get(int(value)) if value is not None else None


@contextmanager
def open_media(source: str | Path, display_name: str | None = None) -> Iterator[av.container.InputContainer]:
    """Open a local file or an http(s) URL for demuxing; failures become one-line errors that name
    `display_name` (what the user gave, e.g. s3://bucket/key), not a downloaded copy's scratch path."""
    text = str(source)
    name = display_name or text
    is_url = "://" in text
    if not is_url and not Path(text).is_file():
        raise ObjectNotFoundError(f"no such file: {name}")
    try:
        container = av.open(text, mode="r", options=_NETWORK_OPTIONS if is_url else None, timeout=60.0)
    except av.error.HTTPNotFoundError:
        raise ObjectNotFoundError(f"not found: {name}") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"cannot read {name}: not a readable media file ({reason(exc)});"
            " check that it is a video and that its upload is complete"
        ) from None
    try:
        yield container
    finally:
        container.close()


def video_stream(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art is not video)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    kinds = ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams) or "none"
    raise InvalidInputError(f"{name} has no video stream (streams: {kinds})")


def scan_video(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    name: str,
    *,
    readable: bool = False,
) -> tuple[FrameTimes, int, str | None]:
    """Demux every packet of the stream, collecting timestamps and keyframes, and decode just
    enough packets for the first frame: it proves the stream decodes and carries the rotation.

    The audio and subtitles are demuxed too (no decoding), to see whether the file ends before its
    header says (`truncation`). A truncated input raises `InputTruncatedError` naming `name`;
    with `readable` its frames that can be read are kept and the third value says what is missing."""
    entries: list[tuple[int, bool]] = []
    durations: dict[int, int] = {}
    rotation: int | None = None
    reached = 0.0  # the latest end, in seconds, of any packet read
    damage: str | None = None
    others = [s for s in container.streams if s.index != stream.index and s.type in ("audio", "subtitle")]
    try:
        for packet in container.demux(stream, *others):
            if packet.size == 0:
                continue  # the flush packet at the end
            reached = max(reached, _packet_end(packet))
            if packet.stream.index != stream.index:
                continue
            if packet.is_corrupt:  # short read (the file ends here) or a damaged packet, as the demuxer says
                damage = f"its video packet {len(entries)} is cut short or damaged"
                break
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                raise InvalidInputError(f"{name}: video packets carry no timestamps; remux it to MP4 or MKV")
            entries.append((stamp, packet.is_keyframe))
            durations[stamp] = packet.duration or 0
            if rotation is None:
                rotation = _rotation_of_first(stream.decode(packet))
        if rotation is None and entries:
            rotation = _rotation_of_first(stream.decode(None))
    except av.error.FFmpegError as exc:
        damage = f"it cannot be read after {len(entries)} video packets ({reason(exc)})"
    damage = damage or _short_of_declared(container, reached)
    if not entries:
        raise InvalidInputError(f"{name} has a video stream but no frames")
    if rotation is None:
        raise InvalidInputError(f"{name}: the video stream has packets but no frame decodes")
    if damage is not None:
        entries = _complete_frames(entries, stream.codec_context.has_b_frames)
        if not readable or not entries:
            raise InputTruncatedError(
                f"{name} is truncated or damaged: {damage}; nothing was processed. Upload it again"
                f" complete, or anonymize the {len(entries)} frames that can be read"
                f" (faceblur {d.TRUNCATED_INPUT.flag} {TruncatedInput.READABLE.value}; in a FaceBlurJob"
                f" spec.input.ifTruncated: {TruncatedInput.READABLE.value})"
            )
        log.warning(
            "%s is truncated or damaged: %s; keeping its %d readable frames", name, damage, len(entries)
        )
    decode_order = tuple(p for p, _ in entries)
    entries.sort()
    pts = tuple(p for p, _ in entries)
    if len(set(pts)) != len(pts):
        raise InvalidInputError(f"{name}: several video frames share one timestamp; the file is damaged")
    keyframes = tuple(n for n, (_, key) in enumerate(entries) if key)
    last = durations.get(pts[-1], 0)
    if last <= 0 and len(pts) > 1:
        last = int(statistics.median(b - a for a, b in itertools.pairwise(pts)))
    return FrameTimes(pts, keyframes, last, decode_order), rotation, damage


def _packet_end(packet: av.Packet[Any]) -> float:
    """When a packet's media ends, in seconds (0 without a timestamp)."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None or packet.time_base is None:
        return 0.0
    return float((stamp + (packet.duration or 0)) * packet.time_base)


# Containers whose header states the duration of the whole file (MP4's mvhd, Matroska's Segment
# Info), which a cut file keeps; others' durations are FFmpeg's estimates, too rough to judge by.
_DECLARING_FORMATS = ("mov", "mp4", "matroska", "webm")
_SHORT_S = 0.5  # how much earlier than declared the media may end (rounding, an audio tail)
_SHORT_SHARE = 0.01


def _short_of_declared(container: av.container.InputContainer, reached: float) -> str | None:
    """Why the file is truncated, if its packets end well before the duration its header declares."""
    if not container.duration or not set(container.format.name.split(",")) & set(_DECLARING_FORMATS):
        return None
    declared = container.duration / av.time_base
    start = (container.start_time or 0) / av.time_base
    if reached - start >= declared - max(_SHORT_S, _SHORT_SHARE * declared):
        return None
    return f"its media ends after {reached - start:.2f} s of the {declared:.2f} s its header declares"


def _complete_frames(entries: list[tuple[int, bool]], reorder: int) -> list[tuple[int, bool]]:
    """The frames of a cut stream (in decode order) that a player would show without a gap.

    A decoder holding `reorder` frames back (B-frames) shows a frame once `reorder` later ones have
    arrived: the frames still held back where the stream ends may lack a predecessor cut off with
    the rest, so they are dropped. The depth is the decoder's, or what the last packets show."""
    tail = [p for p, _ in entries[-64:]]
    shown = max((sum(q > p for q in tail[:i]) for i, p in enumerate(tail)), default=0)
    depth = max(reorder, shown)
    held: list[int] = []
    complete: set[int] = set()
    for stamp, _ in entries:
        heapq.heappush(held, stamp)
        if len(held) > depth:
            complete.add(heapq.heappop(held))
    return [entry for entry in entries if entry[0] in complete]


def _rotation_of_first(frames: Sequence[av.VideoFrame]) -> int | None:
    return normalize_rotation(frames[0].rotation) if frames else None


def probe(source: str | Path, *, display_name: str | None = None) -> VideoInfo:
    """All facts of a local file or http(s) URL as a `VideoInfo`."""
    info, _ = probe_with_frames(source, display_name=display_name)
    return info


def probe_with_frames(
    source: str | Path, *, display_name: str | None = None, readable: bool = False
) -> tuple[VideoInfo, FrameTimes]:
    """`probe` plus every frame's timestamp and the keyframes, which split needs for cutting.

    A truncated input is refused (`InputTruncatedError`) unless `readable`: then the frames that can
    be read are its frames, and `VideoInfo.truncated` says what is missing."""
    name = display_name or str(source)
    with open_media(source, name) as container:
        stream = video_stream(container, name)
        times, rotation, damage = scan_video(container, stream, name, readable=readable)
        info = _video_info(container, stream, times, rotation, source)
    if damage is not None:
        info = info.model_copy(update={"truncated": damage})
    log.info(
        "probed %s: %dx%d, %d frames, %.2fs", name, info.width, info.height, info.frame_count, info.duration_s
    )
    return info, times


def _video_info(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    times: FrameTimes,
    rotation: int,
    source: str | Path,
) -> VideoInfo:
    ctx = stream.codec_context
    time_base = Fraction(stream.time_base or Fraction(1, 90000))
    local = "://" not in str(source)
    return VideoInfo(
        container=container.format.name,
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        pix_fmt=ctx.pix_fmt,
        time_base=f"{time_base.numerator}/{time_base.denominator}",
        avg_frame_rate=_rate(stream.average_rate),
        nominal_frame_rate=_rate(stream.base_rate),
        variable_frame_rate=is_variable_frame_rate(times.pts),
        frame_count=times.frame_count,
        duration_s=float((times.end_pts - times.pts[0]) * time_base),
        start_pts=times.pts[0],
        rotation=rotation,
        color_range=color_name(_COLOR_RANGES, ctx.color_range),
        color_space=color_name(_COLOR_SPACES, ctx.colorspace),
        color_primaries=color_name(_COLOR_PRIMARIES, ctx.color_primaries),
        color_trc=color_name(_COLOR_TRCS, ctx.color_trc),
        bit_rate=stream.bit_rate or container.bit_rate or None,
        size_bytes=os.path.getsize(source) if local else (container.size or None),
        keyframes=len(times.keyframes),
        audio=[_audio_info(s) for s in container.streams.audio],
        tags={str(k): str(v) for k, v in container.metadata.items()},
    )


def _audio_info(stream: av.audio.stream.AudioStream) -> AudioStreamInfo:
    language = stream.metadata.get("language")
    return AudioStreamInfo(
        index=stream.index,
        codec=stream.codec_context.name,
        sample_rate=stream.sample_rate or None,
        channels=stream.codec_context.channels or None,
        language=language if language and language != "und" else None,
    )


def _rate(rate: Fraction | None) -> str | None:
    if not rate:
        return None
    return f"{rate.numerator}/{rate.denominator}"
