"""The documents a job writes to the object store: the one definition of each.

`Manifest` is written by split and read by process, compose and the operator.
`ChunkDetections` holds every box of a chunk so that a later pass (another detector) can be merged.
The result documents, `ChunkResult` (written by process for each index; the operator sums them for
progress) and `JobResult` (by compose once the output is published), are part of the contract with
the operator, which reads them too: they are defined in `faceblur_contract.records`.
Each carries a schema version so that a reader refuses what it does not understand.
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction
from typing import Literal

from faceblur_contract.enums import SplitMode
from pydantic import BaseModel, ConfigDict, Field

MANIFEST_VERSION: Literal[1] = 1


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()


class AudioStreamInfo(_Doc):
    index: int
    codec: str
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None


class VideoInfo(_Doc):
    """What probe learns of an input: enough to cut, process and rebuild it faithfully."""

    container: str
    codec: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    pix_fmt: str | None = None
    time_base: str  # "num/den" of the video stream, kept exactly
    avg_frame_rate: str | None = None  # "num/den"
    nominal_frame_rate: str | None = None  # r_frame_rate, "num/den"
    variable_frame_rate: bool = False
    frame_count: int = Field(gt=0)  # exact: counted by demuxing, not guessed from duration
    duration_s: float = Field(ge=0)
    start_pts: int = 0
    rotation: int = 0  # degrees counter-clockwise from the display matrix, one of 0/90/180/270
    color_range: str | None = None
    color_space: str | None = None
    color_primaries: str | None = None
    color_trc: str | None = None
    bit_rate: int | None = None
    size_bytes: int | None = None
    keyframes: int | None = None
    audio: list[AudioStreamInfo] = []
    tags: dict[str, str] = {}
    # Why the input is truncated or damaged, when the job processes the frames that can be read
    # (frame_count counts those only); None: the whole input is read.
    truncated: str | None = None

    @property
    def time_base_fraction(self) -> Fraction:
        return Fraction(self.time_base)


class Chunk(_Doc):
    index: int = Field(ge=0)
    first_frame: int = Field(ge=0)  # presentation-order frame number in the whole input
    last_frame: int = Field(ge=0)  # inclusive
    first_pts: int  # in the video stream's time base
    last_pts: int
    key: str  # object key of the chunk's video
    # Every frame's exact pts as runs (first pts, gap, count), in presentation order: one
    # run for constant frame rate. Matroska keeps only milliseconds, so compose restores
    # exact timestamps from here. Empty in documents written before it existed.
    pts_runs: list[tuple[int, int, int]] = []

    @property
    def frame_count(self) -> int:
        return self.last_frame - self.first_frame + 1

    def frame_pts(self) -> list[int]:
        """Every frame's pts in presentation order, expanded from `pts_runs` (empty when unknown)."""
        return [first + gap * k for first, gap, count in self.pts_runs for k in range(count)]


def frame_seconds(chunk: Chunk, video: VideoInfo) -> list[float]:
    """Presentation time of each of the chunk's frames, in seconds from the video's first frame.

    Exact from the manifest's timestamps; a manifest written before they were kept falls back to
    the average frame rate from the chunk's first timestamp."""
    base = video.time_base_fraction
    pts = chunk.frame_pts()
    if len(pts) == chunk.frame_count:
        return [float((p - video.start_pts) * base) for p in pts]
    rate = Fraction(video.avg_frame_rate or video.nominal_frame_rate or "25")
    first = (chunk.first_pts - video.start_pts) * base
    return [float(first + k / rate) for k in range(chunk.frame_count)]


class StreamAction(StrEnum):
    COPY = "copy"  # into the output as it is
    TRANSCODE = "transcode"  # re-encoded, because the output container cannot hold it
    DROP = "drop"  # left out, with a warning that says why
    # Not carried: the output's muxer writes it again from the plan (a MOV/MP4 timecode track from
    # OutputPlan.timecode, as FFmpeg remakes one from the `timecode` tag).
    RECREATE = "recreate"


class StreamPlan(_Doc):
    """What becomes of one of the input's streams besides the video, and why."""

    index: int  # the input's stream index
    kind: str  # audio, subtitle, data or attachment
    codec: str
    channels: int | None = None  # audio
    action: StreamAction
    to_codec: str | None = None  # TRANSCODE: the codec written
    bit_rate: int | None = None  # TRANSCODE: bit/s
    reason: str = ""

    def describe(self) -> str:
        """'audio #1 pcm_s16le -> aac 256 kb/s (MP4 ...; name the output .mov ...)', 'audio #2 aac
        copied', for logs and status."""
        what = f"{self.kind} #{self.index} {self.codec}"
        if self.action is StreamAction.TRANSCODE:
            rate = f" {self.bit_rate // 1000} kb/s" if self.bit_rate else ""
            what += f" -> {self.to_codec}{rate}"
        else:
            what += f" {_DONE[self.action]}"
        return f"{what} ({self.reason})" if self.reason else what


_DONE = {StreamAction.COPY: "copied", StreamAction.RECREATE: "recreated", StreamAction.DROP: "dropped"}


class ChapterInfo(_Doc):
    start: int
    end: int
    time_base: str  # "num/den"
    title: str | None = None


class OutputPlan(_Doc):
    """The whole output, decided by split from the probe before any work: compose carries it out.

    Side streams that are kept (copied or transcoded) travel in the job's `audio.mka` in this order."""

    output: str  # the output name the plan was made for
    container: str  # "mp4", "mov" or "matroska"
    streams: list[StreamPlan] = []
    chapters: list[ChapterInfo] = []
    # The video's pixel format as encoded, its depth and chroma (faceblur.media.codec.processing_format:
    # 10-bit stays 10-bit, an odd size is 4:4:4); None in documents written before split decided it.
    video: str | None = None
    # The input's start timecode (HH:MM:SS:FF, its timecode track's), written as the output video's
    # `timecode` tag: MOV and MP4 make a timecode track of it, Matroska keeps the tag.
    timecode: str | None = None

    @property
    def kept(self) -> list[StreamPlan]:
        """The streams carried in the side file: copied or transcoded."""
        return [s for s in self.streams if s.action in (StreamAction.COPY, StreamAction.TRANSCODE)]

    @property
    def dropped(self) -> list[StreamPlan]:
        return [s for s in self.streams if s.action is StreamAction.DROP]

    def summary(self) -> str:
        """One line for the CLI summary and the FaceBlurJob's status: the container and what becomes
        of every stream, e.g. 'MOV; audio #1 pcm_s16le copied'."""
        parts = [_CONTAINER_NAMES.get(self.container, self.container)]
        if self.video is not None and self.video != "yuv420p":  # all but what every player takes
            parts.append(_video_name(self.video))
        parts += [s.describe() for s in self.streams]
        if self.chapters:
            parts.append(f"{len(self.chapters)} chapters kept")
        return "; ".join(parts)


_CONTAINER_NAMES = {"mp4": "MP4", "mov": "MOV", "matroska": "MKV"}


def _video_name(pix_fmt: str) -> str:
    """'video H.264 10-bit 4:2:0 (High 10)' for yuv420p10le."""
    depth = 10 if pix_fmt.endswith("10le") else 8
    if pix_fmt.startswith("yuv444"):
        return f"video H.264 {depth}-bit 4:4:4 (High 4:4:4 Predictive: an odd frame size)"
    return f"video H.264 {depth}-bit 4:2:0 ({'High 10' if depth == 10 else 'High'})"


class Manifest(_Doc):
    version: Literal[1] = MANIFEST_VERSION
    input: str  # where the input was read from (URL or path), for the record
    split_mode: SplitMode
    video: VideoInfo
    chunks: list[Chunk]
    # None in documents written before split planned the output (compose then plans it)
    output: OutputPlan | None = None

    @property
    def frame_count(self) -> int:
        return sum(c.frame_count for c in self.chunks)


class BoxSource(StrEnum):
    DETECTED = "detected"  # found by a detector in this very frame
    CARRIED = "carried"  # covered because of a detection in a neighbouring frame
    INTERPOLATED = "interpolated"  # filled in by the tracker through a short gap
    REJECTED = "rejected"  # detected, but weak and unsupported by nearby frames: not blurred
    LOST = "lost"  # a confirmed face's last box, no longer detected: fail-secure anonymized the frame whole
    FIXED = "fixed"  # found sharp by the residual check (or followed from there): anonymized by the fix-up


class Box(_Doc):
    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    detector: str
    source: BoxSource = BoxSource.DETECTED


class ChunkDetections(_Doc):
    version: Literal[1] = 1
    index: int
    first_frame: int
    last_frame: int
    detectors: list[str]
    frames: dict[int, list[Box]]  # frame number in the whole input -> boxes (input pixel coordinates)
    # detected boxes of the neighbouring chunks' frames that smoothing looked at, so that
    # a later `merge` pass recomputes this chunk exactly as a run with both detectors would
    neighbour_frames: dict[int, list[Box]] = {}
    # detections of the chunk's own frames that smoothing did not confirm (not blurred),
    # kept so that a merge pass sees every detection the first pass made
    rejected: dict[int, list[Box]] = {}
    # frames of the chunk that fail-secure anonymized whole, and why ("detection failed", "face lost")
    whole_frames: dict[int, str] = {}
