"""Concatenate encoded chunk files into one video by remuxing: no decoding, no re-encoding.

Chunk files may keep timestamps only to the millisecond (Matroska), so each frame's pts
is restored from the manifest: the k-th frame of a chunk in presentation order gets the
chunk's k-th original pts. Decode timestamps are rebuilt for the whole output at once
(sorted pts shifted by the largest reorder delay), which keeps them strictly increasing
across chunk boundaries whatever B-frame delay each chunk's encoder used. The streams the
output plan keeps besides the video come from the job's `audio.mka`, copied or (audio the
container cannot hold) transcoded to AAC, and are interleaved by time; the plan's chapters are
written too. Every FFmpeg failure is told as the stream, the container and what to do.
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
from faceblur.job.manifest import ChapterInfo, StreamAction, StreamPlan
from faceblur.media.streams import (
    CONTAINER_NAMES,
    SubtitleConverter,
    encoder_refusal,
    refusal,
    same_codec,
    standard_layout,
    write_chapters,
)

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
    name: str = ""  # the user's output (URL or path), for messages; the scratch path is never shown
    chapters: Sequence[ChapterInfo] = ()
    # The start timecode the plan keeps: the video's `timecode` tag, of which the MOV and MP4 muxers
    # make a timecode track counting frames at frame_rate ("num/den", the input's average)
    timecode: str | None = None
    frame_rate: str | None = None

    @property
    def shown(self) -> str:
        return f"the {CONTAINER_NAMES.get(self.format, self.format)} output {self.name or ''}".rstrip()


@dataclass(frozen=True)
class SideInput:
    """The job's side file and, per stream of it in order, what the plan does with it."""

    path: Path
    streams: Sequence[StreamPlan]  # one per stream of the file, in its order (DROP: left out)


@dataclass(frozen=True)
class _Timing:
    pts: list[int]  # per packet in file order
    dts: list[int]
    duration: list[int]


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


def concat(parts: Sequence[Part], spec: OutputSpec, side: SideInput | None = None) -> int:
    """Write the concatenation of `parts` (+ the streams `side` keeps) to spec.path."""
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
            _write(output, parts, spec, timing, side)
    except av.error.FFmpegError as exc:  # a failure _write did not place on one stream
        raise InvalidInputError(
            f"cannot write {spec.shown}: FFmpeg's muxer failed ({reason(exc)}); write it as .mkv,"
            " which holds every stream, or report this with the job's log"
        ) from None
    if spec.timecode and spec.format in ("mp4", "mov"):
        _check_timecode_track(spec)
    return len(all_pts)


def _check_timecode_track(spec: OutputSpec) -> None:
    """The timecode track the plan promised is there: a muxer that cannot count a timecode may leave
    its track out without failing."""
    with av.open(str(spec.path)) as written:
        found = [s.metadata.get("timecode") for s in written.streams if s.type == "data"]
    if spec.timecode not in found:
        raise InvalidInputError(
            f"cannot write the timecode track (start {spec.timecode}) into {spec.shown}: FFmpeg's muxer"
            " left it out; write it as .mkv, which keeps the timecode as a tag, or report this with"
            " the job's log"
        )


def _write(
    output: Any, parts: Sequence[Part], spec: OutputSpec, timing: _Timing, side: SideInput | None
) -> None:
    for key, value in (spec.tags or {}).items():
        if key.lower() not in _TECHNICAL_TAGS:
            output.metadata[key] = value
    with _open(parts[0].path) as first:
        template = first.streams.video[0]
        codec = template.codec_context.name
        try:
            video_out = output.add_stream_from_template(template)
        except (ValueError, av.error.FFmpegError) as exc:
            raise InvalidInputError(
                f"cannot write the anonymized {codec} video into {spec.shown} ({reason(exc)}):"
                " write it as .mkv or .mp4"
            ) from None
    video_out.time_base = spec.time_base
    if spec.rotation:
        video_out.set_display_rotation(spec.rotation)
    if spec.timecode:
        video_out.metadata["timecode"] = spec.timecode
        if spec.frame_rate:  # else the muxer counts at 1/time_base and refuses (fps too large)
            video_out.codec_context.framerate = Fraction(spec.frame_rate)
    write_chapters(output, spec.chapters)
    with _SideSource(output, side, spec) as sound:
        try:
            output.start_encoding()
        except av.error.FFmpegError as exc:
            raise InvalidInputError(_header_failure(spec, codec, sound, exc)) from None
        what = {video_out.index: f"the anonymized {codec} video", **sound.described}
        streams = [_video_packets(parts, timing, video_out, spec.time_base), *sound.packet_streams()]
        for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            index = packet.stream.index
            try:
                output.mux(packet)
            except av.error.FFmpegError as exc:
                raise InvalidInputError(
                    f"cannot write {what.get(index, f'stream #{index}')} into {spec.shown}"
                    f" ({reason(exc)}); write it as .mkv, which holds every stream"
                ) from None


def _header_failure(spec: OutputSpec, video_codec: str, side: _SideSource, exc: av.error.FFmpegError) -> str:
    """The muxer refused the header: name the streams it refuses when tried one by one."""
    refused = [side.described[i] for i, t in side.templates.items() if refusal(spec.format, t) is not None]
    refused += [
        f"{side.described[i]} encoded as {codec}"
        for i, (codec, rate, channels) in side.encoders.items()
        if encoder_refusal(spec.format, codec, rate, channels) is not None
    ]
    culprit = ", ".join(refused) or f"the anonymized {video_codec} video or one of the kept streams"
    return (
        f"cannot write {spec.shown}: {CONTAINER_NAMES.get(spec.format, spec.format)} refuses {culprit}"
        f" ({reason(exc)}); write it as .mkv, which holds every stream"
    )


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


class _SideSource:
    """The plan's kept streams of the side file, each mapped to an output stream: packets copied, or
    (TRANSCODE) decoded and encoded again."""

    def __init__(self, output: Any, side: SideInput | None, spec: OutputSpec) -> None:
        self._container: Any = _open(side.path) if side is not None else None
        self._copy: dict[int, Any] = {}  # side stream index -> output stream
        self._transcode: dict[int, tuple[Any, Any]] = {}  # side stream index -> (decoder, encoder)
        self._subtitles: dict[int, SubtitleConverter] = {}  # side stream index -> text converted
        self.described: dict[int, str] = {}  # output stream index -> what it is, for messages
        self.templates: dict[int, Any] = {}  # output stream index -> the side stream copied into it
        self.encoders: dict[int, tuple[str, int, int]] = {}  # output stream index -> codec, rate, channels
        if self._container is None or side is None:
            return
        streams = list(self._container.streams)
        if len(streams) != len(side.streams):
            raise MediaFileError(
                side.path, f"has {len(streams)} streams, the manifest lists {len(side.streams)}"
            )
        for stream, plan in zip(streams, side.streams, strict=True):
            if plan.action is StreamAction.DROP:
                continue
            what = f"{plan.kind} #{plan.index} ({plan.codec})"
            try:
                out = self._add(output, stream, plan)
            except (ValueError, av.error.FFmpegError) as exc:
                raise InvalidInputError(
                    f"cannot write {what} into {spec.shown} ({reason(exc)}): write it as .mkv,"
                    " which holds every stream"
                ) from None
            for key, value in stream.metadata.items():
                if key.lower() not in _TECHNICAL_TAGS:
                    out.metadata[key] = value
            self.described[out.index] = what

    def _add(self, output: Any, stream: Any, plan: StreamPlan) -> Any:
        if plan.kind == "subtitle":  # the side file may carry it as subrip (MP4's mov_text)
            wanted = plan.to_codec or plan.codec
            if not same_codec(stream.codec_context.name, wanted):
                self._subtitles[stream.index] = SubtitleConverter(output, stream, wanted)
                return self._subtitles[stream.index].stream
        if plan.action is StreamAction.COPY or plan.kind == "subtitle":
            out = output.add_stream_from_template(stream)
            self._copy[stream.index] = out
            self.templates[out.index] = stream
            return out
        ctx = stream.codec_context
        out = output.add_stream(plan.to_codec, rate=ctx.sample_rate, layout=standard_layout(ctx.channels))
        out.bit_rate = plan.bit_rate
        out.time_base = Fraction(1, ctx.sample_rate)
        self._transcode[stream.index] = (stream, out)
        self.encoders[out.index] = (str(plan.to_codec), ctx.sample_rate, ctx.channels)
        return out

    def packet_streams(self) -> list[Iterator[tuple[Fraction, int, Any]]]:
        if self._container is None or not (self._copy or self._transcode or self._subtitles):
            return []
        return [self._packets()]

    def _packets(self) -> Iterator[tuple[Fraction, int, Any]]:
        used = {*self._copy, *self._transcode, *self._subtitles}
        for packet in self._container.demux(*(s for s in self._container.streams if s.index in used)):
            index = packet.stream.index
            if index in self._transcode:
                yield from self._encoded(index, packet)
                continue
            if packet.size == 0 or packet.dts is None:
                continue
            when = packet.dts * packet.time_base
            if index in self._subtitles:
                packet = self._subtitles[index].convert(packet)
                if packet is None:
                    continue
            else:
                packet.stream = self._copy[index]
            yield when, 1, packet

    def _encoded(self, index: int, packet: Any) -> Iterator[tuple[Fraction, int, Any]]:
        decoder, encoder = self._transcode[index]
        frames = decoder.decode(None if packet.size == 0 else packet)
        if packet.size == 0:  # the demuxer's flush: drain the decoder, then the encoder
            encoded = [p for frame in frames for p in encoder.encode(frame)] + list(encoder.encode(None))
        else:
            encoded = [p for frame in frames for p in encoder.encode(frame)]
        for out in encoded:
            if out.dts is None:
                continue
            yield out.dts * out.time_base, 1, out

    def __enter__(self) -> _SideSource:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._container is not None:
            self._container.close()


def _open(path: Path) -> Any:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaFileError(path, f"not a readable video ({reason(exc)})") from None
