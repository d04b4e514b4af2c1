"""Chunk index lists as text, e.g. "0,2,5-7": the Job API's completedIndexes/failedIndexes, the
worker's --indexes option and the messages of both sides use the same notation."""

from __future__ import annotations

from collections.abc import Iterable


def parse_indexes(text: str, *, tolerant: bool = False) -> list[int]:
    """ "0,2,5-7" -> [0, 2, 5, 6, 7], sorted and without repeats.

    Strict (user input): a part that is not N or N-M with N <= M raises ValueError naming it.
    Tolerant (what Kubernetes reports): such parts are skipped, a missing fact is no error."""
    found: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        first, _, last = part.partition("-")
        valid = first.isdigit() and (not last or last.isdigit()) and int(last or first) >= int(first or 0)
        if not valid:
            if tolerant or (not part and not text.strip()):
                continue
            raise ValueError(part)
        found.update(range(int(first), int(last or first) + 1))
    return sorted(found)


def format_indexes(indexes: Iterable[int], separator: str = ",") -> str:
    """The inverse of parse_indexes: sorted, runs collapsed ([0, 1, 2, 5] -> "0-2,5")."""
    runs: list[list[int]] = []
    for index in sorted(set(indexes)):
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return separator.join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs)
