"""Process one chunk of a job: fetch, run, publish.

A chunk worker needs no coordination with its neighbours: it also decodes and detects
the few frames of the neighbouring chunks that smoothing looks at (the halo,
`faceblur.process.halo`), so every chunk comes out exactly as a single run over the whole
video would make it.

Fetch: the manifest, any earlier detections to merge with (`merge`), the detectors on the
thread plan, and the chunk files the halo needs, downloaded to a temporary folder. Run: the
pipeline (`run`) of detection (`framing`), smoothing and masking (`masking`), encoding and the
verification check. Publish (`publish`): the chunk's objects in a fixed order, its result last,
whose presence means "this index is done". A crash at any point leaves no result, so the index is
redone.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
from faceblur_contract.options import ProcessOptions
from faceblur_contract.records import ChunkResult

from faceblur.detectors import shared_detector
from faceblur.detectors.batching import close_union, shared_union
from faceblur.detectors.providers import Runtime, chosen_providers, runs_on_gpu, runtime_in_use
from faceblur.errors import MediaFileError
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Manifest
from faceblur.job.state import chunks_at, load_manifest, object_location
from faceblur.process.halo import Segment, halo, plan_segments
from faceblur.process.merge import earlier_raw, merged_names, previous_detections
from faceblur.process.publish import documents, publish
from faceblur.process.run import ChunkRun, Detectors, Progress, run_chunk
from faceblur.process.threadplan import PodPlan, plan_pod, pod_cores
from faceblur.storage import ObjectStore
from faceblur.temporal.smoothing import SmoothingParams
from faceblur.verify.chunkpass import sensitive_detector, tracking_detector

log = logging.getLogger(__name__)


def process_chunk(
    store: ObjectStore,
    layout: JobLayout,
    index: int,
    options: ProcessOptions,
    progress: Progress | None = None,
    bench: Workbench | None = None,
) -> ChunkResult:
    """Process chunk `index`, on the detectors of `bench` (shared with other pipelines), or on a
    workbench of its own."""
    if bench is None:
        with workbench(load_manifest(store, layout), options, pipelines=1) as own:
            return process_chunk(store, layout, index, options, progress, own)
    started = time.monotonic()
    manifest = load_manifest(store, layout)
    (chunk,) = chunks_at(manifest, [index])
    result_key = layout.chunk_result(index)
    if not (options.force or options.merge) and store.exists(result_key):
        log.info("chunk %d is already done: nothing to do", index)
        return ChunkResult.model_validate_json(store.get_bytes(result_key))
    previous = previous_detections(store, layout, index) if options.merge else None
    detectors, plan, runtime = bench.detectors, bench.pod.per_pipeline, bench.runtime
    params = SmoothingParams.for_window(options.look_back, options.look_ahead)
    segments = plan_segments(manifest.chunks, index, *halo(params, options))
    names = merged_names(previous, detectors.faces.names)

    with tempfile.TemporaryDirectory(prefix=f"faceblur-{index:06d}-") as tmp_name:
        scratch = Path(tmp_name)
        run = ChunkRun(
            chunk=chunk,
            manifest=manifest,
            segments=tuple(segments),
            files=_download_chunks(store, segments, scratch),
            detectors=detectors,
            earlier=earlier_raw(previous, set(detectors.faces.names)),
            params=params,
            options=options,
            plan=plan,
            scratch=scratch,
            progress=progress,
        )
        try:
            outcome = run_chunk(run)
        except MediaFileError as exc:  # name the job's chunk object, not its scratch copy
            raise exc.naming(_chunk_copies(store, run.segments, run.files)) from None
        written = documents(chunk, names, outcome, time.monotonic() - started, runtime)
        publish(store, layout, options, scratch, written)
    result = written.result
    log.info(
        "chunk %d: %d frames, %d faces covered (%d detected) in %.1fs",
        index, result.frames, result.faces, result.detected_faces, result.seconds,
    )  # fmt: skip
    return result


@dataclass(frozen=True)
class Workbench:
    """What a worker's chunk pipelines share: the detectors, each batching the frames of all the
    pipelines into its inferences (`faceblur.detectors.batching`), the plan, the runtime in use."""

    detectors: Detectors
    pod: PodPlan
    runtime: Runtime | None

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        close_union(self.detectors.faces)
        if self.detectors.verifier is not None:
            close_union(self.detectors.verifier)


def pod_plan(
    options: ProcessOptions, on_gpu: bool, pipelines: int | None = None, most: int | None = None
) -> PodPlan:
    """The worker's pipelines (None: as many as its budget keeps busy) and their threads, from its
    budget: --threads, or the cores its pod is given."""
    cv2.setNumThreads(1)  # OpenCV's own pool would compete with the plan's threads
    budget = options.threads or pod_cores()
    return plan_pod(budget, on_gpu, options.batch_size, pipelines, most)


def workbench(
    manifest: Manifest, options: ProcessOptions, pipelines: int | None = None, most: int | None = None
) -> Workbench:
    """The job's detectors and their verifier, shared by the pod's pipelines (at most `most`: the
    chunks there are), on the plan of the runtime actually in use (`auto` may have started no CUDA)."""
    pod = pod_plan(options, runs_on_gpu(chosen_providers(options.execution_provider)), pipelines, most)
    plan = pod.per_pipeline
    detector = shared_detector(
        tuple(options.detectors), options.execution_provider, plan.intra_op, pod.networks
    )
    runtime = runtime_in_use()
    if runtime is not None and runs_on_gpu([runtime.provider]) != plan.on_gpu:  # auto started no CUDA
        pod = pod_plan(options, not plan.on_gpu, pipelines, most)
        plan = pod.per_pipeline
        detector = shared_detector(
            tuple(options.detectors), options.execution_provider, plan.intra_op, pod.networks
        )
    check = options.verification
    verifier = sensitive_detector(manifest, options, plan.intra_op) if check.enabled else None
    tracker = tracking_detector(manifest, options, plan.intra_op) if check.enabled and check.fix else None
    checks = replace(pod.batching, runners=pod.verifier_runners)  # GPU: the pipelines' checks in one batch
    return Workbench(
        Detectors(
            shared_union(detector, pod.batching),
            shared_union(verifier, checks) if verifier is not None else None,
            tracker,
        ),
        pod,
        runtime,
    )


def _chunk_copies(
    store: ObjectStore, segments: Sequence[Segment], files: Mapping[int, Path]
) -> dict[Path, tuple[str, str]]:
    """What each downloaded chunk file is a copy of, and what to do when it cannot be read."""
    return {
        files[s.chunk.index]: (
            f"chunk {s.chunk.index} ({object_location(store, s.chunk.key)})",
            "the job's chunk is damaged: split the input again into a new job"
            " (a new --job folder or prefix, or delete the FaceBlurJob and create it again)",
        )
        for s in segments
    }


def _download_chunks(store: ObjectStore, segments: Sequence[Segment], scratch: Path) -> dict[int, Path]:
    files = {}
    for segment in segments:
        path = scratch / f"chunk-{segment.chunk.index:06d}{Path(segment.chunk.key).suffix or '.mkv'}"
        store.download(segment.chunk.key, path)
        files[segment.chunk.index] = path
    return files
