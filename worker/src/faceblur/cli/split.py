"""`faceblur split`: the pod entry point that cuts the input into a job's chunks."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from faceblur_contract import defaults as d
from faceblur_contract.enums import SplitMode
from faceblur_contract.options import UsageError

from faceblur.cli.command import command
from faceblur.cli.options import IfTruncated, JobUrl, Overwrite, Owner, S3Endpoint, Verbose, env
from faceblur.cli.root import app, open_job, out, s3_settings


class ExportFormat(StrEnum):
    PNG = "png"
    JPG = "jpg"


@app.command()
def split(
    input: Annotated[
        str, typer.Option("--input", envvar=env("INPUT"), help="Video path, http(s) URL or s3:// URL.")
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
    if_truncated: IfTruncated = d.TRUNCATED_INPUT.default,
    export_frames: Annotated[
        ExportFormat | None,
        typer.Option(envvar=env("EXPORT_FRAMES"), help="Also export every frame as an image."),
    ] = None,
    owner: Owner = None,
    output: Annotated[
        str | None,
        typer.Option(
            envvar=env("OUTPUT"),
            help="The job's output, checked before any work: not the input, not an existing object.",
        ),
    ] = None,
    overwrite: Overwrite = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Cut the input into chunks, copy its audio and write the job's manifest (last)."""
    from faceblur.job.split import split as split_job

    with command("split", verbose, pod=True) as record:
        if chunks is not None and chunk_frames is not None:
            raise UsageError("give --chunks or --chunk-frames, not both")
        settings = s3_settings(s3_endpoint)
        store, layout = open_job(job, settings)
        manifest = split_job(
            input,
            store,
            layout,
            chunks=chunks,
            chunk_frames=chunk_frames,
            mode=split_mode,
            export_frames=export_frames.value if export_frames else None,
            s3_settings=settings,
            owner=owner,
            output_url=output,
            overwrite=overwrite,
            if_truncated=if_truncated,
        )
        video = manifest.video
        record.update(
            {
                "chunks": len(manifest.chunks),
                "frames": manifest.frame_count,
                "width": video.width,
                "height": video.height,
                "duration_s": round(video.duration_s, 3),
                "input_bytes": video.size_bytes,  # the operator sizes the later pods' scratch space from it
            }
        )
        if video.truncated is not None:
            record["truncated"] = video.truncated
        out.print(
            f"split {input}: {manifest.frame_count} frames into {len(manifest.chunks)} chunks"
            f" ({manifest.split_mode.value}) -> {job}"
        )
        if manifest.output is not None:  # the container and what becomes of each stream
            record["output_plan"] = manifest.output.summary()
            out.print(
                f"output {manifest.output.output or '(container of our choosing)'}: {record['output_plan']}"
            )
        if video.truncated is not None:
            kept = manifest.frame_count
            out.print(
                f"the input is truncated ({video.truncated}): only its first {kept} frames are processed"
            )
