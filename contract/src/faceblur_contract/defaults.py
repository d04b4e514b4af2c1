"""Every default and bound of a processing option, written once.

The CRD schema (operator `api.py`), the CLI's typer options (worker `cli/options.py`), the worker's
`ProcessOptions` and the field reference all read them from here. Each `Setting` names the
worker's command-line flag, so the argv the operator renders and the option the worker declares
are the same string too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from faceblur_contract.enums import (
    DetectorName,
    ExecutionProvider,
    MaskShape,
    ReplaceWith,
    SplitMode,
    X264Preset,
)

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
        """Keywords for a typer option (`min`/`max`, inclusive); open bounds are checked by the parser."""
        if self.gt is not None or self.lt is not None:
            raise ValueError("typer options take inclusive bounds only; check open ones in the parser")
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
    """One processing option: the worker's flag, its default and its bounds."""

    flag: str
    default: T
    bounds: Bounds = Bounds()

    @property
    def envvar(self) -> str:
        """The variable the CLI also reads it from: FACEBLUR_ + the flag in capitals."""
        return "FACEBLUR_" + self.flag.lstrip("-").upper().replace("-", "_")


# Detection. A threshold of 0 would keep every candidate box the model emits, and the scores are
# probabilities, so the admitted range is (0, 1]. None: each detector's own default.
DETECTOR: Setting[DetectorName] = Setting("--detector", DetectorName.CENTERFACE)
MODEL: Setting[str | None] = Setting("--model", None)
THRESHOLD: Setting[float | None] = Setting("--thresh", None, Bounds(gt=0.0, le=1.0))
SCALE: Setting[str | None] = Setting("--scale", None)  # WxH, see SCALE_PATTERN
SCALE_PATTERN = r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$"
SCALE_MAX_LENGTH = 11
BATCH_SIZE: Setting[int] = Setting("--batch-size", 8, Bounds(ge=1, le=256))
EXECUTION_PROVIDER: Setting[ExecutionProvider] = Setting("--execution-provider", ExecutionProvider.AUTO)
THREADS: Setting[int | None] = Setting("--threads", None, Bounds(ge=1))

# Anonymization: mask_scale moves each side of a box out by (factor - 1) x its size, as deface does;
# below 1 the mask would leave the edges of a detected face visible.
REPLACE_WITH: Setting[ReplaceWith] = Setting("--replacewith", ReplaceWith.BLUR)
MASK_SHAPE: Setting[MaskShape] = Setting("--mask-shape", MaskShape.ELLIPSE)
MASK_SCALE: Setting[float] = Setting("--mask-scale", 1.3, Bounds(ge=1.0, le=4.0))

# Temporal smoothing: a face found in frame f also covers f+1 .. f+look_back and f-look_ahead .. f-1.
LOOK_BACK: Setting[int] = Setting("--look-back", 10, Bounds(ge=0, le=300))
LOOK_AHEAD: Setting[int] = Setting("--look-ahead", 5, Bounds(ge=0, le=300))

# Encoding of the processed chunks.
CRF: Setting[int] = Setting("--crf", 18, Bounds(ge=0, le=51))
PRESET: Setting[X264Preset] = Setting("--preset", X264Preset.VERYFAST)

# Chunking (split): at most one of chunks and chunk frames; None: the worker's choice.
CHUNKS: Setting[int | None] = Setting("--chunks", None, Bounds(ge=1, le=10_000))
CHUNK_FRAMES: Setting[int | None] = Setting("--chunk-frames", None, Bounds(ge=1, le=10_000_000))
SPLIT_MODE: Setting[SplitMode] = Setting("--split-mode", SplitMode.AUTO)

DEBUG: Setting[bool] = Setting("--debug", False)

# Regions (faceblur_contract.regions): rectangles relative to the displayed frame (0..1 of its width
# and height, rotation applied), each optionally limited to [start, end) seconds of the video. A keep
# region is never touched by face masks or fail-secure; a blur region is always blurred. The
# count is bounded so the API server's CEL cost estimate of the region rules stays small.
KEEP_REGION: Setting[tuple[str, ...]] = Setting("--keep-region", ())  # LEFT,TOP,WIDTH,HEIGHT[@START-END]
BLUR_REGION: Setting[tuple[str, ...]] = Setting("--blur-region", ())
REGIONS_MAX = 32  # regions of each kind
REGION_POSITION = Bounds(ge=0.0, lt=1.0)  # x, y: the top left corner
REGION_SIZE = Bounds(gt=0.0, le=1.0)  # width, height; x + width <= 1 and y + height <= 1
REGION_TIME_MAX = 1_000_000.0  # seconds (11.5 days)
REGION_START = Bounds(ge=0.0, lt=REGION_TIME_MAX)  # start < end
REGION_END = Bounds(gt=0.0, le=REGION_TIME_MAX)

# Fail-secure: the whole frame is anonymized where detection failed, and where a confirmed face
# stopped being detected for longer than the look-back window without leaving through the frame's
# edge: from then on for at most `hold` frames, or until it is found again.
FAIL_SECURE: Setting[bool] = Setting("--fail-secure", False)
FAIL_SECURE_HOLD: Setting[int] = Setting("--fail-secure-hold", 50, Bounds(ge=1, le=300))

# Verification (worker `verify.py`): each processed chunk is re-detected before it is published, on
# every `every`-th frame of the video (frame numbers of the whole input, so chunking changes nothing),
# by the job's detectors made more sensitive: their thresholds times `threshold_factor`, their
# inference size times `scale_factor`. A region still sharp there and scoring at least
# threshold_factor x the score that starts a track on its own is a residual candidate. At the
# defaults the pass costs 8-17 % of the processing time (bench/bench_quality.py). With
# `max_residual_frames` set, compose fails (publishing nothing) when more frames hold a candidate.
VERIFY: Setting[bool] = Setting("--verify", True)
VERIFY_EVERY: Setting[int] = Setting("--verify-every", 10, Bounds(ge=1, le=10_000))
VERIFY_THRESHOLD_FACTOR: Setting[float] = Setting("--verify-thresh-factor", 0.8, Bounds(ge=0.05, le=1.0))
VERIFY_SCALE_FACTOR: Setting[float] = Setting("--verify-scale-factor", 1.25, Bounds(ge=1.0, le=4.0))
VERIFY_MAX_RESIDUAL_FRAMES: Setting[int | None] = Setting(
    "--verify-max-residual-frames", None, Bounds(ge=0, le=10_000_000)
)
VERIFY_WORST_FRAMES = 5  # residual frames named in summaries (CLI, status, termination record)
