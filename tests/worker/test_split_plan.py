"""Chunk planning: pure decisions over timestamps and keyframes."""

from __future__ import annotations

import pytest
from faceblur.errors import InvalidInputError
from faceblur.job.chunking import (
    ChunkPlan,
    choose_plan,
    chunk_count,
    copy_cut_ok,
    even_starts,
    is_sensible,
    keyframe_starts,
    pts_runs,
)
from faceblur.job.manifest import Chunk
from faceblur.media.probe import FrameTimes
from faceblur_contract.enums import SplitMode


def closed_gop_times(frames: int, gop: int, step: int = 10) -> FrameTimes:
    """Decode order I P B B P B B ... per GOP, every GOP self-contained."""
    pts = [n * step for n in range(frames)]
    decode: list[int] = []
    for start in range(0, frames, gop):
        group = pts[start : start + gop]
        decode.append(group[0])
        rest = group[1:]
        for i in range(0, len(rest), 3):  # P first, then the two B frames before it
            trio = rest[i : i + 3]
            decode.extend([trio[-1], *trio[:-1]])
    return FrameTimes(tuple(pts), tuple(range(0, frames, gop)), step, tuple(decode))


def test_copy_cuts_only_at_closed_keyframes() -> None:
    times = closed_gop_times(40, 10)
    assert all(copy_cut_ok(times, k) for k in (0, 10, 20, 30))
    # Open GOP: a B frame shown before keyframe 20 is stored after it.
    decode = list(times.decode_order)
    i20, i19 = decode.index(200), decode.index(190)
    decode[i19], decode[i20] = decode[i20], decode[i19]
    open_gop = FrameTimes(times.pts, times.keyframes, 10, tuple(decode))
    assert not copy_cut_ok(open_gop, 20)


def test_auto_copies_when_keyframes_fit_and_reencodes_otherwise() -> None:
    times = closed_gop_times(40, 10)
    assert choose_plan(times, 4, SplitMode.AUTO) == ChunkPlan(SplitMode.COPY, (0, 10, 20, 30))
    assert choose_plan(times, 2, SplitMode.AUTO) == ChunkPlan(SplitMode.COPY, (0, 20))
    one_gop = closed_gop_times(40, 40)
    assert choose_plan(one_gop, 3, SplitMode.AUTO) == ChunkPlan(SplitMode.REENCODE, (0, 13, 27))
    assert choose_plan(one_gop, 3, SplitMode.COPY) == ChunkPlan(SplitMode.COPY, (0,))
    assert choose_plan(times, 3, SplitMode.REENCODE).mode is SplitMode.REENCODE


def test_keyframe_plan_sensibility() -> None:
    assert keyframe_starts(closed_gop_times(50, 10), 3) == (0, 20, 30)
    assert is_sensible((0, 20, 30), 50, 3)
    assert not is_sensible((0, 40), 50, 2)  # one chunk of 40 frames where 25 was asked
    assert not is_sensible((0,), 50, 2)


def test_plans_cover_every_frame_once() -> None:
    for frames, count in ((50, 3), (7, 7), (1000, 9)):
        ranges = ChunkPlan(SplitMode.REENCODE, even_starts(frames, count)).ranges(frames)
        covered = [n for r in ranges for n in range(r.first, r.last + 1)]
        assert covered == list(range(frames))
        assert len(ranges) == count


def test_chunk_count_rules() -> None:
    assert chunk_count(100, 4.0, 3, None) == 3
    assert chunk_count(100, 4.0, None, 30) == 4
    assert chunk_count(5, 0.2, 9, None) == 5  # never more chunks than frames
    assert chunk_count(9000, 300.0, None, None) == 5  # a chunk per minute by default
    with pytest.raises(InvalidInputError):
        chunk_count(100, 4.0, 2, 10)


@pytest.mark.parametrize(
    "pts",
    [[0], [0, 512, 1024, 1536], [0, 50, 100, 120, 210, 260, 280, 330], [21, 61, 62, 200]],
)
def test_pts_runs_round_trip(pts: list[int]) -> None:
    runs = pts_runs(pts)
    chunk = Chunk(
        index=0, first_frame=0, last_frame=len(pts) - 1, first_pts=pts[0], last_pts=pts[-1], key="k"
    )
    assert chunk.model_copy(update={"pts_runs": runs}).frame_pts() == pts
    assert len(pts_runs([n * 512 for n in range(1000)])) == 1


def test_a_local_run_asks_for_its_workers_chunks_and_still_a_chunk_a_minute() -> None:
    assert chunk_count(9000, 300.0, None, None, at_least=4) == 5  # a long video: a chunk a minute
    assert chunk_count(250, 10.0, None, None, at_least=4) == 4  # a short one: a chunk per worker
    assert chunk_count(250, 10.0, 2, None, at_least=4) == 2  # a count asked for is kept
