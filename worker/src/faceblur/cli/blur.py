"""`faceblur blur`: the whole job on this machine (split, parallel workers, compose) with a
progress bar and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from faceblur_contract import defaults as d
from rich.table import Table
from rich.text import Text

from faceblur.cli.command import command
from faceblur.cli.options import (
    IfTruncated,
    InputArgument,
    Output,
    S3Endpoint,
    Verbose,
    env,
    processing_options,
    with_processing_options,
)
from faceblur.cli.progressui import RichReporter
from faceblur.cli.root import app, out, s3_settings
from faceblur.verify.residual import describe


@app.command()
@with_processing_options(second_pass=False)
def blur(
    ctx: typer.Context,
    input: InputArgument,
    output: Output,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, envvar=env("WORKERS"), help="Parallel worker processes (default: cores/2, 1 to 4)."
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            envvar=env("WORKDIR"), help="Work folder (default: .<output>.faceblur/ beside the output)."
        ),
    ] = None,
    chunks: Annotated[
        int | None,
        typer.Option(
            d.CHUNKS.flag,
            **d.CHUNKS.bounds.option(),
            envvar=d.CHUNKS.envvar,
            help="Number of chunks (default: 2 per worker, 1 with a single worker; at least one a minute).",
        ),
    ] = None,
    keep_intermediates: Annotated[
        bool, typer.Option(envvar=env("KEEP_INTERMEDIATES"), help="Keep the work folder after success.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite/--no-overwrite",
            envvar=env("OVERWRITE"),
            help="Replace an existing output (as deface does); --no-overwrite refuses before any work.",
        ),
    ] = True,
    if_truncated: IfTruncated = d.TRUNCATED_INPUT.default,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
    **processing: Any,  # the shared processing options (see `with_processing_options`)
) -> None:
    """Anonymize every face of a video on this machine: split, parallel workers, compose."""
    from faceblur.job.blur import blur as run_blur

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
                s3_settings=s3_settings(s3_endpoint),
                reporter=reporter,
                overwrite=overwrite,
                if_truncated=if_truncated,
            )
        result = summary.result
        record.update(result.model_dump(mode="json"))
        table = Table(title="faceblur", show_header=False)
        table.add_column("what", no_wrap=True)
        table.add_column("value", overflow="fold")  # paths are shown whole, folded over lines
        table.add_row("output", output)
        if summary.output_plan:
            table.add_row("streams", summary.output_plan)
        table.add_row("frames", str(result.frames))
        if result.truncated is not None:
            note = f"only the first {result.frames} frames were processed: {result.truncated}"
            table.add_row("input truncated", Text(note, style="bold yellow"))
        table.add_row("faces covered", str(result.faces))
        table.add_row(
            "frames with faces",
            f"{result.frames_with_faces} ({_share(result.frames_with_faces, result.frames)})",
        )
        if options.fail_secure or result.whole_frames:
            share = _share(result.whole_frames, result.frames)
            table.add_row("anonymized whole (fail-secure)", f"{result.whole_frames} frames ({share})")
        table.add_row("chunks", str(result.chunks))
        table.add_row("inference, encoder", "; ".join(result.runtimes))
        table.add_row(
            "wall time",
            f"{summary.seconds:.1f} s ({result.frames / max(summary.seconds, 1e-9):.1f} frames/s)",
        )
        if result.verification is not None:
            style = "bold red" if result.verification.residual_frames else "green"
            table.add_row("verification", Text(describe(result.verification), style=style))
            table.add_row("verification report", result.verification_report or "")
        if result.debug_video:
            table.add_row("debug video", result.debug_video)
            table.add_row("contact sheet", result.contact_sheet or "")
        if summary.kept:
            table.add_row("work folder", str(summary.workdir))
        out.print(table)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"
