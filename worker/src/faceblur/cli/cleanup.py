"""`faceblur cleanup`: the pod entry point that deletes a job's intermediates."""

from __future__ import annotations

from faceblur.cli.command import command
from faceblur.cli.options import JobUrl, Owner, S3Endpoint, Verbose
from faceblur.cli.root import app, open_job, out, s3_settings


@app.command()
def cleanup(
    job: JobUrl, owner: Owner = None, s3_endpoint: S3Endpoint = None, verbose: Verbose = False
) -> None:
    """Delete what the job wrote under its prefix, records included; nothing of another job's, nor
    the user's own objects there, nor the output."""
    from faceblur.job.cleanup import delete_job

    with command("cleanup", verbose, pod=True) as record:
        store, layout = open_job(job, s3_settings(s3_endpoint))
        record["deleted"] = delete_job(store, layout, owner)
        out.print(f"deleted {record['deleted']} objects under {job}")
