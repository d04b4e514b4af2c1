"""`faceblur cleanup`: the pod entry point that deletes a job's intermediates."""

from __future__ import annotations

from faceblur.cli.options import JobUrl, S3Endpoint, Verbose
from faceblur.cli.root import app, open_job, out, s3_settings
from faceblur.command import command


@app.command()
def cleanup(job: JobUrl, s3_endpoint: S3Endpoint = None, verbose: Verbose = False) -> None:
    """Delete every object under a job's prefix, records included; the output is never touched."""
    from faceblur.cleanup import delete_job

    with command("cleanup", verbose, pod=True) as record:
        store, layout = open_job(job, s3_settings(s3_endpoint))
        record["deleted"] = delete_job(store, layout)
        out.print(f"deleted {record['deleted']} objects under {job}")
