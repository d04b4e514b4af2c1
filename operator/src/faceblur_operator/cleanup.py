"""Delete a job's intermediates: the command of the cleanup Jobs (`python -m faceblur_operator.cleanup`).

Runs in the worker image with the same FACEBLUR_S3_* environment as the other pods; the final
output lives under its own key, outside the job prefix, and is never touched. Writes one JSON line
to the termination log like the worker's commands, so the operator can report what happened.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from faceblur.errors import ExitCode, FaceblurError
from faceblur.storage import open_store

log = logging.getLogger(__name__)


def remove_intermediates(job_url: str) -> int:
    """Delete every object under the job URL; returns how many were deleted."""
    store, prefix = open_store(job_url)
    if not prefix.strip("/"):
        raise FaceblurError(f"refusing to clean {job_url}: it names a whole bucket or root folder")
    return store.delete_prefix(prefix.rstrip("/") + "/")


def _report(line: dict[str, object]) -> None:
    path = os.environ.get("FACEBLUR_TERMINATION_LOG")
    if path:
        try:
            Path(path).write_text(json.dumps(line) + "\n")
        except OSError as e:
            log.warning("cannot write the termination log %s: %s", path, e)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Delete a faceblur job's intermediates.")
    parser.add_argument("--job", required=True, help="the job URL (s3://bucket/prefix or a folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        deleted = remove_intermediates(args.job)
    except FaceblurError as e:
        print(f"error: {e}", file=sys.stderr)
        _report({"stage": "cleanup", "error": str(e), "exit_code": int(e.exit_code)})
        return int(e.exit_code)
    log.info("deleted %d objects under %s", deleted, args.job)
    _report({"stage": "cleanup", "deleted": deleted})
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
