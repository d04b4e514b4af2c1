"""The options of the residual-face check (`faceblur.verify`), shared by `process`, `blur` and
`compose`; flags, variables, defaults and bounds are the contract's (defaults.VERIFY*)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from faceblur_contract import defaults as d
from faceblur_contract.options import VerifyOptions

_VERIFICATION = "Verification"

Verify = Annotated[
    bool,
    typer.Option(
        f"{d.VERIFY.flag}/--no-{d.VERIFY.flag.removeprefix('--')}",
        envvar=d.VERIFY.envvar,
        help="Check the output for faces left sharp: re-detect on sampled frames, more sensitively;"
        " the report goes beside the output (.verify.json).",
        rich_help_panel=_VERIFICATION,
    ),
]
VerifyEvery = Annotated[
    int,
    typer.Option(
        d.VERIFY_EVERY.flag,
        **d.VERIFY_EVERY.bounds.option(),
        envvar=d.VERIFY_EVERY.envvar,
        help="Check every n-th frame (1: all; the default costs 8-17 % of the processing time).",
        rich_help_panel=_VERIFICATION,
    ),
]
VerifyThreshFactor = Annotated[
    float,
    typer.Option(
        d.VERIFY_THRESHOLD_FACTOR.flag,
        **d.VERIFY_THRESHOLD_FACTOR.bounds.option(),
        envvar=d.VERIFY_THRESHOLD_FACTOR.envvar,
        help="Thresholds of the check: the detectors' own and the score of a face on its own, times this.",
        rich_help_panel=_VERIFICATION,
    ),
]
VerifyScaleFactor = Annotated[
    float,
    typer.Option(
        d.VERIFY_SCALE_FACTOR.flag,
        **d.VERIFY_SCALE_FACTOR.bounds.option(),
        envvar=d.VERIFY_SCALE_FACTOR.envvar,
        help="Inference size of the check: the detectors' own times this (finer finds smaller faces).",
        rich_help_panel=_VERIFICATION,
    ),
]
VerifyMaxResidualFrames = Annotated[
    int | None,
    typer.Option(
        d.VERIFY_MAX_RESIDUAL_FRAMES.flag,
        **d.VERIFY_MAX_RESIDUAL_FRAMES.bounds.option(),
        envvar=d.VERIFY_MAX_RESIDUAL_FRAMES.envvar,
        help="Fail, publishing nothing, when more checked frames than this keep a face (0: none allowed).",
        rich_help_panel=_VERIFICATION,
    ),
]

_DEFAULTS = VerifyOptions()

# (name, annotated type, default), as the processing options are declared
VERIFY_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("verify", Verify, _DEFAULTS.enabled),
    ("verify_every", VerifyEvery, _DEFAULTS.every),
    ("verify_thresh_factor", VerifyThreshFactor, _DEFAULTS.threshold_factor),
    ("verify_scale_factor", VerifyScaleFactor, _DEFAULTS.scale_factor),
    ("verify_max_residual_frames", VerifyMaxResidualFrames, _DEFAULTS.max_residual_frames),
)


def verify_options(params: dict[str, Any]) -> VerifyOptions:
    """The check's options from typer's parameter values."""
    return VerifyOptions(
        enabled=params["verify"],
        every=params["verify_every"],
        threshold_factor=params["verify_thresh_factor"],
        scale_factor=params["verify_scale_factor"],
        max_residual_frames=params["verify_max_residual_frames"],
    )
