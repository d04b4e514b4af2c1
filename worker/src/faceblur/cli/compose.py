"""`faceblur compose`: the pod entry point that rebuilds and publishes the output."""

from __future__ import annotations

from typing import Annotated

import typer

from faceblur.cli.options import JobUrl, Output, S3Endpoint, Verbose, env
from faceblur.cli.root import app, open_job, out, s3_settings
from faceblur.cli.verifyoptions import VerifyMaxResidualFrames
from faceblur.command import command
from faceblur.verify import describe


@app.command()
def compose(
    job: JobUrl,
    output: Output,
    debug: Annotated[
        bool,
        typer.Option(envvar=env("DEBUG"), help="Also concatenate debug chunks and write a contact sheet."),
    ] = False,
    cleanup: Annotated[
        bool, typer.Option(envvar=env("CLEANUP"), help="Delete the job's intermediates after publishing.")
    ] = False,
    verify_max_residual_frames: VerifyMaxResidualFrames = None,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Concatenate the processed chunks with the input's audio and metadata; publish the output."""
    from faceblur.compose import compose as compose_job

    with command("compose", verbose, pod=True) as record:
        settings = s3_settings(s3_endpoint)
        store, layout = open_job(job, settings)
        result = compose_job(
            store,
            layout,
            output,
            debug=debug,
            cleanup=cleanup,
            s3_settings=settings,
            max_residual_frames=verify_max_residual_frames,
        )
        record.update(result.model_dump(mode="json"))
        out.print(f"published {output}: {result.frames} frames, {result.faces} faces covered")
        if result.verification is not None:
            out.print(f"verification: {describe(result.verification)} ({result.verification_report})")
