"""Per-FaceBlurJob serialization of reconciles: one at a time per job, any number across jobs.

Many events arrive for one job (its CR, its Jobs, their pods). A reconcile already running for
that job absorbs the newer events by running once more when it ends, so reconciles of one job
never overlap and a burst of events costs at most two passes. A pass that fails is retried after
a growing delay (the requeue of controller-runtime), since a watch event that was lost to an API
error would otherwise never come again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, NamedTuple, TypeVar

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
R = TypeVar("R")


class Key(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ReconcileQueue(Generic[R]):
    def __init__(
        self, reconcile: Callable[[Key], Awaitable[R]], backoff_s: Sequence[float] = BACKOFF_S
    ) -> None:
        self._reconcile = reconcile
        self._backoff_s = tuple(backoff_s)
        self._active: set[Key] = set()
        self._again: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, key: Key) -> R | None:
        """Reconcile now and return the last pass's result, or have the running pass go once more
        (None). Errors reach the caller."""
        if key in self._active:
            self._again.add(key)
            return None
        self._active.add(key)
        try:
            while True:
                self._again.discard(key)
                result = await self._reconcile(key)
                if key not in self._again:
                    break
        finally:
            self._active.discard(key)
        self._failures.pop(key, None)
        return result

    async def trigger(self, key: Key) -> None:
        """Like run, but a failure is logged and retried later instead of raised."""
        try:
            await self.run(key)
        except Exception as e:
            self.requeue(key, e)

    def requeue(self, key: Key, error: BaseException) -> None:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        delay = self._backoff_s[min(count, len(self._backoff_s) - 1)]
        log.warning("reconcile of %s failed (%s); retrying in %.0fs", key, error, delay)
        if key in self._timers:
            self._timers[key].cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._spawn, key)

    def forget(self, key: Key) -> None:
        """The job is gone: drop its retry timer and failure count."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def _spawn(self, key: Key) -> None:
        self._timers.pop(key, None)
        task = asyncio.get_running_loop().create_task(self.trigger(key))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)
