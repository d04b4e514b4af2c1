"""The worker's processing options, and the conversion of command-line values into them.

`build_options` is the argv -> options direction (typer splits the words, this gives them their
meaning); `faceblur_contract.argv` is the other direction. Defaults and bounds come from
`faceblur_contract.defaults` only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from faceblur_contract import defaults as d
from faceblur_contract.enums import DetectorName, ExecutionProvider, MaskShape, ReplaceWith, X264Preset
from faceblur_contract.exits import ExitCode
from faceblur_contract.regions import SYNTAX, Region, parse_region

V = TypeVar("V")


class UsageError(ValueError):
    """Options that contradict each other or cannot be parsed (exit code 2, like typer's own)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class DetectorSpec:
    name: DetectorName = d.DETECTOR.default
    model: str | None = d.MODEL.default  # path or http(s) URL; None: the detector's default
    thresh: float | None = d.THRESHOLD.default  # None: the detector's own default
    scale: tuple[int, int] | None = None  # inference (width, height); None: the detector's default


@dataclass(frozen=True)
class VerifyOptions:
    """The residual-face check of each processed chunk (defaults.VERIFY*)."""

    enabled: bool = d.VERIFY.default
    every: int = d.VERIFY_EVERY.default  # check every n-th frame of the input
    threshold_factor: float = d.VERIFY_THRESHOLD_FACTOR.default
    scale_factor: float = d.VERIFY_SCALE_FACTOR.default
    max_residual_frames: int | None = d.VERIFY_MAX_RESIDUAL_FRAMES.default  # None: report, never fail


@dataclass(frozen=True)
class ProcessOptions:
    detectors: tuple[DetectorSpec, ...] = field(default_factory=lambda: (DetectorSpec(),))
    replacewith: ReplaceWith = d.REPLACE_WITH.default
    mask_shape: MaskShape = d.MASK_SHAPE.default
    mask_scale: float = d.MASK_SCALE.default
    look_back: int = d.LOOK_BACK.default
    look_ahead: int = d.LOOK_AHEAD.default
    batch_size: int = d.BATCH_SIZE.default
    execution_provider: ExecutionProvider = d.EXECUTION_PROVIDER.default
    threads: int | None = d.THREADS.default  # the worker's thread budget; None: the cores it may use
    crf: int = d.CRF.default
    preset: X264Preset = d.PRESET.default
    debug: bool = d.DEBUG.default  # also write a debug video with boxes and scores
    draw_scores: bool = False  # draw boxes and scores on the output itself (deface's --draw-scores)
    merge: bool = False  # second pass: union with the chunk's existing detections, then re-render
    force: bool = False  # redo an index that is already published
    keep_regions: tuple[Region, ...] = ()  # never anonymized by face masks or fail-secure
    blur_regions: tuple[Region, ...] = ()  # always anonymized
    fail_secure: bool = d.FAIL_SECURE.default  # whole frame where detection failed or a face was lost
    fail_secure_hold: int = d.FAIL_SECURE_HOLD.default  # most frames a lost face blurs the whole frame
    verify: VerifyOptions = field(default_factory=VerifyOptions)  # the residual-face check


def build_options(
    *,
    detectors: Sequence[DetectorName | str] | None,
    models: Sequence[str] | None,
    thresholds: Sequence[str] | None,
    scales: Sequence[str] | None,
    batch_size: int,
    execution_provider: ExecutionProvider | str,
    threads: int | None,
    replacewith: ReplaceWith | str,
    mask_shape: MaskShape | str,
    boxes: bool,
    mask_scale: float,
    look_back: int,
    look_ahead: int,
    crf: int,
    preset: X264Preset | str,
    debug: bool,
    draw_scores: bool,
    merge: bool = False,
    force: bool = False,
    keep_regions: Sequence[str] | None = None,
    blur_regions: Sequence[str] | None = None,
    fail_secure: bool = d.FAIL_SECURE.default,
    fail_secure_hold: int = d.FAIL_SECURE_HOLD.default,
    verify: VerifyOptions | None = None,
) -> ProcessOptions:
    """Command-line values -> ProcessOptions (per-detector values given as NAME=VALUE).

    Enum values may come as their text (click's parameter values are): they are converted here.
    Keyword-only: many of these are ints or bools that a positional slip would swap silently."""
    names = list(dict.fromkeys(DetectorName(n) for n in detectors or [d.DETECTOR.default]))
    model_of = per_detector(d.MODEL.flag, models, names, str)
    thresh_of = per_detector(d.THRESHOLD.flag, thresholds, names, parse_threshold)
    scale_of = per_detector(d.SCALE.flag, scales, names, parse_scale)
    specs = tuple(
        DetectorSpec(
            name=name, model=model_of.get(name), thresh=thresh_of.get(name), scale=scale_of.get(name)
        )
        for name in names
    )
    return ProcessOptions(
        detectors=specs,
        replacewith=ReplaceWith(replacewith),
        mask_shape=MaskShape.BOX if boxes else MaskShape(mask_shape),  # deface's --boxes
        mask_scale=mask_scale,
        look_back=look_back,
        look_ahead=look_ahead,
        batch_size=batch_size,
        execution_provider=ExecutionProvider(execution_provider),
        threads=threads,
        crf=crf,
        preset=parse_preset(preset),
        debug=debug,
        draw_scores=draw_scores,
        merge=merge,
        force=force,
        keep_regions=parse_regions(d.KEEP_REGION.flag, keep_regions),
        blur_regions=parse_regions(d.BLUR_REGION.flag, blur_regions),
        fail_secure=fail_secure,
        fail_secure_hold=fail_secure_hold,
        verify=verify or VerifyOptions(),
    )


def per_detector(
    option: str, values: Sequence[str] | None, names: list[DetectorName], parse: Callable[[str], V]
) -> dict[DetectorName, V]:
    """`VALUE` (for every detector) or `NAME=VALUE` entries -> {detector: parsed value}."""
    chosen: dict[DetectorName, V] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if sep and name in {n.value for n in DetectorName}:
            detector = DetectorName(name)
            if detector not in names:
                raise UsageError(f"{option} {value}: detector {name} is not in use (add --detector {name})")
            chosen[detector] = parse(rest)
        elif len(names) == 1 or option != d.MODEL.flag:
            for detector in names:
                chosen.setdefault(detector, parse(value))
        else:
            raise UsageError(f"{option} {value}: several detectors are in use, write NAME={value}")
    return chosen


def parse_scale(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 1:
        raise UsageError(f"invalid {d.SCALE.flag} {text!r}: expected WIDTHxHEIGHT, e.g. 640x360")
    return size


def parse_threshold(text: str) -> float:
    bounds = d.THRESHOLD.bounds
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or not bounds.contains(value):  # NaN is in no range
        raise UsageError(f"invalid {d.THRESHOLD.flag} {text!r}: expected a number {bounds.describe()}")
    return value


def parse_regions(option: str, values: Sequence[str] | None) -> tuple[Region, ...]:
    """Repeated `LEFT,TOP,WIDTH,HEIGHT[@START-END]` values -> regions, at most REGIONS_MAX of them."""
    regions = []
    for value in values or []:
        try:
            regions.append(parse_region(value))
        except ValueError as exc:
            raise UsageError(f"invalid {option} {value!r}: {exc}") from None
    if len(regions) > d.REGIONS_MAX:
        raise UsageError(f"{option} given {len(regions)} times: at most {d.REGIONS_MAX} ({SYNTAX})")
    return tuple(regions)


def parse_preset(value: X264Preset | str) -> X264Preset:
    try:
        return X264Preset(value)
    except ValueError:
        choices = ", ".join(p.value for p in X264Preset)
        raise UsageError(f"invalid {d.PRESET.flag} {value!r}: expected one of {choices}") from None
