"""Concatenate encoded chunk files into one video by remuxing: no decoding, no re-encoding.

Chunk files may keep timestamps only to the millisecond (Matroska), so each frame's pts
is restored from the manifest: the k-th frame of a chunk in presentation order gets the
chunk's k-th original pts. Decode timestamps are rebuilt for the whole output at once
(sorted pts shifted by the largest reorder delay), which keeps them strictly increasing
across chunk boundaries whatever B-frame delay each chunk's encoder used. Audio packets
from `audio.mka` are interleaved by time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from faceblur.errors import InvalidInputError, MediaFileError, reason

log = logging.getLogger(__name__)

# Container tags that describe the old file rather than the content: never copied.
_TECHNICAL_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


@dataclass(frozen=True)
class Part:
    """One chunk file and the original pts of its frames in presentation order (may be empty)."""

    path: Path
    pts: Sequence[int]
    expected_frames: int


@dataclass(frozen=True)
class OutputSpec:
    path: Path
    format: str  # "mp4", "mov" or "matroska"
    time_base: Fraction  # the input video's
    end_pts: int  # where the last frame ends, in time_base
    rotation: int = 0  # display matrix, degrees counter-clockwise
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class _Timing:
    pts: list[int]  # per packet in file order
    dts: list[int]
    duration: list[int]


def container_format(name: str) -> str:
    """Output format from the file name: Matroska for .mkv/.mka/.webm-less names, MOV for .mov, else MP4."""
    lowered = name.lower()
    if lowered.endswith(".mkv"):
        return "matroska"
    if lowered.endswith(".mov"):
        return "mov"
    return "mp4"


def packet_pts(path: Path) -> tuple[list[int], Fraction]:
    """pts of every video packet in file (decode) order, and the stream's time base."""
    with _open(path) as container:
        stream = container.streams.video[0]
        pts = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                raise MediaFileError(path, "a packet without timestamps")
            pts.append(stamp)
        assert stream.time_base is not None
        return pts, Fraction(stream.time_base)


def restore_pts(file_pts: Sequence[int], original: Sequence[int]) -> list[int]:
    """Map each packet to the original pts of the same presentation rank."""
    order = sorted(range(len(file_pts)), key=lambda i: file_pts[i])
    restored = [0] * len(file_pts)
    for rank, i in enumerate(order):
        restored[i] = original[rank]
    return restored


def plan_timing(pts_in_file_order: Sequence[int], end_pts: int) -> _Timing:
    """Decode timestamps and durations for packets given their pts in file order."""
    presented = sorted(pts_in_file_order)
    if len(set(presented)) != len(presented):
        raise InvalidInputError("two frames of the output would share one timestamp")
    shift = max(0, *(p - q for p, q in zip(presented, pts_in_file_order, strict=True)))
    following = dict(itertools.pairwise([*presented, end_pts]))
    return _Timing(
        pts=list(pts_in_file_order),
        dts=[p - shift for p in presented],
        duration=[max(1, following[p] - p) for p in pts_in_file_order],
    )


def concat(parts: Sequence[Part], spec: OutputSpec, audio: Path | None = None) -> int:
    """Write the concatenation of `parts` (+ every audio stream of `audio`) to spec.path."""
    all_pts: list[int] = []
    for part in parts:
        file_pts, file_tb = packet_pts(part.path)
        if len(file_pts) != part.expected_frames:
            raise MediaFileError(
                part.path, f"has {len(file_pts)} frames, the manifest expects {part.expected_frames}"
            )
        if part.pts:
            all_pts += restore_pts(file_pts, part.pts)
        else:
            all_pts += [round(p * file_tb / spec.time_base) for p in file_pts]
    timing = plan_timing(all_pts, spec.end_pts)
    options = {}
    if spec.format in ("mp4", "mov") and spec.time_base.numerator == 1:
        options["video_track_timescale"] = str(spec.time_base.denominator)
    if spec.format in ("mp4", "mov"):
        options["movflags"] = "+faststart"
    try:
        with av.open(str(spec.path), mode="w", format=spec.format, options=options) as output:  # type: ignore[attr-defined]
            _write(output, parts, spec, timing, audio)
    except av.error.FFmpegError as exc:
        raise InvalidInputError(f"cannot write the {spec.format} output: {exc.strerror or exc}") from None
    return len(all_pts)


def _write(output: Any, parts: Sequence[Part], spec: OutputSpec, timing: _Timing, audio: Path | None) -> None:
    for key, value in (spec.tags or {}).items():
        if key.lower() not in _TECHNICAL_TAGS:
            output.metadata[key] = value
    with _open(parts[0].path) as first:
        video_out = output.add_stream_from_template(first.streams.video[0])
    video_out.time_base = spec.time_base
    if spec.rotation:
        video_out.set_display_rotation(spec.rotation)
    with _AudioSource(output, audio) as sound:
        streams = [_video_packets(parts, timing, video_out, spec.time_base), *sound.packet_streams()]
        for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            output.mux(packet)


def _video_packets(
    parts: Sequence[Part], timing: _Timing, out_stream: Any, time_base: Fraction
) -> Iterator[tuple[Fraction, int, Any]]:
    n = 0
    for part in parts:
        with _open(part.path) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size == 0:
                    continue
                packet.stream = out_stream
                packet.time_base = time_base
                packet.pts, packet.dts, packet.duration = timing.pts[n], timing.dts[n], timing.duration[n]
                yield timing.dts[n] * time_base, 0, packet
                n += 1


class _AudioSource:
    """Packets of every audio stream in `audio.mka`, mapped to new output streams."""

    def __init__(self, output: Any, path: Path | None) -> None:
        self._container: Any = _open(path) if path is not None else None
        self._map: dict[int, Any] = {}
        if self._container is None:
            return
        for stream in self._container.streams.audio:
            try:
                out = output.add_stream_from_template(stream)
            except (ValueError, av.error.FFmpegError) as exc:
                raise InvalidInputError(
                    f"audio codec {stream.codec_context.name} cannot go into this container: {exc}; use .mkv"
                ) from None
            for key, value in stream.metadata.items():
                if key.lower() not in _TECHNICAL_TAGS:
                    out.metadata[key] = value
            self._map[stream.index] = out

    def packet_streams(self) -> list[Iterator[tuple[Fraction, int, Any]]]:
        if self._container is None or not self._map:
            return []
        return [self._packets()]

    def _packets(self) -> Iterator[tuple[Fraction, int, Any]]:
        for packet in self._container.demux(*self._container.streams.audio):
            if packet.size == 0 or packet.dts is None:
                continue
            when = packet.dts * packet.time_base
            packet.stream = self._map[packet.stream.index]
            yield when, 1, packet

    def __enter__(self) -> _AudioSource:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._container is not None:
            self._container.close()


def _open(path: Path) -> Any:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaFileError(path, f"not a readable video ({reason(exc)})") from None
