"""`faceblur probe`: the facts of a video, as a table or JSON."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceblur.cli.command import command
from faceblur.cli.options import InputArgument, S3Endpoint, Verbose
from faceblur.cli.root import app, out, s3_settings


@app.command()
def probe(
    input: InputArgument,
    json_output: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
    s3_endpoint: S3Endpoint = None,
    verbose: Verbose = False,
) -> None:
    """Print the facts of a video: size, frames, frame rate, rotation, colour, audio."""
    from faceblur.media.inputs import localize_input
    from faceblur.media.probe import probe as probe_video

    with command("probe", verbose) as record:
        with tempfile.TemporaryDirectory(prefix="faceblur-probe-") as tmp:
            source = localize_input(input, Path(tmp), s3_settings(s3_endpoint))
            info = probe_video(source, display_name=input)
        record.update({"frames": info.frame_count, "width": info.width, "height": info.height})
        if json_output:
            out.print_json(info.model_dump_json())
            return
        table = Table(title=input, show_header=False)
        for key, value in info.model_dump(exclude={"audio", "tags"}).items():
            table.add_row(key.replace("_", " "), str(value))
        for stream in info.audio:
            table.add_row(
                f"audio #{stream.index}", f"{stream.codec} {stream.sample_rate} Hz, {stream.channels} ch"
            )
        for key, value in info.tags.items():
            table.add_row(f"tag {key}", value)
        out.print(table)
