"""Several chunk pipelines in one worker: they run at once, each taking the next chunk when it is
free, and a failure stops new chunks while those under way finish."""

from __future__ import annotations

import threading
import time

import pytest
from faceblur.process.pool import ListClaims, run_pipelines
from faceblur_contract.records import ChunkResult


def result(index: int) -> ChunkResult:
    return ChunkResult(
        index=index, frames=1, faces=0, detected_faces=0, frames_with_faces=0, detectors=["x"], seconds=0.0
    )


def test_pipelines_run_at_once_and_results_come_in_index_order() -> None:
    both = threading.Barrier(2, timeout=10)  # broken unless two chunks are under way together
    threads: set[str] = set()

    def work(index: int) -> ChunkResult:
        threads.add(threading.current_thread().name)
        if index < 2:
            both.wait()
        return result(index)

    results = run_pipelines(ListClaims(range(5)), 2, work)
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert len(threads) == 2


def test_a_slow_chunk_holds_one_pipeline_while_the_other_takes_the_rest() -> None:
    done_by: dict[int, str] = {}

    def work(index: int) -> ChunkResult:
        if index == 0:
            time.sleep(0.5)
        done_by[index] = threading.current_thread().name
        return result(index)

    run_pipelines(ListClaims(range(6)), 2, work)
    assert (
        {done_by[i] for i in range(1, 6)} == {name for i, name in done_by.items() if i != 0} != {done_by[0]}
    )


def test_a_failure_starts_no_further_chunk_and_is_raised_after_the_others_finish() -> None:
    started: list[int] = []
    finished: list[int] = []

    def work(index: int) -> ChunkResult:
        started.append(index)
        if index == 1:
            raise ValueError("chunk 1 is damaged")
        time.sleep(0.3)
        finished.append(index)
        return result(index)

    with pytest.raises(ValueError, match="chunk 1"):
        run_pipelines(ListClaims(range(10)), 2, work)
    assert sorted(started) == [0, 1]
    assert finished == [0]
