"""Publishing a chunk: its documents, and the order they are written in.

Outputs wait in the chunk's scratch folder and are published in a fixed order: detections, debug
chunk, verification report, processed chunk, then the chunk result, whose presence means "this index
is done". A crash at any point leaves no result, so the index is redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faceblur_contract.options import ProcessOptions
from faceblur_contract.records import ChunkResult, VerificationReport

from faceblur.detectors.providers import Runtime
from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Chunk, ChunkDetections
from faceblur.storage import ObjectStore

if TYPE_CHECKING:
    from faceblur.process.run import Outcome


@dataclass(frozen=True)
class ChunkDocuments:
    """What a chunk publishes besides its video files."""

    detections: ChunkDetections
    result: ChunkResult
    verification: VerificationReport | None  # None: verification is off


def documents(
    chunk: Chunk, detectors: list[str], outcome: Outcome, seconds: float, runtime: Runtime | None
) -> ChunkDocuments:
    own = range(chunk.first_frame, chunk.last_frame + 1)
    detections = ChunkDetections(
        index=chunk.index,
        first_frame=chunk.first_frame,
        last_frame=chunk.last_frame,
        detectors=detectors,
        frames=outcome.final,
        neighbour_frames={n: boxes for n, boxes in outcome.raw.items() if boxes and n not in own},
        rejected=outcome.rejected,
        whole_frames=outcome.whole,
    )
    result = ChunkResult(
        index=chunk.index,
        frames=chunk.frame_count,
        faces=sum(len(boxes) for boxes in outcome.final.values()),
        detected_faces=sum(len(outcome.raw.get(n, ())) for n in own),
        frames_with_faces=len(outcome.final),
        detectors=detectors,
        seconds=round(seconds, 3),
        whole_frames=len(outcome.whole),
        encoder=outcome.encoder,
    )
    verification = outcome.verification
    if verification is not None:
        result = result.model_copy(update={"verification": verification.summary})
    if runtime is not None:
        result = result.model_copy(update={"runtime": runtime.provider, "device": runtime.device})
    return ChunkDocuments(detections, result, verification)


def publish(
    store: ObjectStore, layout: JobLayout, options: ProcessOptions, scratch: Path, written: ChunkDocuments
) -> None:
    """Write the chunk's objects, its result last; the files come from `scratch`."""
    index = written.result.index
    if options.force or options.merge:
        store.delete(layout.chunk_result(index))  # the index is not done while its objects are replaced
    store.put_bytes(layout.detections(index), written.detections.to_json(), "application/json")
    if options.debug:
        store.upload(scratch / "debug.mkv", layout.debug_chunk(index), "video/x-matroska")
    if written.verification is not None:
        store.put_bytes(layout.chunk_verification(index), written.verification.to_json(), "application/json")
    store.upload(scratch / "processed.mkv", layout.processed(index), "video/x-matroska")
    store.put_bytes(layout.chunk_result(index), written.result.to_json(), "application/json")
