"""Where to cut a video into chunks: pure decisions over frame timestamps and keyframes.

Frame numbers are presentation-order indexes into the sorted timestamps. A stream copy
can only start a chunk at a keyframe whose group of pictures is closed (no frame shown
after the cut is stored before it, and none shown before it is stored after it);
a re-encode can start a chunk at any frame.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from faceblur_contract.enums import SplitMode

from faceblur.errors import InvalidInputError
from faceblur.media.probe import FrameTimes

DEFAULT_CHUNK_SECONDS = 60.0  # when neither a chunk count nor a chunk size is asked for
COPY_SIZE_TOLERANCE = 1.5  # a copy plan is sensible when no chunk exceeds 1.5x the even size


@dataclass(frozen=True)
class FrameRange:
    first: int
    last: int  # inclusive

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class ChunkPlan:
    mode: SplitMode  # COPY or REENCODE, never AUTO
    starts: tuple[int, ...]  # first frame of every chunk; starts[0] == 0

    def ranges(self, frames: int) -> list[FrameRange]:
        ends = [*self.starts[1:], frames]
        return [FrameRange(a, b - 1) for a, b in zip(self.starts, ends, strict=True)]


def chunk_count(
    frames: int, duration_s: float, chunks: int | None, chunk_frames: int | None, at_least: int = 1
) -> int:
    """How many chunks were asked for, never more than there are frames.

    Asked for neither a count nor a size: a chunk per DEFAULT_CHUNK_SECONDS and at least
    `at_least` (a local run's workers), so what one worker holds per chunk stays bounded
    however long the video is.
    """
    if chunks is not None and chunk_frames is not None:
        raise InvalidInputError("give either a number of chunks or a chunk size in frames, not both")
    if chunks is not None:
        if chunks < 1:
            raise InvalidInputError(f"the number of chunks must be at least 1, not {chunks}")
        wanted = chunks
    elif chunk_frames is not None:
        if chunk_frames < 1:
            raise InvalidInputError(f"the chunk size must be at least 1 frame, not {chunk_frames}")
        wanted = math.ceil(frames / chunk_frames)
    else:
        wanted = max(at_least, math.ceil(duration_s / DEFAULT_CHUNK_SECONDS))
    return max(1, min(wanted, frames))


def even_starts(frames: int, count: int) -> tuple[int, ...]:
    return tuple(sorted({round(i * frames / count) for i in range(count)}))


def copy_cut_ok(times: FrameTimes, frame: int) -> bool:
    """A stream copy may start a chunk at `frame`: it is a keyframe and the GOP is closed there.

    In decode order the keyframe must come right after exactly the `frame` packets that are
    shown before it (so each chunk's packets are contiguous and decode on their own).
    """
    if frame == 0:
        return True
    if not times.decode_order:
        return False
    cut_pts = times.pts[frame]
    position = times.decode_order.index(cut_pts)
    return position == frame and max(times.decode_order[:position]) < cut_pts


def keyframe_starts(times: FrameTimes, count: int) -> tuple[int, ...]:
    """The usable keyframe nearest to each even start (duplicates merged)."""
    cuts = [k for k in times.keyframes if k > 0 and copy_cut_ok(times, k)]
    starts = {0}
    if cuts:
        for ideal in even_starts(times.frame_count, count)[1:]:
            i = bisect.bisect_left(cuts, ideal)
            nearby = [cuts[j] for j in (i - 1, i) if 0 <= j < len(cuts)]
            starts.add(min(nearby, key=lambda k: (abs(k - ideal), k)))
    return tuple(sorted(starts))


def is_sensible(starts: Sequence[int], frames: int, count: int) -> bool:
    """As many chunks as asked for, none much larger than an even share."""
    if len(starts) != count:
        return False
    sizes = [b - a for a, b in itertools.pairwise([*starts, frames])]
    return max(sizes) <= COPY_SIZE_TOLERANCE * frames / count


def choose_plan(times: FrameTimes, count: int, mode: SplitMode) -> ChunkPlan:
    """COPY when asked, or on AUTO when the keyframes allow the chunking; else REENCODE."""
    frames = times.frame_count
    if mode is SplitMode.REENCODE:
        return ChunkPlan(SplitMode.REENCODE, even_starts(frames, count))
    copy = ChunkPlan(SplitMode.COPY, keyframe_starts(times, count))
    if mode is SplitMode.COPY or count == 1 or is_sensible(copy.starts, frames, count):
        return copy
    return ChunkPlan(SplitMode.REENCODE, even_starts(frames, count))


def pts_runs(pts: Sequence[int]) -> list[tuple[int, int, int]]:
    """Timestamps as (first, gap, count) runs of equal gaps: one run for constant frame rate."""
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(pts):
        gap = pts[i + 1] - pts[i] if i + 1 < len(pts) else 0
        j = i + 1
        while j + 1 < len(pts) and pts[j + 1] - pts[j] == gap:
            j += 1
        count = j - i + 1 if i + 1 < len(pts) else 1
        runs.append((pts[i], gap, count))
        i += count
    return runs
