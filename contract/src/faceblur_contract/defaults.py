"""Bounds, the split's settings and the limits of regions, written once.

The processing options themselves are declared in `faceblur_contract.options` (their catalogue);
the split's few options are `Setting`s here, read by the worker's `split` command, the spec's
chunking section and the argv the operator renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from faceblur_contract.enums import SplitMode, TruncatedInput

T = TypeVar("T")


@dataclass(frozen=True)
class Bounds:
    """Numeric limits: ge/le inclusive, gt/lt exclusive; None: unbounded on that side."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def field(self) -> dict[str, Any]:
        """Keywords for pydantic's `Field` (the CRD's minimum/maximum/exclusive* come from them)."""
        limits = {"ge": self.ge, "gt": self.gt, "le": self.le, "lt": self.lt}
        return {name: value for name, value in limits.items() if value is not None}

    def option(self) -> dict[str, Any]:
        """Keywords for a typer option (`min`/`max`): the inclusive bounds, which `--help` shows; every
        bound, open ones too, is checked again where the value is parsed (options.parse_number)."""
        return {name: value for name, value in (("min", self.ge), ("max", self.le)) if value is not None}

    def contains(self, value: float) -> bool:
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self) -> str:
        """'> 0 and <= 1', for messages."""
        parts = [
            f"{sign} {value:g}"
            for sign, value in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if value is not None
        ]
        return " and ".join(parts) or "any number"


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One option of `faceblur split`: the worker's flag, its default and its bounds."""

    flag: str
    default: T
    bounds: Bounds = Bounds()

    @property
    def envvar(self) -> str:
        """The variable the CLI also reads it from: FACEBLUR_ + the flag in capitals."""
        return "FACEBLUR_" + self.flag.lstrip("-").upper().replace("-", "_")


# Detection: the spec's inference size, WxH (parsed by faceblur_contract.options.parse_scale).
SCALE_PATTERN = r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$"
SCALE_MAX_LENGTH = 11

# Chunking (split): at most one of chunks and chunk frames; None: the worker's choice.
CHUNKS: Setting[int | None] = Setting("--chunks", None, Bounds(ge=1, le=10_000))
CHUNK_FRAMES: Setting[int | None] = Setting("--chunk-frames", None, Bounds(ge=1, le=10_000_000))
SPLIT_MODE: Setting[SplitMode] = Setting("--split-mode", SplitMode.AUTO)
# An input that ends before its header says, or cannot be read to its end: refused by default.
TRUNCATED_INPUT: Setting[TruncatedInput] = Setting("--truncated-input", TruncatedInput.REFUSE)

# Regions (faceblur_contract.regions): rectangles relative to the displayed frame (0..1 of its width
# and height, rotation applied), each optionally limited to [start, end) seconds of the video. A keep
# region is never touched by face masks or fail-secure; a blur region is always blurred. The
# count is bounded so the API server's CEL cost estimate of the region rules stays small.
REGIONS_MAX = 32  # regions of each kind
REGION_POSITION = Bounds(ge=0.0, lt=1.0)  # x, y: the top left corner
REGION_SIZE = Bounds(gt=0.0, le=1.0)  # width, height; x + width <= 1 and y + height <= 1
REGION_TIME_MAX = 1_000_000.0  # seconds (11.5 days)
REGION_START = Bounds(ge=0.0, lt=REGION_TIME_MAX)  # start < end
REGION_END = Bounds(gt=0.0, le=REGION_TIME_MAX)

VERIFY_WORST_FRAMES = 5  # residual frames named in summaries (CLI, status, termination record)
