"""Split: cut an input into chunks that cover every frame exactly once, plus its audio.

Before any work the output is planned from the probe (`job.outputplan`: the container, and for
each stream besides the video copy, transcode or drop, with the reason) and written into the
manifest. One pass over the input then writes every chunk and `audio.mka`, which carries the
streams the plan keeps (audio and subtitles, copied as they are: compose transcodes what the plan
says). Two ways to cut:

* COPY (the default whenever the keyframes allow the requested chunking): packets are
  remuxed untouched, so chunks are lossless, cost no decoding and take 1.0x the input.
* REENCODE (any frame can start a chunk): each chunk is a fresh H.264 encode starting
  with a keyframe. To stay near-lossless yet bounded in size we use capped CRF:
  CRF 16 (visually lossless) under a VBV cap of 1.4x the input's bit rate whose buffer
  holds what the input spends on the chunk's own time span. Each chunk must open with
  a keyframe the input may not have there; the buffer, sized by the chunk and not by a
  fixed time, is what keeps those extra keyframes paid for out of the chunk's own budget,
  so the chunks stay within about 1.5x the input however finely it is cut.

Chunks are MP4 files because MP4 keeps the input's time base and timestamps exactly
(Matroska rounds to milliseconds); the manifest also lists every frame's pts. The
manifest is written last: its presence means the split is complete, and running split
again on a finished job does nothing.
"""

from __future__ import annotations

import bisect
import logging
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.stream
import cv2
from faceblur_contract.enums import SplitMode, TruncatedInput

from faceblur.errors import InvalidInputError, reason
from faceblur.job.chunking import ChunkPlan, FrameRange, choose_plan, chunk_count, pts_runs
from faceblur.job.claim import JobClaim, check_prefix, write_claim
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Chunk, Manifest, OutputPlan, VideoInfo
from faceblur.job.outputplan import log_plan, plan_output
from faceblur.job.outputs import check_output
from faceblur.job.state import load_manifest
from faceblur.media import colour
from faceblur.media.codec import HdrMetadata, processing_format, to_bgr, x264_options
from faceblur.media.inputs import input_fingerprint, localize_input
from faceblur.media.probe import FrameTimes, open_media, probe_with_frames, video_stream
from faceblur.media.streams import SubtitleConverter, chapters, refusal, side_streams
from faceblur.storage import ObjectStore, S3Settings

log = logging.getLogger(__name__)

CHUNK_EXT = "mp4"
REENCODE_CRF = 16
REENCODE_PRESET = "veryfast"
REENCODE_MAX_RATE_FACTOR = 1.4
_X264_PIX_FMTS = {"yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"}
_EXPORT_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}


class CopyImpossibleError(InvalidInputError):
    """The stream cannot be stream-copied into chunk files (AUTO then re-encodes)."""


def split(
    input_url: str,
    store: ObjectStore,
    layout: JobLayout,
    *,
    chunks: int | None = None,
    chunk_frames: int | None = None,
    at_least: int = 1,
    mode: SplitMode = SplitMode.AUTO,
    export_frames: str | None = None,
    s3_settings: S3Settings | None = None,
    owner: str | None = None,
    output_url: str | None = None,
    overwrite: bool = False,
    if_truncated: TruncatedInput = TruncatedInput.REFUSE,
) -> Manifest:
    """Cut `input_url` into the job at `layout`; returns the manifest (the existing one if done).

    `owner` (a FaceBlurJob's uid; None for a local run) claims the prefix first: a prefix holding
    another job's objects, or ones cut from another input, is refused before any work; so is an
    `output_url` that is the input, or that exists and is not the job's own unless `overwrite`,
    and a truncated input unless `if_truncated` lets the job process its readable frames."""
    claim = JobClaim(owner=owner, input=input_url, fingerprint=input_fingerprint(input_url, s3_settings))
    held = check_prefix(store, layout, claim)
    if output_url is not None:
        check_output(input_url, output_url, store, layout, overwrite=overwrite, s3_settings=s3_settings)
    if store.exists(layout.manifest):
        manifest = load_manifest(store, layout)
        log.info("split already done: %s has %d chunks", layout.manifest, len(manifest.chunks))
        return manifest
    if export_frames is not None and export_frames not in _EXPORT_FORMATS:
        raise InvalidInputError(f"frame export format must be png or jpg, not {export_frames!r}")
    with tempfile.TemporaryDirectory(prefix="faceblur-split-") as tmp:
        folder = Path(tmp)
        source = localize_input(input_url, folder, s3_settings)
        readable = if_truncated is TruncatedInput.READABLE
        info, times = probe_with_frames(source, display_name=input_url, readable=readable)
        if info.truncated is not None and mode is not SplitMode.REENCODE:
            # A copied chunk would carry the packets of frames cut off with the file's end.
            log.warning("%s is truncated: its readable frames are cut by re-encoding", input_url)
            mode = SplitMode.REENCODE
        output_plan = _plan_output(source, input_url, output_url).model_copy(
            update={"video": processing_format(info.pix_fmt or "yuv420p", info.width, info.height)}
        )
        count = chunk_count(info.frame_count, info.duration_s, chunks, chunk_frames, at_least)
        plan = choose_plan(times, count, mode)
        if not held:
            write_claim(store, layout, claim)  # before the job's first object
        try:
            written = _cut(source, input_url, plan, info, times, output_plan, store, layout, folder)
        except CopyImpossibleError as exc:
            if mode is SplitMode.COPY:
                raise
            log.warning("stream copy impossible (%s): re-encoding instead", exc)
            plan = choose_plan(times, count, SplitMode.REENCODE)
            written = _cut(source, input_url, plan, info, times, output_plan, store, layout, folder)
        if export_frames is not None:
            _export_frames(source, input_url, info, store, layout, _EXPORT_FORMATS[export_frames])
        manifest = Manifest(
            input=input_url, split_mode=plan.mode, video=info, chunks=written, output=output_plan
        )
        store.put_bytes(layout.manifest, manifest.to_json(), "application/json")
    _log_storage(manifest, store)
    return manifest


def _plan_output(source: str, name: str, output_url: str | None) -> OutputPlan:
    """The output plan from the input's streams and chapters (FFmpeg's muxers say what each
    container holds); a split not told the output plans for a name whose container is ours."""
    with open_media(source, name) as container:
        video = video_stream(container, name)
        by_index = {s.index: s for s in container.streams}
        plan = plan_output(
            output_url or "",
            side_streams(container, video),
            chapters(container),
            lambda fmt, stream: refusal(fmt, by_index[stream.index]),
        )
    log_plan(plan, output_url or name)
    return plan


def _cut(
    source: str,
    name: str,
    plan: ChunkPlan,
    info: VideoInfo,
    times: FrameTimes,
    output_plan: OutputPlan,
    store: ObjectStore,
    layout: JobLayout,
    folder: Path,
) -> list[Chunk]:
    ranges = plan.ranges(times.frame_count)
    chunks = [_chunk_doc(i, r, times, layout) for i, r in enumerate(ranges)]
    publish = _Publisher(store, layout, folder)
    with open_media(source, name) as container:
        video = video_stream(container, name)
        audio = [container.streams[s.index] for s in output_plan.kept]
        cutter: _Cutter
        if plan.mode is SplitMode.COPY:
            cutter = _CopyCutter(video, ranges, times, publish)
        else:
            cutter = _ReencodeCutter(video, ranges, times, info, publish)
        audio_sink = _AudioSink(audio, folder / "audio.mka", name) if audio else None
        current: av.Packet[Any] | None = None  # for a failure's message: which stream, where
        try:
            for packet in container.demux(video, *audio):
                current = packet
                if packet.size == 0 and packet.stream.type != "video":
                    continue
                if packet.stream.type == "video":
                    cutter.feed(packet)
                elif audio_sink is not None:
                    audio_sink.feed(packet)
            current = None
            cutter.finish()
        except av.error.FFmpegError as exc:
            raise InvalidInputError(_read_failure(name, video, current, exc)) from None
        finally:
            cutter.close()
            if audio_sink is not None:
                audio_sink.close()
    if audio_sink is not None:
        store.upload(audio_sink.path, layout.audio, "video/x-matroska")
    log.info("split %s into %d chunks by %s", name, len(chunks), plan.mode.value)
    return chunks


def _read_failure(name: str, video: Any, packet: Any, exc: av.error.FFmpegError) -> str:
    """An FFmpeg failure while cutting, told as the stream, where in it, and what to do."""
    stream = packet.stream if packet is not None else video
    where = ""
    if packet is not None and packet.pts is not None and packet.time_base is not None:
        where = f" at {float(packet.pts * packet.time_base):.3f} s"
    what = f"its {stream.type} stream #{stream.index} ({stream.codec_context.name})"
    return (
        f"cannot cut {name}: {what} fails{where} ({reason(exc)}); check that the file plays to its end,"
        " or convert it first (ffmpeg -i INPUT -map 0 -c:v libx264 -crf 16 -c:a copy OUTPUT.mkv)"
    )


def _chunk_doc(index: int, frames: FrameRange, times: FrameTimes, layout: JobLayout) -> Chunk:
    pts = times.pts[frames.first : frames.last + 1]
    return Chunk(
        index=index,
        first_frame=frames.first,
        last_frame=frames.last,
        first_pts=pts[0],
        last_pts=pts[-1],
        key=layout.chunk(index, CHUNK_EXT),
        pts_runs=pts_runs(pts),
    )


@dataclass
class _Publisher:
    """Uploads a finished chunk file under its final key and removes the local copy."""

    store: ObjectStore
    layout: JobLayout
    folder: Path

    def path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.{CHUNK_EXT}"

    def __call__(self, index: int) -> None:
        path = self.path(index)
        self.store.upload(path, self.layout.chunk(index, CHUNK_EXT), "video/mp4")
        path.unlink()


class _Cutter:
    def feed(self, packet: av.Packet[Any]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


@dataclass
class _CopyCutter(_Cutter):
    """Remuxes packets into the chunk their pts belongs to (decode order is chunk order)."""

    video: av.video.stream.VideoStream
    ranges: list[FrameRange]
    times: FrameTimes
    publish: _Publisher
    _starts: list[int] = field(default_factory=list)
    _index: int = -1
    _output: Any = None
    _stream: Any = None
    _count: int = 0

    def __post_init__(self) -> None:
        self._starts = [self.times.pts[r.first] for r in self.ranges]

    def feed(self, packet: av.Packet[Any]) -> None:
        if packet.size == 0:
            return
        stamp = packet.pts if packet.pts is not None else packet.dts
        assert stamp is not None  # probe refused streams without timestamps
        index = max(0, bisect.bisect_right(self._starts, stamp) - 1)
        if index != self._index:
            if index < self._index:
                raise CopyImpossibleError("packets of an earlier chunk after a cut")
            self._next(index)
        packet.stream = self._stream
        try:
            self._output.mux(packet)
        except av.error.FFmpegError as exc:
            raise CopyImpossibleError(f"MP4 muxer refused a packet: {exc.strerror or exc}") from None
        self._count += 1

    def _next(self, index: int) -> None:
        self._end_chunk()
        self._index, self._count = index, 0
        try:
            self._output = _open_chunk(self.publish.path(index), self.video)
            self._stream = self._output.add_stream_from_template(self.video)
            self._stream.time_base = self.video.time_base
        except (av.error.FFmpegError, ValueError) as exc:
            raise CopyImpossibleError(
                f"cannot copy {self.video.codec_context.name} into MP4: {exc}"
            ) from None

    def _end_chunk(self) -> None:
        if self._output is None:
            return
        expected = self.ranges[self._index].count
        self._output.close()
        self._output = None
        if self._count != expected:
            raise CopyImpossibleError(f"chunk {self._index} got {self._count} packets, expected {expected}")
        self.publish(self._index)

    def finish(self) -> None:
        self._end_chunk()
        if self._index != len(self.ranges) - 1:
            raise CopyImpossibleError(f"only {self._index + 1} of {len(self.ranges)} chunks received packets")

    def close(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None


@dataclass
class _ReencodeCutter(_Cutter):
    """Decodes every frame and encodes each chunk on its own, starting with a keyframe."""

    video: av.video.stream.VideoStream
    ranges: list[FrameRange]
    times: FrameTimes
    info: VideoInfo
    publish: _Publisher
    _frame: int = 0
    _index: int = -1
    _output: Any = None
    _stream: Any = None
    _ends: list[int] = field(default_factory=list)
    _hdr: HdrMetadata | None = None  # the latest HDR metadata decoded (H.264 repeats it at keyframes)
    _cut_off: bool = False

    def __post_init__(self) -> None:
        self.video.thread_type = "AUTO"
        self._ends = [r.last for r in self.ranges]

    def feed(self, packet: av.Packet[Any]) -> None:
        if packet.size == 0 or self._cut_off:
            return  # the demuxer's flush packet: `finish` drains the decoder once
        if packet.is_corrupt and self.info.truncated is not None:
            self._cut_off = True  # where the truncated file ends: nothing after it is read
            return
        for frame in self.video.decode(packet):
            self._encode(frame)

    def _encode(self, frame: av.VideoFrame) -> None:
        if self._frame >= self.times.frame_count:
            if self.info.truncated is not None:
                return  # a frame held back where the file was cut (probe left it out)
            raise InvalidInputError(f"the video decodes to more than {self.times.frame_count} frames")
        cut = self.info.truncated is not None
        if cut and frame.pts is not None and frame.pts != self.times.pts[self._frame]:
            raise InvalidInputError(
                f"frame {self._frame} of the truncated input does not decode; the readable part is damaged"
            )
        index = bisect.bisect_left(self._ends, self._frame)
        self._hdr = HdrMetadata.of(frame) or self._hdr
        if index != self._index:
            self._end_chunk()
            self._start_chunk(index, frame)
        if frame.format.name != self._stream.pix_fmt:
            frame = colour.same_colour(frame, self._stream.pix_fmt)
        frame.pts = self.times.pts[self._frame]
        frame.time_base = self.video.time_base
        frame.pict_type = av.video.frame.PictureType.NONE
        for out in self._stream.encode(frame):
            self._output.mux(out)
        self._frame += 1

    def _start_chunk(self, index: int, first: av.VideoFrame) -> None:
        self._index = index
        self._output = _open_chunk(self.publish.path(index), self.video)
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        stream = self._output.add_stream("libx264", rate=rate)
        stream.width, stream.height = first.width, first.height
        stream.pix_fmt = _chunk_format(first)
        stream.time_base = self.video.time_base
        stream.codec_context.time_base = self.video.time_base  # else pts are rounded to 1/rate
        src = self.video.codec_context
        ctx = stream.codec_context
        ctx.color_range = colour.range_tag(src.color_range, src.pix_fmt or "")
        ctx.colorspace = src.colorspace
        ctx.color_primaries, ctx.color_trc = src.color_primaries, src.color_trc
        stream.options = _x264_options(self.info, self._duration_s(index), self._hdr)
        self._stream = stream

    def _duration_s(self, index: int) -> float:
        frames = self.ranges[index]
        pts = self.times.pts
        end = pts[frames.last + 1] if frames.last + 1 < len(pts) else self.times.end_pts
        return float((end - pts[frames.first]) * self.info.time_base_fraction)

    def _end_chunk(self) -> None:
        if self._output is None:
            return
        for out in self._stream.encode(None):
            self._output.mux(out)
        self._output.close()
        self._output = None
        self.publish(self._index)

    def finish(self) -> None:
        for frame in self.video.decode(None):
            self._encode(frame)
        if self._frame != self.times.frame_count:
            raise InvalidInputError(
                f"only {self._frame} of {self.times.frame_count} frames decode; the input is damaged"
            )
        self._end_chunk()

    def close(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None


def _open_chunk(path: Path, like: av.video.stream.VideoStream) -> Any:
    """An MP4 writer whose video track keeps `like`'s time base (the muxer would pick its own)."""
    options = {}
    if like.time_base is not None and like.time_base.numerator == 1:
        options["video_track_timescale"] = str(like.time_base.denominator)
    return av.open(str(path), mode="w", format="mp4", options=options)  # type: ignore[attr-defined]


def _chunk_format(first: av.VideoFrame) -> str:
    """The input's own pixel format where x264 takes it (an odd side only in 4:4:4), else the format
    the chunk will be processed in (`processing_format`)."""
    name, odd = first.format.name, first.width % 2 or first.height % 2
    if name in _X264_PIX_FMTS and not (odd and not name.startswith("yuv444")):
        return name
    return processing_format(name, first.width, first.height)


def _x264_options(info: VideoInfo, duration_s: float, hdr: HdrMetadata | None = None) -> dict[str, object]:
    """Capped CRF for one chunk of `duration_s` seconds (see the module docstring); HDR metadata kept."""
    more = {}
    bit_rate = input_bit_rate(info)
    if bit_rate and duration_s > 0:
        cap_kbit = max(1, int(bit_rate * REENCODE_MAX_RATE_FACTOR / 1000))
        buffer_kbit = max(1, int(bit_rate * duration_s / 1000))
        more = {"maxrate": f"{cap_kbit}k", "bufsize": f"{buffer_kbit}k"}
    return x264_options(REENCODE_CRF, REENCODE_PRESET, hdr, **more)


def input_bit_rate(info: VideoInfo) -> float | None:
    """The input's bit rate in bit/s: the container's figure, else its size over its duration."""
    if info.bit_rate:
        return float(info.bit_rate)
    if info.size_bytes and info.duration_s > 0:
        return info.size_bytes * 8 / info.duration_s
    return None


class _AudioSink:
    """The streams the output plan keeps, stream-copied in its order into one Matroska file (text
    subtitles Matroska cannot hold, such as MP4's mov_text, converted to subrip)."""

    def __init__(self, streams: list[av.stream.Stream], path: Path, name: str) -> None:
        self.path, self._name = path, name
        # Keep negative timestamps (an AAC encoder's priming samples start before zero):
        # by default the muxer would shift the audio later than the video.
        self._output: Any = av.open(  # type: ignore[attr-defined]
            str(path), mode="w", format="matroska", options={"avoid_negative_ts": "disabled"}
        )
        self._map: dict[int, Any] = {}
        self._convert: dict[int, SubtitleConverter] = {}
        for stream in streams:
            if refusal("matroska", stream) is not None:  # a text subtitle: the plan made sure
                self._convert[stream.index] = SubtitleConverter(self._output, stream, "subrip")
                out = self._convert[stream.index].stream
            else:
                out = self._output.add_stream_from_template(stream)
            for key, value in stream.metadata.items():
                out.metadata[key] = value
            self._map[stream.index] = out

    def feed(self, packet: av.Packet[Any]) -> None:
        if packet.dts is None and packet.pts is None:
            return
        source = packet.stream
        if source.index in self._convert:
            converted = self._convert[source.index].convert(packet)
            if converted is None:
                return
            packet = converted
        packet.stream = self._map[source.index]
        try:
            self._output.mux(packet)
        except av.error.FFmpegError as exc:
            raise InvalidInputError(
                f"cannot copy {source.type} stream #{source.index} ({source.codec_context.name}) of"
                f" {self._name}: its packet at {float(packet.pts or 0) * float(source.time_base or 0):.3f} s"
                f" is refused ({reason(exc)}); remux the input first (ffmpeg -i INPUT -map 0 -c copy"
                f" OUTPUT.mkv) or drop that stream (-map -0:{source.index})"
            ) from None

    def close(self) -> None:
        self._output.close()


def _export_frames(
    source: str, name: str, info: VideoInfo, store: ObjectStore, layout: JobLayout, suffix: str
) -> None:
    """Every frame as an upright PNG/JPEG under layout.frame_image, for people to look at."""
    turn = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    with open_media(source, name) as container:
        stream = video_stream(container, name)
        stream.thread_type = "AUTO"
        for number, frame in enumerate(container.decode(stream)):
            image: Any = to_bgr(frame)
            if info.rotation in turn:
                image = cv2.rotate(image, turn[info.rotation])
            ok, data = cv2.imencode(suffix, image, [cv2.IMWRITE_JPEG_QUALITY, 92] if suffix == ".jpg" else [])
            if not ok:
                raise InvalidInputError(f"cannot encode frame {number} as {suffix}")
            content_type = "image/png" if suffix == ".png" else "image/jpeg"
            store.put_bytes(layout.frame_image(number, suffix.lstrip(".")), data.tobytes(), content_type)
    log.info("exported %d frames as %s", info.frame_count, suffix)


def _log_storage(manifest: Manifest, store: ObjectStore) -> None:
    size = sum(store.size(c.key) for c in manifest.chunks)
    if manifest.video.size_bytes:
        log.info("chunks take %.2fx the input (%d bytes)", size / manifest.video.size_bytes, size)
