"""Retrying S3 calls: how often and how long to wait (FACEBLUR_S3_ATTEMPTS, exponential backoff
with jitter), and the one loop that does it; only transient failures are tried again."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from faceblur.errors import StorageError
from faceblur.storage.s3errors import describe, is_transient

log = logging.getLogger("faceblur.storage")
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """FACEBLUR_S3_ATTEMPTS (default 5) tries per S3 call."""
        env = os.environ if environ is None else environ
        text = env.get("FACEBLUR_S3_ATTEMPTS", "").strip()
        if not text:
            return cls()
        if not text.isdigit() or int(text) < 1:
            raise StorageError(f"FACEBLUR_S3_ATTEMPTS must be a whole number >= 1, not {text!r}")
        return cls(attempts=int(text))

    def delays(self) -> Iterator[float]:
        """Exponential backoff with jitter between attempts (attempts - 1 delays)."""
        for n in range(self.attempts - 1):
            base = min(self.max_delay_s, self.first_delay_s * 2**n)
            yield base * (0.5 + random.random() / 2)


def retrying(operation: Callable[[], _T], policy: RetryPolicy, what: str) -> _T:
    """Run `operation`, trying again after a transient failure while the policy allows;
    a final failure (or the last transient one) is raised as it came."""
    delays = policy.delays()
    while True:
        try:
            return operation()
        except Exception as exc:
            delay = next(delays, None) if is_transient(exc) else None
            if delay is None:
                raise
            log.warning("%s failed (%s), retrying in %.1fs", what, describe(exc), delay)
            time.sleep(delay)
