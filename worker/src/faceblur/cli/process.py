"""`faceblur process`: the pod entry point that anonymizes one chunk (or several, or every
unfinished one when workers share a folder)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from faceblur_contract import indexes as index_ranges
from faceblur_contract.options import ProcessOptions, UsageError

from faceblur.cli.options import JobUrl, S3Endpoint, Verbose, env, processing_options, with_processing_options
from faceblur.cli.root import app, open_job, out, s3_settings
from faceblur.command import command
from faceblur.jobmanifest import chunks_at, load_manifest
from faceblur.layout import JobLayout
from faceblur.manifest import ChunkResult
from faceblur.progressui import progress_bar
from faceblur.storage import ObjectStore


@app.command()
@with_processing_options(second_pass=True)
def process(
    ctx: typer.Context,
    job: JobUrl,
    index: Annotated[
        int | None,
        typer.Option(
            min=0,
            envvar=[env("INDEX"), "JOB_COMPLETION_INDEX"],
            help="Chunk index (default: $JOB_COMPLETION_INDEX).",
        ),
    ] = None,
    indexes: Annotated[
        str | None, typer.Option(envvar=env("INDEXES"), help="A range of chunk indexes, e.g. 3-5 or 0,2,7.")
    ] = None,
    all_chunks: Annotated[
        bool,
        typer.Option(
            "--all",
            envvar=env("ALL"),
            help="Claim and process every unfinished chunk (workers share the folder).",
        ),
    ] = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
    **processing: Any,  # the shared processing options, merge and force (see `with_processing_options`)
) -> None:
    """Detect and anonymize the faces of one chunk (or several) and publish the result."""
    with command("process", verbose, pod=True) as record:
        options = processing_options(ctx.params)
        source = ctx.get_parameter_source("index")
        index_from_env = source is not None and source.name == "ENVIRONMENT"
        wanted = chosen_indexes(index, index_from_env, indexes, all_chunks)
        store, layout = open_job(job, s3_settings(s3_endpoint))
        results = _process(store, layout, options, wanted)
        record.update(results[0].model_dump(mode="json") if len(results) == 1 else sum_results(results))
        frames, faces = sum(r.frames for r in results), sum(r.faces for r in results)
        out.print(f"processed {len(results)} chunk(s): {frames} frames, {faces} faces covered")


def chosen_indexes(
    index: int | None, index_from_env: bool, indexes: str | None, all_chunks: bool
) -> list[int] | None:
    """The chunks the options ask for; None for every unfinished one (--all).

    JOB_COMPLETION_INDEX (an index from the environment) does not narrow an explicit --all or
    --indexes; two explicit choices are a usage error."""
    if all_chunks or indexes is not None:
        if sum([all_chunks, indexes is not None, index is not None and not index_from_env]) > 1:
            raise UsageError("give one of --index, --indexes or --all")
        return None if all_chunks else parse_indexes(indexes or "")
    if index is None:
        raise UsageError("no chunk index: give --index, --indexes, --all or set JOB_COMPLETION_INDEX")
    return [index]


def parse_indexes(text: str) -> list[int]:
    """'3-5' -> [3, 4, 5]; '0,2,7-8' -> [0, 2, 7, 8] (the contract's notation), else a usage error."""
    try:
        return index_ranges.parse_indexes(text)
    except ValueError:
        raise UsageError(f"invalid --indexes {text!r}: expected e.g. 3-5 or 0,2,7-8") from None


def _process(
    store: ObjectStore, layout: JobLayout, options: ProcessOptions, wanted: list[int] | None
) -> list[ChunkResult]:
    manifest = load_manifest(store, layout)
    if wanted is None:
        from faceblur.runner import process_pending

        with progress_bar(manifest.frame_count, "process") as advance:
            return process_pending(store, layout, manifest, options, progress=advance)
    from faceblur.process import process_chunk  # heavy (onnxruntime): only where chunks are processed

    chunks = chunks_at(manifest, wanted)
    with progress_bar(sum(c.frame_count for c in chunks), "process") as advance:
        return [process_chunk(store, layout, c.index, options, advance) for c in chunks]


def sum_results(results: list[ChunkResult]) -> dict[str, Any]:
    """The termination record of several chunks: their indexes and summed counts."""
    return {
        "indexes": [r.index for r in results],
        "frames": sum(r.frames for r in results),
        "faces": sum(r.faces for r in results),
        "detected_faces": sum(r.detected_faces for r in results),
        "frames_with_faces": sum(r.frames_with_faces for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
    }
