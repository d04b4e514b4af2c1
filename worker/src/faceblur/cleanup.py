"""What to delete of a job: its intermediates once the output is published, or all of it.

The final output lives under its own key, outside the job prefix, and is never touched.
"""

from __future__ import annotations

import logging

from faceblur.errors import InvalidInputError
from faceblur.layout import (
    AUDIO,
    CHUNKS,
    DEBUG,
    DETECTIONS,
    FRAMES,
    LOCKS,
    PROCESSED,
    RESULTS,
    VERIFICATION,
    JobLayout,
)
from faceblur.storage import ObjectStore

log = logging.getLogger(__name__)


def remove_intermediates(store: ObjectStore, layout: JobLayout) -> int:
    """Delete chunks, processed chunks, detections, per-chunk results, verification reports and
    debug chunks.

    The manifest, result.json, the merged verification report, the debug video and the contact
    sheet stay as the record.
    """
    removed = 0
    for folder in (CHUNKS, PROCESSED, DETECTIONS, RESULTS, LOCKS, FRAMES):
        removed += store.delete_prefix(layout.key(folder) + "/")
    kept = (layout.debug_video, layout.contact_sheet, layout.verification_report)
    for key in [*store.list(layout.key(DEBUG) + "/"), *store.list(layout.key(VERIFICATION) + "/")]:
        if key not in kept:
            store.delete(key)
            removed += 1
    if store.exists(layout.key(AUDIO)):
        store.delete(layout.key(AUDIO))
        removed += 1
    log.info("removed %d intermediate objects of %s", removed, layout.prefix)
    return removed


def delete_job(store: ObjectStore, layout: JobLayout) -> int:
    """Delete every object under the job prefix (after a failure, or when the job is deleted)."""
    if not layout.prefix.strip("/"):
        raise InvalidInputError(f"refusing to delete all of {store.url}: the job URL names no prefix")
    removed = store.delete_prefix(layout.key() + "/")
    log.info("deleted %d objects of %s", removed, layout.prefix)
    return removed
