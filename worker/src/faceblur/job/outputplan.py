"""The output plan: the container, and for each stream besides the video copy, transcode or drop.

Split makes it from the probe before any work and writes it into the manifest; compose carries it
out. What the output cannot hold is decided here, never found at compose: audio the container
cannot hold is kept by choosing a container that holds it when the output's name leaves the choice
to us (no extension), and transcoded to AAC at a transparent bit rate when the user named the
container (`.mp4`); text subtitles the container cannot hold as they are are converted (MP4 and MOV
hold mov_text, Matroska subrip); a timecode track (tmcd) is written again by the MOV and MP4 muxers
from its start timecode, which Matroska keeps as a tag; other subtitles it cannot hold, other data
tracks (telemetry), attachments and extra video tracks are dropped with a warning that says why and
what to do.

Whether a container holds a codec is asked of FFmpeg's muxer (`refusal`), plus one rule of ours:
PCM goes into MP4 (FFmpeg writes it as `ipcm`) but few players play it there, so it is transcoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from faceblur.errors import InvalidInputError
from faceblur.job.manifest import ChapterInfo, Manifest, OutputPlan, StreamAction, StreamPlan
from faceblur.media.streams import CONTAINER_NAMES, EXTENSIONS, SIDE_FILE_FORMAT, TEXT_SUBTITLES, SideStream

log = logging.getLogger(__name__)

# (container, stream) -> why the container cannot hold a copy of the stream, None when it can
Refusal = Callable[[str, SideStream], str | None]

TRANSCODE_CODEC = "aac"
AAC_BIT_RATE_PER_CHANNEL = 128_000  # 256 kb/s stereo: transparent for AAC-LC
AAC_MAX_BIT_RATE = 512_000
_CHOICES = ("mp4", "mov", "matroska")  # a container of our choosing: the most playable that holds all


def output_name(url: str) -> str:
    return PurePosixPath(url.split("?", 1)[0]).name


def named_container(url: str) -> str | None:
    """The container the output's extension names; None when it has none (ours to choose)."""
    suffix = PurePosixPath(output_name(url)).suffix.lower()
    if not suffix:
        return None
    if suffix not in EXTENSIONS:
        raise InvalidInputError(
            f"output {url}: faceblur writes MP4 (.mp4, .m4v), QuickTime (.mov) or Matroska (.mkv);"
            f" {suffix} is none of them: name the output with one of these extensions"
        )
    return EXTENSIONS[suffix]


def plan_output(
    output_url: str, streams: Sequence[SideStream], chapters: Sequence[ChapterInfo], refusal: Refusal
) -> OutputPlan:
    """The plan for writing `streams` (the input's, besides its video) to `output_url`."""
    named = named_container(output_url)
    container = named or _choose(streams, refusal)
    plans = [_plan_stream(s, container, named is not None, refusal) for s in streams]
    timecode = next((s.timecode for s in streams if s.timecode), None)
    return OutputPlan(
        output=output_url, container=container, streams=plans, chapters=list(chapters), timecode=timecode
    )


def log_plan(plan: OutputPlan, name: str) -> None:
    """The plan in the job's log: dropped streams as warnings, the rest as information."""
    log.info("output %s: %s", name, plan.summary())
    for stream in plan.dropped:
        log.warning("%s: %s dropped: %s", name, _what(stream), stream.reason)
    for stream in plan.streams:
        if stream.action is StreamAction.TRANSCODE:
            log.warning("%s: %s", name, stream.describe())


def _choose(streams: Sequence[SideStream], refusal: Refusal) -> str:
    """The first of MP4, MOV, MKV that holds every audio and subtitle stream (else every audio one)."""
    for kinds in (("audio", "subtitle"), ("audio",)):
        wanted = [s for s in streams if s.kind in kinds]
        for container in _CHOICES:
            if all(_why_not(container, s, refusal) is None for s in wanted):
                return container
    return "matroska"


def _why_not(container: str, stream: SideStream, refusal: Refusal) -> str | None:
    name = CONTAINER_NAMES[container]
    if container == "mp4" and stream.kind == "audio" and stream.codec.startswith("pcm_"):
        return f"{name} players seldom play {stream.codec}"
    if refusal(container, stream) is not None:
        return f"{name} cannot hold {stream.codec}"
    return None


def _holders(stream: SideStream, refusal: Refusal) -> list[str]:
    """Extensions of the containers that would keep `stream` as it is."""
    first = {muxer: ext for ext, muxer in reversed(EXTENSIONS.items())}  # .mov, .mkv: the table's first
    return [first[c] for c in ("mov", "matroska") if _why_not(c, stream, refusal) is None]


def _plan_stream(stream: SideStream, container: str, named: bool, refusal: Refusal) -> StreamPlan:
    plan = StreamPlan(
        index=stream.index,
        kind=stream.kind,
        codec=stream.codec,
        channels=stream.channels,
        action=StreamAction.DROP,
    )
    if stream.kind == "data" and stream.timecode:
        return _plan_timecode(plan, stream.timecode, container)
    if stream.kind not in ("audio", "subtitle"):
        return plan.model_copy(update={"reason": _NOT_CARRIED.get(stream.kind, _NOT_CARRIED["data"])})
    text = stream.kind == "subtitle" and stream.codec in TEXT_SUBTITLES
    carried = text or refusal(SIDE_FILE_FORMAT, stream) is None  # text rides as subrip if need be
    why = _why_not(container, stream, refusal)
    if stream.kind == "subtitle":
        if why is None and carried:
            return plan.model_copy(update={"action": StreamAction.COPY})
        if text:
            target = "mov_text" if container in ("mp4", "mov") else "subrip"
            name = CONTAINER_NAMES[container]
            reason = f"{name} holds text subtitles as {target}: the text is kept, its styling may not be"
            return plan.model_copy(
                update={"action": StreamAction.TRANSCODE, "to_codec": target, "reason": reason}
            )
        if not carried:
            reason = f"{stream.codec} subtitles are not carried through a job"
        else:
            keep = " or ".join(_holders(stream, refusal)) or ".mkv"
            reason = f"{why}; name the output {keep} to keep them"
        return plan.model_copy(update={"reason": reason})
    if not carried:
        raise InvalidInputError(
            f"audio stream #{stream.index} ({stream.codec}) cannot be carried through a job:"
            " convert the audio first (e.g. ffmpeg -i INPUT -c:v copy -c:a flac OUTPUT.mkv)"
        )
    if why is None:
        return plan.model_copy(update={"action": StreamAction.COPY})
    keep = " or ".join(_holders(stream, refusal))
    advice = f"; name the output {keep} to keep it as it is" if named and keep else ""
    rate = min(AAC_MAX_BIT_RATE, AAC_BIT_RATE_PER_CHANNEL * (stream.channels or 2))
    return plan.model_copy(
        update={
            "action": StreamAction.TRANSCODE,
            "to_codec": TRANSCODE_CODEC,
            "bit_rate": rate,
            "reason": f"{why}{advice}",
        }
    )


def _plan_timecode(plan: StreamPlan, timecode: str, container: str) -> StreamPlan:
    """A timecode track is not carried but made again from its start, as FFmpeg's MOV/MP4 muxers make
    one of the video's `timecode` tag; Matroska has no timecode track, only the tag."""
    name = CONTAINER_NAMES[container]
    if container in ("mp4", "mov"):
        reason = f"{name} writes it again from its start {timecode}"
        return plan.model_copy(update={"action": StreamAction.RECREATE, "reason": reason})
    reason = (
        f"{name} has no timecode track: its start {timecode} is kept as the video's timecode tag;"
        " name the output .mov or .mp4 to keep the track"
    )
    return plan.model_copy(update={"reason": reason})


_NOT_CARRIED = {
    "data": "data tracks other than a timecode (telemetry such as GoPro's gpmd) are not carried",
    "attachment": "attachments (cover art, fonts) are not carried",
    "video": "only the first video track is anonymized: other video tracks are never carried",
}


def _what(stream: StreamPlan) -> str:
    return f"{stream.kind} #{stream.index} ({stream.codec})"


def carried_streams(manifest: Manifest) -> list[StreamPlan]:
    """The streams of the job's side file, in its order: the plan's kept ones (every audio stream,
    copied, in a manifest written before plans)."""
    if manifest.output is not None:
        return manifest.output.kept
    return [
        StreamPlan(index=a.index, kind="audio", codec=a.codec, channels=a.channels, action=StreamAction.COPY)
        for a in manifest.video.audio
    ]


def compose_plan(
    manifest: Manifest, output_url: str, refusal: Refusal
) -> tuple[OutputPlan, list[StreamPlan]]:
    """The plan compose carries out for `output_url`, and what it does with each stream of the side
    file (`carried_streams`, in order). Split's plan when the output's name asks for its container;
    planned again from the streams the side file carries (`refusal` trying them) when the output's
    container differs from the planned one, or the manifest predates plans."""
    plan, carried = manifest.output, carried_streams(manifest)
    if plan is not None and named_container(output_url) in (None, plan.container):
        return plan, carried
    streams = [SideStream(s.index, s.kind, s.codec, s.channels) for s in carried]
    if plan is not None:  # a timecode track, recreated or not, is planned again for the new container
        timecodes = [s for s in plan.streams if s.codec == "tmcd" and s.kind == "data"]
        streams += [SideStream(s.index, s.kind, s.codec, timecode=plan.timecode) for s in timecodes]
    new = plan_output(output_url, streams, plan.chapters if plan else [], refusal)
    if plan is not None:
        log.warning(
            "the job was planned for %s (%s); planned again for %s", plan.output, plan.container, output_url
        )
        others = [s for s in plan.dropped if s not in timecodes]
        new = new.model_copy(update={"streams": [*new.streams, *others]})
    by_index = {s.index: s for s in new.streams}
    return new, [by_index[s.index] for s in carried]
