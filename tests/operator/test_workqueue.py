"""The per-job work queue: one pass at a time per job, bursts coalesced, failures retried later."""

from __future__ import annotations

import asyncio

import pytest
from faceblur_operator.workqueue import Key, ReconcileQueue

A, B = Key("ns", "a"), Key("ns", "b")


def test_events_during_a_pass_cause_exactly_one_more_pass() -> None:
    passes: list[Key] = []
    running = 0
    peak = 0

    async def reconcile(key: Key) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        passes.append(key)
        await asyncio.sleep(0.02)
        running -= 1
        return len(passes)

    async def main() -> list[int | None]:
        queue = ReconcileQueue(reconcile)
        return await asyncio.gather(*(queue.run(A) for _ in range(5)), queue.run(B))

    results = asyncio.run(main())
    assert passes.count(A) == 2  # the first pass, then one for the four events that came meanwhile
    assert passes.count(B) == 1
    assert results[1:5] == [None] * 4  # absorbed by the running pass
    assert peak == 2  # a and b ran side by side, never two of a


def test_run_raises_and_trigger_retries_after_backoff() -> None:
    calls = 0

    async def reconcile(key: Key) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("API unavailable")

    async def main() -> None:
        queue = ReconcileQueue(reconcile, backoff_s=(0.01, 0.02))
        with pytest.raises(RuntimeError, match="unavailable"):
            await queue.run(A)
        await queue.trigger(A)  # fails (call 2), requeued
        for _ in range(100):
            if calls >= 3:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert calls == 3


def test_forget_cancels_a_pending_retry() -> None:
    calls = 0

    async def reconcile(key: Key) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    async def main() -> None:
        queue = ReconcileQueue(reconcile, backoff_s=(0.05,))
        await queue.trigger(A)
        queue.forget(A)
        await asyncio.sleep(0.15)

    asyncio.run(main())
    assert calls == 1
