"""The README's format table: every kind of input it lists goes through `faceblur blur`, and through
the commands the cluster's pods run (split, process each chunk, compose, against the real S3
server), and comes out with the same frames, timestamps, size, rotation, streams and tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary
from formats_support import FORMATS, Format, check_output, make_input
from test_cli import run

pytestmark = pytest.mark.slow

_BUCKET = "formats"


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_faceblur_blur_keeps_the_format(videos: VideoLibrary, tmp_path: Path, fmt: Format) -> None:
    source = make_input(videos, fmt, tmp_path)
    output = tmp_path / f"out.{fmt.output}"

    done = run("blur", str(source), "-o", str(output), "--workers", "1", "--chunks", "2")

    assert done.returncode == 0, done.stderr
    check_output(source, output)


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_the_cluster_commands_keep_the_format(
    s3_server: S3Server, videos: VideoLibrary, tmp_path: Path, fmt: Format
) -> None:
    """The pods' commands, each run on its own as the operator's Jobs run them, through S3."""
    source = make_input(videos, fmt, tmp_path)
    s3_server.make_bucket(_BUCKET)
    s3 = s3_server.client()
    s3.fput_object(_BUCKET, f"in/{source.name}", str(source))
    env, job = s3_server.env(), f"s3://{_BUCKET}/jobs/{fmt.name}"
    output_key = f"out/{fmt.name}.{fmt.output}"
    log = tmp_path / "termination"

    cut = run(
        "split", "--input", f"s3://{_BUCKET}/in/{source.name}", "--job", job, "--chunks", "2",
        "--output", f"s3://{_BUCKET}/{output_key}", env=env, log=log,
    )  # fmt: skip
    assert cut.returncode == 0, cut.stderr
    chunks = json.loads(log.read_text())["chunks"]
    for index in range(chunks):
        processed = run("process", "--job", job, "--index", str(index), env=env)
        assert processed.returncode == 0, processed.stderr
    composed = run("compose", "--job", job, "--output", f"s3://{_BUCKET}/{output_key}", env=env)
    assert composed.returncode == 0, composed.stderr

    output = tmp_path / f"out.{fmt.output}"
    s3.fget_object(_BUCKET, output_key, str(output))
    check_output(source, output)
