"""A job's prefix is its own: split claims it before any work, refuses one another job holds or one
made from another input, and a cleanup deletes only what its job wrote there (real videos, real S3)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from faceblur.errors import PrefixInUseError
from faceblur.job.claim import read_claim
from faceblur.job.cleanup import delete_job
from faceblur.job.layout import JobLayout
from faceblur.job.split import split
from faceblur.storage import LocalStore, S3Settings, S3Store
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary

JOB_A, JOB_B = "uid-a", "uid-b"
USERS_OWN = "theirs/notes.txt"  # an object of the user's under the prefix they chose for a job


def objects(store: LocalStore | S3Store, prefix: str) -> dict[str, bytes]:
    return {key: store.get_bytes(key) for key in store.list(prefix)}


@pytest.fixture
def bucket(s3_server: S3Server) -> tuple[S3Store, S3Settings]:
    s3_server.make_bucket("claims")
    settings = S3Settings(
        endpoint=s3_server.endpoint,
        secure=False,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    return S3Store("claims", settings), settings


def test_a_second_job_on_the_same_prefix_is_refused_and_changes_nothing(
    videos: VideoLibrary, bucket: tuple[S3Store, S3Settings]
) -> None:
    store, settings = bucket
    video = videos.get()
    store.upload(video.path, "in/a.mp4", "video/mp4")
    store.upload(video.path, "in/b.mp4", "video/mp4")
    layout = JobLayout("shared")
    split("s3://claims/in/a.mp4", store, layout, chunks=2, s3_settings=settings, owner=JOB_A)
    held = read_claim(store, layout)
    assert held is not None
    assert (held.owner, held.input) == (JOB_A, "s3://claims/in/a.mp4")
    before = objects(store, "shared/")

    for url, owner, why in (
        ("s3://claims/in/b.mp4", JOB_B, "another job (uid uid-a)"),  # two specs naming one prefix
        ("s3://claims/in/a.mp4", JOB_B, "another job (uid uid-a)"),  # even for the same input
        ("s3://claims/in/b.mp4", JOB_A, "another input (s3://claims/in/a.mp4)"),
    ):
        with pytest.raises(
            PrefixInUseError, match=rf"s3://claims/shared: it holds .*{re.escape(why)}.*a prefix of its own"
        ):
            split(url, store, layout, chunks=2, s3_settings=settings, owner=owner)
        assert objects(store, "shared/") == before  # nothing read from it, written or deleted

    again = split("s3://claims/in/a.mp4", store, layout, chunks=2, s3_settings=settings, owner=JOB_A)
    assert len(again.chunks) == 2  # a retry of the same job reuses its own split
    assert objects(store, "shared/") == before


def test_an_input_changed_since_the_split_is_not_reused(videos: VideoLibrary, tmp_path: Path) -> None:
    """A local run resumed after its input was replaced would publish the old video's frames."""
    source = tmp_path / "in.mp4"
    shutil.copy(videos.get().path, source)
    store, layout = LocalStore(tmp_path / "work"), JobLayout("job")
    split(str(source), store, layout, chunks=2)
    split(str(source), store, layout, chunks=2)  # the same file: resumed
    shutil.copy(videos.get(frames=30).path, source)
    with pytest.raises(PrefixInUseError, match="an earlier version of"):
        split(str(source), store, layout, chunks=2)


def test_a_cleanup_deletes_only_what_its_job_wrote(
    videos: VideoLibrary, bucket: tuple[S3Store, S3Settings]
) -> None:
    store, settings = bucket
    store.upload(videos.get().path, "in/c.mp4", "video/mp4")
    store.put_bytes(USERS_OWN, b"the user's, under the prefix they gave the job")
    layout = JobLayout("theirs")
    split("s3://claims/in/c.mp4", store, layout, chunks=2, s3_settings=settings, owner=JOB_A)

    assert delete_job(store, layout, JOB_B) == 0  # another job's cleanup: not its objects
    assert read_claim(store, layout) is not None
    assert delete_job(store, layout, JOB_A) > 0
    assert list(store.list("theirs/")) == [USERS_OWN]
    assert store.exists("in/c.mp4")
