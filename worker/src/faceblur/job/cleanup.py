"""What to delete of a job: its intermediates once the output is published, or all it wrote.

The final output lives under its own key, outside the job prefix, and is never touched; nor is
any object under the prefix the job did not write (`layout.OWN_FOLDERS`, `OWN_FILES`), nor a prefix
another job holds (`faceblur.job.claim`).
"""

from __future__ import annotations

import logging

from faceblur.errors import InvalidInputError
from faceblur.job.claim import read_claim
from faceblur.job.layout import (
    AUDIO,
    CHUNKS,
    CLAIM,
    DEBUG,
    DETECTIONS,
    FRAMES,
    LOCKS,
    OWN_FILES,
    OWN_FOLDERS,
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


def delete_job(store: ObjectStore, layout: JobLayout, owner: str | None) -> int:
    """Delete the job's own objects (after a failure, or when the job is deleted); nothing where the
    prefix is another job's, and never an object the job does not write."""
    if not layout.prefix.strip("/"):
        raise InvalidInputError(f"refusing to delete in all of {store.url}: the job URL names no prefix")
    held = read_claim(store, layout)
    if held is not None and held.owner != owner:
        log.warning(
            "%s/%s belongs to job %s, not %s: nothing deleted", store.url, layout.prefix, held.owner, owner
        )
        return 0
    removed = sum(store.delete_prefix(layout.key(folder) + "/") for folder in OWN_FOLDERS)
    for key in (layout.key(name) for name in OWN_FILES if name != CLAIM):
        if store.exists(key):
            store.delete(key)
            removed += 1
    if store.exists(layout.claim):  # last: until it is gone, the prefix stays this job's
        store.delete(layout.claim)
        removed += 1
    log.info("deleted %d objects of %s", removed, layout.prefix)
    return removed
