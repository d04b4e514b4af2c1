"""`faceblur process`: the pod entry point that anonymizes one chunk (or several, or every
unfinished one when workers share a folder)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from faceblur_contract import indexes as index_ranges
from faceblur_contract.options import ProcessOptions, UsageError
from faceblur_contract.pods import CHUNKS_PER_INDEX_FLAG, MAX_PIPELINES, index_chunks, index_count
from faceblur_contract.records import ChunkResult

from faceblur.cli.command import command
from faceblur.cli.options import JobUrl, S3Endpoint, Verbose, env, processing_options, with_processing_options
from faceblur.cli.progressui import progress_bar
from faceblur.cli.root import app, open_job, out, s3_settings
from faceblur.job.layout import JobLayout
from faceblur.job.state import chunks_at, load_manifest
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
    chunks_per_index: Annotated[
        int,
        typer.Option(
            CHUNKS_PER_INDEX_FLAG,
            min=1,
            envvar=env("CHUNKS_PER_INDEX"),
            help="The index stands for this many chunks: index i processes chunks i*N to i*N+N-1 (the"
            " operator's Indexed Job, one index per pod).",
        ),
    ] = 1,
    pipelines: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_PIPELINES,
            envvar=env("PIPELINES"),
            help="Chunks processed at once, sharing one detector that batches their frames (default:"
            " one per core, one per 1.5 cores beside a GPU, of --threads or the pod's CPU limit, request"
            " or quota).",
        ),
    ] = None,
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
        if chunks_per_index > 1 and (indexes is not None or all_chunks):
            raise UsageError(
                f"{CHUNKS_PER_INDEX_FLAG} groups one --index; it does not go with --indexes or --all"
            )
        store, layout = open_job(job, s3_settings(s3_endpoint))
        results = _process(store, layout, options, wanted, pipelines, chunks_per_index)
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


def grouped(index: int, per_index: int, chunks: int) -> list[int]:
    """The chunks of Job index `index` in groups of `per_index` (the contract's rule); an index past
    the job's chunks is a usage error."""
    group = list(index_chunks(index, per_index, chunks))
    if not group:
        last = max(0, index_count(chunks, per_index) - 1)
        raise UsageError(
            f"index {index} in groups of {per_index} chunks is past the job's {chunks} chunks"
            f" (indexes 0-{last})"
        )
    return group


def _process(
    store: ObjectStore,
    layout: JobLayout,
    options: ProcessOptions,
    wanted: list[int] | None,
    pipelines: int | None,
    chunks_per_index: int = 1,
) -> list[ChunkResult]:
    manifest = load_manifest(store, layout)
    if wanted is not None and chunks_per_index > 1:
        wanted = grouped(wanted[0], chunks_per_index, len(manifest.chunks))
    if wanted is None:
        from faceblur.job.runner import process_pending

        with progress_bar(manifest.frame_count, "process") as advance:
            return process_pending(store, layout, manifest, options, progress=advance, pipelines=pipelines)
    # heavy (onnxruntime): only where chunks are processed
    from faceblur.process.chunk import process_chunk, workbench
    from faceblur.process.pool import ListClaims, run_pipelines

    chunks = chunks_at(manifest, wanted)
    with (
        progress_bar(sum(c.frame_count for c in chunks), "process") as advance,
        workbench(manifest, options, pipelines, most=len(chunks)) as bench,
    ):
        return run_pipelines(
            ListClaims(c.index for c in chunks),
            bench.pod.pipelines,
            lambda index: process_chunk(store, layout, index, options, advance, bench),
        )


def sum_results(results: list[ChunkResult]) -> dict[str, Any]:
    """The termination record of several chunks: their indexes, summed counts and the runtime."""
    return {
        "indexes": [r.index for r in results],
        "frames": sum(r.frames for r in results),
        "faces": sum(r.faces for r in results),
        "detected_faces": sum(r.detected_faces for r in results),
        "frames_with_faces": sum(r.frames_with_faces for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
        "runtime": results[0].runtime,  # the pod's pipelines share one detector
        "device": results[0].device,
        "encoder": results[0].encoder,  # the pod's GPU and FFmpeg: one choice for all its chunks
    }
