"""Waiting for the cluster to reach a state, with a message that says what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """The awaited state did not come in time (an AssertionError, so pytest reports it as a failure)."""


def wait_until(
    what: str, probe: Callable[[], T | None], timeout_s: float = 60.0, interval_s: float = 0.2
) -> T:
    """Call probe until it returns something truthy, and return that; WaitTimeoutError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout_s:.0f}s waiting for {what} (last seen: {last!r})"
            )
        time.sleep(interval_s)
