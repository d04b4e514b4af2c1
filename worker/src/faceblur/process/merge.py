"""Merging with an earlier pass over the chunk (`--merge`): its detections, minus those of the
detectors run again now, join this run's before smoothing, and the result names both passes'
detectors."""

from __future__ import annotations

import logging

from faceblur.job.layout import JobLayout
from faceblur.job.manifest import Box, BoxSource, ChunkDetections
from faceblur.storage import ObjectStore

log = logging.getLogger(__name__)

RawDetections = dict[int, list[Box]]  # frame number -> detected boxes


def previous_detections(store: ObjectStore, layout: JobLayout, index: int) -> ChunkDetections | None:
    key = layout.detections(index)
    if not store.exists(key):
        log.warning("merge: chunk %d has no detections yet: processing it from scratch", index)
        return None
    return ChunkDetections.model_validate_json(store.get_bytes(key))


def merged_names(previous: ChunkDetections | None, current: list[str]) -> list[str]:
    earlier = previous.detectors if previous else []
    return [*earlier, *(name for name in current if name not in earlier)]


def earlier_raw(previous: ChunkDetections | None, replaced: set[str]) -> RawDetections:
    """Detections of an earlier pass to merge with, minus those of detectors run again now."""
    if previous is None:
        return {}
    merged: RawDetections = {}
    stored = [*previous.frames.items(), *previous.neighbour_frames.items(), *previous.rejected.items()]
    for number, boxes in stored:
        kept = [
            b.model_copy(update={"source": BoxSource.DETECTED})
            for b in boxes
            if b.source in (BoxSource.DETECTED, BoxSource.REJECTED) and b.detector not in replaced
        ]
        if kept:
            merged.setdefault(number, []).extend(kept)
    return merged
