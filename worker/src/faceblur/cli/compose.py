"""`faceblur compose`: the pod entry point that rebuilds and publishes the output."""

from __future__ import annotations

from typing import Annotated

import typer
from faceblur_contract.options import catalogue_option

from faceblur.cli.command import command
from faceblur.cli.options import JobUrl, Output, Overwrite, S3Endpoint, Verbose, env, option_parameter
from faceblur.cli.root import app, open_job, out, s3_settings
from faceblur.verify.residual import describe

# The catalogue's bound on residual frames: compose is where it fails a job.
VerifyMaxResidualFrames, _ = option_parameter(catalogue_option("verification.max_residual_frames"))


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
    verify_max_residual_frames: VerifyMaxResidualFrames = None,  # type: ignore[valid-type]
    overwrite: Overwrite = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Concatenate the processed chunks with the input's audio and metadata; publish the output."""
    from faceblur.job.compose import compose as compose_job

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
            overwrite=overwrite,
        )
        record.update(result.model_dump(mode="json"))
        out.print(f"published {output}: {result.frames} frames, {result.faces} faces covered")
        if result.verification is not None:
            out.print(f"verification: {describe(result.verification)} ({result.verification_report})")
