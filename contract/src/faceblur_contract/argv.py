"""The command lines the operator gives the worker's pods.

`process_argv` is the options -> argv direction of the catalogue (`faceblur_contract.options`);
the worker's typer app and `build_options` are the way back, and `build_options` of the parsed
argv gives back the same options for any options (tests/contract/test_seam.py).
"""

from __future__ import annotations

from faceblur_contract import defaults as d
from faceblur_contract.enums import SplitMode, TruncatedInput
from faceblur_contract.options import CATALOGUE, ProcessOptions, catalogue_option
from faceblur_contract.pods import CHUNKS_PER_INDEX_FLAG

JOB_FLAG = "--job"
INPUT_FLAG = "--input"
OUTPUT_FLAG = "--output"
CLEANUP_FLAG = "--cleanup"
OWNER_FLAG = "--owner"
OVERWRITE_FLAG = "--overwrite"


def cleanup_argv(job_url: str, owner: str) -> tuple[str, ...]:
    """`faceblur cleanup` arguments: it deletes what the job `owner` wrote under `job_url`, only."""
    return (JOB_FLAG, job_url, OWNER_FLAG, owner)


def options_argv(options: ProcessOptions) -> list[str]:
    """The options in the catalogue's order: every one the spec has, at its default too (the worker's
    defaults need not be the operator's), and the command line's own where they are not at their
    default. Per-detector values are NAME=VALUE when several detectors are in use."""
    detectors = options.detectors
    args: list[str] = []
    for item in CATALOGUE:
        if not item.per_detector:
            value = options
            for name in item.path:
                value = getattr(value, name)
            if item.spec is not None or value != item.default:
                args += item.render(value)
            continue
        for spec in detectors:
            value = getattr(spec, item.path[1])
            if value is None:
                continue
            shown = item.text(value)
            if len(detectors) > 1 and item.path[1] != "name":
                shown = f"{spec.name.value}={shown}"
            args += [item.flag, shown]
    return args


def process_argv(job_url: str, options: ProcessOptions, chunks_per_index: int = 1) -> tuple[str, ...]:
    """`faceblur process` arguments; the index comes from JOB_COMPLETION_INDEX, and stands for a group
    of `chunks_per_index` chunks (faceblur_contract.pods.index_chunks) where that is more than one."""
    grouping = (CHUNKS_PER_INDEX_FLAG, str(chunks_per_index)) if chunks_per_index > 1 else ()
    return (JOB_FLAG, job_url, *grouping, *options_argv(options))


def split_argv(
    input_url: str,
    job_url: str,
    *,
    chunks: int | None,
    chunk_frames: int | None,
    mode: SplitMode,
    owner: str,
    output_url: str,
    overwrite: bool,
    if_truncated: TruncatedInput = d.TRUNCATED_INPUT.default,
) -> tuple[str, ...]:
    """`faceblur split` arguments: at most one of chunks and chunk_frames (chunks wins); `owner`, the
    FaceBlurJob's uid, claims the job prefix (faceblur.job.claim); the output, which split checks
    before any work (not the input, not an existing object unless `overwrite`)."""
    args = [INPUT_FLAG, input_url, JOB_FLAG, job_url, OWNER_FLAG, owner, OUTPUT_FLAG, output_url]
    if overwrite:
        args.append(OVERWRITE_FLAG)
    if chunks is not None:
        args += [d.CHUNKS.flag, str(chunks)]
    elif chunk_frames is not None:
        args += [d.CHUNK_FRAMES.flag, str(chunk_frames)]
    args += [d.SPLIT_MODE.flag, mode.value]
    args += [d.TRUNCATED_INPUT.flag, if_truncated.value]
    return tuple(args)


def compose_argv(
    job_url: str, output_url: str, options: ProcessOptions, *, cleanup: bool, overwrite: bool
) -> tuple[str, ...]:
    """`faceblur compose` arguments: the debug output and the residual-face bound of the options;
    `overwrite` lets it replace an existing output that is not the job's own."""
    args = [JOB_FLAG, job_url, OUTPUT_FLAG, output_url]
    if overwrite:
        args.append(OVERWRITE_FLAG)
    args += catalogue_option("debug").render(options.debug)
    args += catalogue_option("verification.max_residual_frames").render(
        options.verification.max_residual_frames
    )
    if cleanup:
        args.append(CLEANUP_FLAG)
    return tuple(args)
