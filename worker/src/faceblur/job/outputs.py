"""Whether a job may publish its output: never over its input, and over an existing object only when
asked (`--overwrite`, spec.output.overwrite) or when the job itself published it.

Split checks before any work; compose checks again before it assembles (the object may have appeared
meanwhile) and records the output in `publishing.json` before the upload. A retried compose that
died after the upload and before `result.json` finds that record and knows the object is its own,
so a retry of the job's own publication succeeds while anyone else's object is refused.
"""

from __future__ import annotations

import json

from faceblur.errors import InvalidInputError, OutputExistsError
from faceblur.job.layout import JobLayout
from faceblur.media.inputs import is_http
from faceblur.storage import ObjectStore, S3Settings, open_store, parse_url


def same_object(a: str, b: str) -> bool:
    """Whether two URLs or paths name the same object (http inputs are never outputs)."""
    if is_http(a) or is_http(b):
        return False
    return parse_url(a) == parse_url(b)


def published_by_job(store: ObjectStore, layout: JobLayout, output_url: str) -> bool:
    """Whether this job's compose published (or began to publish) `output_url`."""
    if not store.exists(layout.publishing):
        return False
    return bool(json.loads(store.get_bytes(layout.publishing)).get("output") == output_url)


def check_output(
    input_url: str,
    output_url: str,
    store: ObjectStore,
    layout: JobLayout,
    *,
    overwrite: bool,
    s3_settings: S3Settings | None = None,
) -> None:
    """Refuse an output that is the input, or an existing object that is not the job's own unless
    `overwrite`. Reads only."""
    if same_object(output_url, input_url):
        raise InvalidInputError(
            f"output {output_url} is the input: choose another output, the input is never changed"
        )
    out_store, out_key = open_store(output_url, s3_settings)
    if not out_key:
        raise InvalidInputError(f"output {output_url} names no file")
    if overwrite or not out_store.exists(out_key) or published_by_job(store, layout, output_url):
        return
    raise OutputExistsError(
        f"output {output_url} exists already and this job did not write it: choose another output,"
        " or allow replacing it (spec.output.overwrite: true, or --overwrite)"
    )


def record_publishing(store: ObjectStore, layout: JobLayout, output_url: str) -> None:
    store.put_bytes(layout.publishing, json.dumps({"output": output_url}).encode(), "application/json")
