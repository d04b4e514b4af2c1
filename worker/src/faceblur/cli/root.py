"""The typer application every command registers with, its console, and the plumbing the
commands share: S3 settings from the options, a job's store and layout from its URL."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from faceblur import __version__
from faceblur.job.layout import JobLayout
from faceblur.storage import ObjectStore, S3Settings, open_store

app = typer.Typer(
    name="faceblur",
    help="Detect and anonymize faces in videos, on one machine or as chunked pods on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)


def s3_settings(endpoint: str | None) -> S3Settings | None:
    """S3 settings from the environment, with --s3-endpoint on top; None until S3 is used."""
    if endpoint is None:
        return None
    return S3Settings.from_env(endpoint=endpoint)


def open_job(url: str, settings: S3Settings | None) -> tuple[ObjectStore, JobLayout]:
    """The store holding a job (--job: a folder or s3://bucket/prefix) and the job's layout in it."""
    store, prefix = open_store(url, settings)
    return store, JobLayout(prefix)
