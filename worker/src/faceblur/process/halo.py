"""Which frames a chunk decodes: its own, and the halo of its neighbours' frames that smoothing
(and fail-secure) look at, so a chunk comes out as a run over the whole video would make it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
from faceblur_contract.options import ProcessOptions

from faceblur.errors import InvalidInputError
from faceblur.job.manifest import Chunk
from faceblur.media.codec import decode_frames, decode_tail
from faceblur.temporal.failsecure import horizon_before
from faceblur.temporal.smoothing import SmoothingParams


@dataclass(frozen=True)
class Segment:
    """Frames to decode from one chunk file: all of it, or only its first or last `count` frames."""

    chunk: Chunk
    part: str  # "all", "head" or "tail"
    count: int

    @property
    def frames(self) -> range:
        if self.part == "tail":
            return range(self.chunk.last_frame - self.count + 1, self.chunk.last_frame + 1)
        return range(self.chunk.first_frame, self.chunk.first_frame + self.count)


def halo(params: SmoothingParams, options: ProcessOptions) -> tuple[int, int]:
    """How many frames before and after a chunk its smoothing depends on."""
    before = params.horizon_before
    if options.fail_secure:
        before = horizon_before(params, options.fail_secure_hold)  # lost faces look further back
    return before, params.horizon_after


def plan_segments(chunks: Sequence[Chunk], index: int, before: int, after: int) -> list[Segment]:
    """What to decode for chunk `index`: the halo of `before`/`after` frames around it, then itself."""
    ordered = sorted(chunks, key=lambda c: c.first_frame)
    position = next(i for i, c in enumerate(ordered) if c.index == index)
    own = ordered[position]
    segments: list[Segment] = []
    need = before
    for chunk in reversed(ordered[:position]):
        if need <= 0:
            break
        take = min(need, chunk.frame_count)
        segments.insert(0, Segment(chunk, "all" if take == chunk.frame_count else "tail", take))
        need -= take
    segments.append(Segment(own, "all", own.frame_count))
    need = after
    for chunk in ordered[position + 1 :]:
        if need <= 0:
            break
        take = min(need, chunk.frame_count)
        segments.append(Segment(chunk, "all" if take == chunk.frame_count else "head", take))
        need -= take
    return segments


def numbered(
    segment: Segment, files: Mapping[int, Path], threads: int = 0
) -> Iterator[tuple[int, av.VideoFrame]]:
    """The segment's frames with their frame numbers; a chunk that decodes to another count is refused."""
    path = files[segment.chunk.index]
    limit = segment.count if segment.part == "head" else None
    if segment.part == "tail":
        frames: Iterable[av.VideoFrame] = decode_tail(path, segment.count, segment.chunk.frame_count, threads)
    else:
        frames = decode_frames(path, limit=limit, threads=threads)
    count = 0
    for number, frame in zip(segment.frames, frames, strict=False):
        count += 1
        yield number, frame
    if segment.part == "all":
        count += sum(1 for _ in frames)  # anything left over is also a mismatch
    if count != segment.count:
        raise InvalidInputError(
            f"chunk {segment.chunk.index} ({path.name}) does not decode to the manifest's "
            f"{segment.chunk.frame_count} frames"
        )
