"""The threaded stage runner: results flow through, and any failure stops every stage."""

from __future__ import annotations

import threading
import time

import pytest
from faceblur.process.pipeline import Channel, run_stages


def test_items_flow_through_in_order() -> None:
    numbers: Channel[int] = Channel(2)
    squares: Channel[int] = Channel(2)
    seen: list[int] = []

    def produce() -> None:
        for n in range(50):
            numbers.put(n)
        numbers.close()

    def square() -> None:
        for n in numbers:
            squares.put(n * n)
        squares.close()

    def collect() -> None:
        seen.extend(squares)

    run_stages([produce, square, collect], [numbers, squares])  # type: ignore[list-item]
    assert seen == [n * n for n in range(50)]


@pytest.mark.parametrize("failing", ["first", "middle", "last"])
def test_a_failure_anywhere_stops_all_stages_and_is_raised(failing: str) -> None:
    """No stage is left blocked on a full or empty channel: the run ends, with the error."""
    upstream: Channel[int] = Channel(1)
    downstream: Channel[int] = Channel(1)
    before = threading.active_count()

    def produce() -> None:
        for n in range(10_000):
            if failing == "first" and n == 3:
                raise ValueError("boom in first")
            upstream.put(n)
        upstream.close()

    def relay() -> None:
        for n in upstream:
            if failing == "middle" and n == 3:
                raise ValueError("boom in middle")
            downstream.put(n)
        downstream.close()

    def consume() -> None:
        for n in downstream:
            if failing == "last" and n == 3:
                raise ValueError("boom in last")
            time.sleep(0.001)

    started = time.monotonic()
    with pytest.raises(ValueError, match=f"boom in {failing}"):
        run_stages([produce, relay, consume], [upstream, downstream])  # type: ignore[list-item]
    assert time.monotonic() - started < 5
    assert threading.active_count() == before
