"""What an output container can hold, asked of FFmpeg's own muxers rather than a hand-kept table.

`refusal` writes a header with one stream into memory: the muxer's answer is exactly the one a
compose would get, so split can plan around it before any work. `chapters` and `side_streams`
read what the plan needs to know of an input besides its video.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import av.error
import av.stream
from faceblur_contract.containers import OUTPUT_EXTENSIONS

from faceblur.errors import reason
from faceblur.job.manifest import ChapterInfo

log = logging.getLogger(__name__)

# Output container per file extension; a name without one leaves the container to the plan.
EXTENSIONS = OUTPUT_EXTENSIONS
CONTAINER_NAMES = {"mp4": "MP4", "mov": "MOV", "matroska": "MKV"}
SIDE_FILE_FORMAT = "matroska"  # the job's audio.mka, which carries kept streams from split to compose
SIDE_KINDS = ("audio", "subtitle", "data", "attachment")


_DISCARD_ALL = 48  # AVDISCARD_ALL: how FFmpeg marks a MOV/MP4 chapter track, read as chapters instead


@dataclass(frozen=True)
class SideStream:
    """One stream of the input besides its video, as the plan needs it."""

    index: int
    kind: str
    codec: str
    channels: int | None = None
    timecode: str | None = None  # a timecode track's start (codec "tmcd")


def side_streams(container: av.container.InputContainer, video: av.stream.Stream) -> list[SideStream]:
    """Every stream but the processed video, in the input's order (cover art counts as an attachment;
    a chapter track is not a stream here: its chapters are)."""
    found = []
    for stream in container.streams:
        if stream.index == video.index or int(stream.discard) == _DISCARD_ALL:
            continue
        kind = stream.type
        if kind == "video":  # cover art or a second video track: neither is carried
            kind = "attachment" if stream.disposition & av.stream.Disposition.attached_pic else "video"
        ctx: Any = stream.codec_context
        name = ctx.name if ctx is not None else (getattr(stream, "name", None) or "unknown")
        channels = getattr(ctx, "channels", None) if kind == "audio" else None
        timecode = stream.metadata.get("timecode") if kind == "data" else None
        if timecode:  # FFmpeg's MOV demuxer tags its tmcd tracks (codec none) with their start
            name = "tmcd"
        found.append(SideStream(stream.index, kind, str(name), channels or None, timecode or None))
    return found


def refusal(container_format: str, template: av.stream.Stream) -> str | None:
    """Why `container_format` cannot hold a stream copied from `template` (None: it can).

    The header is written into memory with that one stream, so the muxer checks the codec as it
    would when writing the real output."""
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format=container_format) as output:  # type: ignore[attr-defined]
            output.add_stream_from_template(template)
            output.start_encoding()
    except (av.error.FFmpegError, ValueError, NotImplementedError) as exc:
        return reason(exc)
    return None


def encoder_refusal(container_format: str, codec: str, rate: int, channels: int) -> str | None:
    """Why `container_format` cannot take a `codec` stream from FFmpeg's encoder (None: it can)."""
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format=container_format) as output:  # type: ignore[attr-defined]
            stream: Any = output.add_stream(codec, rate=rate, layout=standard_layout(channels))
            stream.bit_rate = 128_000
            output.start_encoding()
    except (av.error.FFmpegError, ValueError, NotImplementedError) as exc:
        return reason(exc)
    return None


def standard_layout(channels: int | None) -> str:
    """FFmpeg's usual layout for a channel count: PCM often comes with none ('1 channels'), which
    encoders refuse."""
    return {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(channels or 2, "stereo")


def chapters(container: av.container.InputContainer) -> list[ChapterInfo]:
    """The input's chapters, to be written again into the output."""
    found = []
    for chapter in container.chapters():
        base = chapter["time_base"] or Fraction(1, 1000)
        title = chapter["metadata"].get("title")
        found.append(
            ChapterInfo(
                start=int(chapter["start"]),
                end=int(chapter["end"]),
                time_base=f"{base.numerator}/{base.denominator}",
                title=str(title) if title else None,
            )
        )
    return found


def write_chapters(output: Any, kept: Sequence[ChapterInfo]) -> None:
    """Give `output` (open for writing, header not yet written) the plan's chapters."""
    if not kept:
        return
    output.set_chapters(
        [
            {
                "id": n + 1,
                "start": c.start,
                "end": c.end,
                "time_base": Fraction(c.time_base),
                "metadata": {"title": c.title} if c.title else {},
            }
            for n, c in enumerate(kept)
        ]
    )


# Text subtitles FFmpeg decodes to text and encodes again in another text format (styling may be
# lost): MP4 and MOV hold text subtitles only as mov_text, Matroska not as mov_text.
TEXT_SUBTITLES = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"})
_DECODER_NAMES = {"srt": "subrip", "ssa": "ass"}


def same_codec(a: str, b: str) -> bool:
    return _DECODER_NAMES.get(a, a) == _DECODER_NAMES.get(b, b)


class SubtitleConverter:
    """Text subtitles of `source` written into `output` (open, header not yet written) as `codec`."""

    def __init__(self, output: Any, source: Any, codec: str) -> None:
        self._source = source
        source.codec_context.open()  # the decoder's header (ASS styles) is the encoder's
        self.stream: Any = output.add_stream(_DECODER_NAMES.get(codec, codec))
        self.stream.time_base = source.time_base
        self.stream.codec_context.time_base = source.time_base
        self.stream.codec_context.subtitle_header = source.codec_context.subtitle_header

    def convert(self, packet: Any) -> Any | None:
        """The packet's subtitle in the output's codec, at the packet's time (None: nothing shown)."""
        if packet.size == 0:
            return None
        subtitles = self._source.codec_context.decode2(packet)
        if subtitles is None:
            return None
        out = self.stream.codec_context.encode_subtitle(subtitles)
        out.stream = self.stream
        out.time_base = packet.time_base
        out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
        return out
