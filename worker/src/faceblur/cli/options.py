"""The typer options the commands share (each also read from FACEBLUR_<NAME>).

The processing options are the contract's catalogue (`faceblur_contract.options`): their flags,
variables, defaults, bounds, help and panels become typer parameters here, so adding an option
to the catalogue adds it to `process` and `blur` with nothing written in this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from faceblur_contract import defaults as d
from faceblur_contract.enums import TruncatedInput
from faceblur_contract.options import CATALOGUE, Codec, Option, ProcessOptions, build_options, no_flag

__all__ = [
    "IfTruncated",
    "InputArgument",
    "JobUrl",
    "Output",
    "Overwrite",
    "Owner",
    "S3Endpoint",
    "Verbose",
    "env",
    "option_parameter",
    "processing_options",
    "with_processing_options",
]


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
Owner = Annotated[
    str | None,
    typer.Option(
        envvar=env("OWNER"),
        help="The job that owns the --job prefix (the operator passes its FaceBlurJob's uid).",
    ),
]
IfTruncated = Annotated[
    TruncatedInput,
    typer.Option(
        d.TRUNCATED_INPUT.flag,
        envvar=d.TRUNCATED_INPUT.envvar,
        help="An input that ends before its header says or cannot be read to its end: refuse it before"
        " any work, or anonymize the frames that can be read (readable).",
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

Overwrite = Annotated[
    bool,
    typer.Option(
        envvar=env("OVERWRITE"),
        help="Replace the output if it exists (default for pods: refuse, unless this job wrote it).",
    ),
]


def option_parameter(item: Option) -> tuple[Any, Any]:
    """(annotated type, default) of one catalogue option as a typer parameter."""
    names: list[str] = list(item.flags)
    kind: Any = item.base
    default = item.default
    if item.codec is Codec.SWITCH:
        names = [f"{item.flag}/{no_flag(item.flag)}"]
    if item.per_detector or item.codec is Codec.REGIONS:
        kind = list.__class_getitem__(item.base if item.codec is Codec.CHOICE else str) | None
        default = None
    elif item.optional:
        kind = kind | None
    return (
        Annotated[
            kind,
            typer.Option(
                *names,
                envvar=item.envvars,
                help=item.help,
                rich_help_panel=item.panel.value,
                **(item.bounds.option() if item.codec is Codec.NUMBER and not item.per_detector else {}),
            ),
        ],
        default,
    )


def _parameters(second_pass: bool) -> list[tuple[str, Any, Any]]:
    """(name, annotated type, default) of every processing option a command takes."""
    found = []
    for item in CATALOGUE:
        if item.second_pass and not second_pass:
            continue
        found.append((item.param, *option_parameter(item)))
        if item.shortcut is not None and item.shortcut_param is not None:
            flag, _value, help_text = item.shortcut
            shortcut = typer.Option(
                flag,
                envvar=env(item.shortcut_param.upper()),
                help=help_text,
                rich_help_panel=item.panel.value,
            )
            found.append((item.shortcut_param, Annotated[bool, shortcut], False))
    return found


F = TypeVar("F", bound=Callable[..., Any])


def with_processing_options(*, second_pass: bool) -> Callable[[F], F]:
    """Add the shared processing options to a command's signature, where typer reads its options.

    The command takes them as `**processing` and reads them through `processing_options(ctx.params)`,
    so `process` and `blur` cannot drift apart the way two hand-copied parameter lists did."""
    extra = _parameters(second_pass)

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
    """The parsed processing options of `process` or `blur`, from typer's parameter values."""
    return build_options(params)
