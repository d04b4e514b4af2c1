"""Fixed regions of the displayed frame, in both directions between text and value.

A region is a rectangle relative to the frame as a player shows it (rotation applied): the left and
top of its corner and its width and height, each a fraction of the displayed width or height. (Not
`x` and `y`: YAML 1.1, which kubectl reads, takes a bare `y` for true.) It
may be limited to a time range [start, end) in seconds from the video's first frame; a frame
belongs to it when its presentation time t satisfies start <= t < end.

Text form (the worker's `--keep-region` and `--blur-region`): `LEFT,TOP,WIDTH,HEIGHT` or
`LEFT,TOP,WIDTH,HEIGHT@START-END`,
either time may be left out (`@10-`: from 10 s on; `@-2.5`: until 2.5 s). `Region.text` renders
exactly what `parse_region` reads back; the bounds are `faceblur_contract.defaults`'.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from faceblur_contract import defaults as d

SYNTAX = "LEFT,TOP,WIDTH,HEIGHT[@START-END] (fractions of the displayed frame, seconds)"
INSIDE_X = "left + width must be <= 1 (the region must lie inside the frame)"
INSIDE_Y = "top + height must be <= 1 (the region must lie inside the frame)"
TIMES_IN_ORDER = "start must be before end"
_TIME = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_RANGE = re.compile(rf"^(?P<start>{_TIME})?-(?P<end>{_TIME})?$")


@dataclass(frozen=True)
class Region:
    left: float
    top: float
    width: float
    height: float
    start: float | None = None  # seconds, inclusive; None: from the first frame
    end: float | None = None  # seconds, exclusive; None: to the last frame

    def __post_init__(self) -> None:
        problem = region_problem(self.left, self.top, self.width, self.height, self.start, self.end)
        if problem is not None:
            raise ValueError(problem)

    def active(self, seconds: float) -> bool:
        """Whether a frame shown at `seconds` lies in the region's time range."""
        return (self.start is None or seconds >= self.start) and (self.end is None or seconds < self.end)

    def text(self) -> str:
        """The command-line form, parsed back by `parse_region` to an equal region."""
        corner = ",".join(_number(v) for v in (self.left, self.top, self.width, self.height))
        if self.start is None and self.end is None:
            return corner
        start = "" if self.start is None else _decimal(self.start)
        end = "" if self.end is None else _decimal(self.end)
        return f"{corner}@{start}-{end}"


def region_problem(
    left: float, top: float, width: float, height: float, start: float | None, end: float | None
) -> str | None:
    """What makes a region invalid, in words; None when it is valid. The CRD's rules say the same."""
    named = [("left", left, d.REGION_POSITION), ("top", top, d.REGION_POSITION)]
    named += [("width", width, d.REGION_SIZE), ("height", height, d.REGION_SIZE)]
    times = (("start", start, d.REGION_START), ("end", end, d.REGION_END))
    named += [(name, value, bounds) for name, value, bounds in times if value is not None]
    for name, value, bounds in named:
        if not (isinstance(value, int | float) and math.isfinite(value) and bounds.contains(value)):
            return f"{name} must be a number {bounds.describe()}, got {value!r}"
    if left + width > 1.0:
        return INSIDE_X
    if top + height > 1.0:
        return INSIDE_Y
    if start is not None and end is not None and not start < end:
        return TIMES_IN_ORDER
    return None


def parse_region(text: str) -> Region:
    """`LEFT,TOP,WIDTH,HEIGHT[@START-END]` -> Region; ValueError saying what is wrong."""
    corner, at, times = text.strip().partition("@")
    parts = corner.split(",")
    if len(parts) != 4:
        raise ValueError(f"expected {SYNTAX}")
    try:
        left, top, width, height = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected four numbers before '@': {SYNTAX}") from None
    start = end = None
    if at:
        found = _RANGE.match(times.strip())
        if found is None or not (found["start"] or found["end"]):
            raise ValueError(f"expected a time range START-END in seconds after '@', e.g. 10-20.5: {SYNTAX}")
        start = float(found["start"]) if found["start"] else None
        end = float(found["end"]) if found["end"] else None
    return Region(left, top, width, height, start, end)


def _number(value: float) -> str:
    """Shortest text that parses back to the same float."""
    return repr(float(value)) if float(value) != int(value) else str(int(value))


def _decimal(value: float) -> str:
    """The shortest round-tripping text without an exponent (a '-' would read as the range's)."""
    return format(Decimal(_number(value)), "f")
