"""When pods' containers ran, read from their API status: for assertions on how many ran at once.

The API gives start and finish times to the second, so intervals that meet within one second are not
counted as overlapping: a peak found is one that really happened (never more than really ran at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

Interval = tuple[datetime, datetime]


def run_intervals(pods: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """(startedAt, finishedAt) of every terminated container (last state included) of the given pods."""
    found: list[Interval] = []
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses", []):
            for state in (status.get("state", {}), status.get("lastState", {})):
                ended = state.get("terminated") or {}
                if ended.get("startedAt") and ended.get("finishedAt"):
                    found.append((_parse(ended["startedAt"]), _parse(ended["finishedAt"])))
    return found


def peak_concurrency(intervals: Sequence[Interval]) -> int:
    """The most intervals open at one moment; one ending when another starts does not overlap it."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:  # at equal times -1 sorts first: an end frees its place before a start
        running += step
        peak = max(peak, running)
    return peak


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
