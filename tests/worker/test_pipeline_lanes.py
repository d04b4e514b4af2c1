"""Detection lanes: work runs in parallel threads, results keep the source's order, failures stop all."""

from __future__ import annotations

import random
import threading
import time

import pytest
from faceblur.process.pipeline import Channel, batches, ordered_lanes, run_stages


def _run_lanes(count: int, work_delay: float, fail_at: int | None = None) -> tuple[list[int], int]:
    numbers: Channel[int] = Channel(4)
    results: Channel[int] = Channel(4)
    seen: list[int] = []
    busy = 0
    most = 0
    lock = threading.Lock()
    rng = random.Random(7)
    delays = [rng.uniform(0, work_delay) for _ in range(60)]

    def produce() -> None:
        for n in range(60):
            numbers.put(n)
        numbers.close()

    def work(n: int) -> list[int]:
        nonlocal busy, most
        if n == fail_at:
            raise ValueError(f"boom at {n}")
        with lock:
            busy += 1
            most = max(most, busy)
        time.sleep(delays[n])  # uneven: later items often finish first
        with lock:
            busy -= 1
        return [n, -n]

    def collect() -> None:
        seen.extend(results)

    lanes = ordered_lanes(iter(numbers), work, results, count)
    run_stages([produce, *lanes, collect], [numbers, results])
    return seen, most


@pytest.mark.parametrize("count", [1, 2, 4])
def test_results_keep_the_source_order_whatever_finishes_first(count: int) -> None:
    seen, most = _run_lanes(count, 0.004)
    assert seen == [v for n in range(60) for v in (n, -n)]
    assert most <= count


def test_lanes_work_at_the_same_time() -> None:
    _, most = _run_lanes(3, 0.01)
    assert most > 1


def test_a_failing_lane_stops_every_stage_and_is_raised() -> None:
    before = threading.active_count()
    started = time.monotonic()
    with pytest.raises(ValueError, match="boom at 17"):
        _run_lanes(3, 0.002, fail_at=17)
    assert time.monotonic() - started < 5
    assert threading.active_count() == before


def test_batches_keep_the_order_and_end_with_the_rest() -> None:
    assert list(batches(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches([], 3)) == []
