"""The command lines the operator gives the worker's pods, rendered from typed requests.

`process_argv` is the options -> argv direction; the worker's typer app and
`faceblur_contract.options.build_options` are the way back. `ProcessRequest.options()` states
what a request means on the worker's side, so a test can check render -> parse -> equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faceblur_contract import defaults as d
from faceblur_contract.enums import (
    DetectorName,
    ExecutionProvider,
    MaskShape,
    ReplaceWith,
    SplitMode,
    X264Preset,
)
from faceblur_contract.options import DetectorSpec, ProcessOptions, VerifyOptions, parse_scale
from faceblur_contract.regions import Region

JOB_FLAG = "--job"
INPUT_FLAG = "--input"
OUTPUT_FLAG = "--output"
CLEANUP_FLAG = "--cleanup"


def number(value: float) -> str:
    """Shortest text that parses back to the same float (repr round-trips exactly)."""
    return repr(float(value)) if float(value) != int(value) else str(int(value))


@dataclass(frozen=True)
class ProcessRequest:
    """What the operator asks of each `faceblur process` pod. Detector fields left None are not
    rendered, so the worker applies its own defaults; the others are always rendered."""

    detector: DetectorName | None = None
    model: str | None = None
    threshold: float | None = None
    scale: str | None = None
    batch_size: int | None = None
    execution_provider: ExecutionProvider | None = None
    replacewith: ReplaceWith = d.REPLACE_WITH.default
    mask_shape: MaskShape = d.MASK_SHAPE.default
    mask_scale: float = d.MASK_SCALE.default
    look_back: int = d.LOOK_BACK.default
    look_ahead: int = d.LOOK_AHEAD.default
    crf: int = d.CRF.default
    preset: X264Preset = d.PRESET.default
    debug: bool = d.DEBUG.default
    keep_regions: tuple[Region, ...] = ()
    blur_regions: tuple[Region, ...] = ()
    fail_secure: bool = d.FAIL_SECURE.default
    fail_secure_hold: int = d.FAIL_SECURE_HOLD.default
    verify: VerifyOptions = field(default_factory=VerifyOptions)

    def options(self) -> ProcessOptions:
        """The options the worker must parse this request's argv into."""
        detector = DetectorSpec(
            name=self.detector or d.DETECTOR.default,
            model=self.model,
            thresh=self.threshold,
            scale=parse_scale(self.scale) if self.scale else None,
        )
        return ProcessOptions(
            detectors=(detector,),
            replacewith=self.replacewith,
            mask_shape=self.mask_shape,
            mask_scale=self.mask_scale,
            look_back=self.look_back,
            look_ahead=self.look_ahead,
            batch_size=self.batch_size if self.batch_size is not None else d.BATCH_SIZE.default,
            execution_provider=self.execution_provider or d.EXECUTION_PROVIDER.default,
            crf=self.crf,
            preset=self.preset,
            debug=self.debug,
            keep_regions=self.keep_regions,
            blur_regions=self.blur_regions,
            fail_secure=self.fail_secure,
            fail_secure_hold=self.fail_secure_hold,
            verify=self.verify,
        )


def process_argv(job_url: str, request: ProcessRequest) -> tuple[str, ...]:
    """`faceblur process` arguments; the chunk index comes from JOB_COMPLETION_INDEX."""
    args = [JOB_FLAG, job_url]
    optional: list[tuple[str, str | None]] = [
        (d.DETECTOR.flag, request.detector.value if request.detector is not None else None),
        (d.MODEL.flag, request.model or None),
        (d.THRESHOLD.flag, number(request.threshold) if request.threshold is not None else None),
        (d.SCALE.flag, request.scale or None),
        (d.BATCH_SIZE.flag, str(request.batch_size) if request.batch_size is not None else None),
        (
            d.EXECUTION_PROVIDER.flag,
            request.execution_provider.value if request.execution_provider is not None else None,
        ),
    ]
    args += [word for flag, value in optional if value is not None for word in (flag, value)]
    args += [d.REPLACE_WITH.flag, request.replacewith.value, d.MASK_SHAPE.flag, request.mask_shape.value]
    args += [d.MASK_SCALE.flag, number(request.mask_scale)]
    args += [d.LOOK_BACK.flag, str(request.look_back), d.LOOK_AHEAD.flag, str(request.look_ahead)]
    args += [d.CRF.flag, str(request.crf), d.PRESET.flag, request.preset.value]
    if request.debug:
        args.append(d.DEBUG.flag)
    args += [word for region in request.keep_regions for word in (d.KEEP_REGION.flag, region.text())]
    args += [word for region in request.blur_regions for word in (d.BLUR_REGION.flag, region.text())]
    if request.fail_secure:
        args.append(d.FAIL_SECURE.flag)
    args += [d.FAIL_SECURE_HOLD.flag, str(request.fail_secure_hold)]
    args += verify_argv(request.verify)
    return tuple(args)


def verify_argv(verify: VerifyOptions) -> list[str]:
    """The verification flags, all rendered (the worker's defaults need not be the operator's)."""
    args = [d.VERIFY.flag if verify.enabled else no_flag(d.VERIFY.flag)]
    args += [d.VERIFY_EVERY.flag, str(verify.every)]
    args += [d.VERIFY_THRESHOLD_FACTOR.flag, number(verify.threshold_factor)]
    args += [d.VERIFY_SCALE_FACTOR.flag, number(verify.scale_factor)]
    if verify.max_residual_frames is not None:
        args += [d.VERIFY_MAX_RESIDUAL_FRAMES.flag, str(verify.max_residual_frames)]
    return args


def no_flag(flag: str) -> str:
    """`--verify` -> `--no-verify`: the off switch of a boolean flag."""
    return "--no-" + flag.removeprefix("--")


def split_argv(
    input_url: str, job_url: str, *, chunks: int | None, chunk_frames: int | None, mode: SplitMode
) -> tuple[str, ...]:
    """`faceblur split` arguments: at most one of chunks and chunk_frames (chunks wins)."""
    args = [INPUT_FLAG, input_url, JOB_FLAG, job_url]
    if chunks is not None:
        args += [d.CHUNKS.flag, str(chunks)]
    elif chunk_frames is not None:
        args += [d.CHUNK_FRAMES.flag, str(chunk_frames)]
    args += [d.SPLIT_MODE.flag, mode.value]
    return tuple(args)


def compose_argv(
    job_url: str, output_url: str, *, debug: bool, cleanup: bool, max_residual_frames: int | None = None
) -> tuple[str, ...]:
    args = [JOB_FLAG, job_url, OUTPUT_FLAG, output_url]
    if debug:
        args.append(d.DEBUG.flag)
    if max_residual_frames is not None:
        args += [d.VERIFY_MAX_RESIDUAL_FRAMES.flag, str(max_residual_frames)]
    if cleanup:
        args.append(CLEANUP_FLAG)
    return tuple(args)
