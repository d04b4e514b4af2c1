"""Both object stores behave alike: round trips, listing, atomic writes, one-line errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faceblur.errors import InvalidInputError, ObjectNotFoundError, StorageError
from faceblur.storage import (
    LocalStore,
    ObjectStore,
    RetryPolicy,
    S3Settings,
    S3Store,
    is_transient,
    open_store,
    parse_endpoint,
    parse_url,
    retries,
)
from faceblur_testenv.s3 import S3Server
from minio.error import S3Error

FAST_RETRY = RetryPolicy(attempts=2, first_delay_s=0.01)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "root")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = f"store-{os.getpid()}-{abs(hash(request.node.name)) % 10**8}"
    server.make_bucket(bucket)
    yield S3Store(bucket, S3Settings.from_env(server.env()), FAST_RETRY)


def test_round_trip_list_size_and_delete(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("job/a/1.json", b"one")
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 1000)
    store.upload(source, "job/b/2.bin")
    store.put_bytes("jobless.txt", b"not in job")

    assert store.get_bytes("job/a/1.json") == b"one"
    assert store.exists("job/b/2.bin")
    assert not store.exists("job/b/3.bin")
    assert store.size("job/b/2.bin") == 1000
    assert list(store.list("job/")) == ["job/a/1.json", "job/b/2.bin"]
    assert list(store.list("job/a")) == ["job/a/1.json"]
    target = tmp_path / "dst.bin"
    store.download("job/b/2.bin", target)
    assert target.read_bytes() == b"x" * 1000

    assert store.delete_prefix("job/") == 2
    assert list(store.list("job/")) == []
    assert store.exists("jobless.txt")
    store.delete("job/never-there")  # deleting a missing object is not an error


def test_missing_object_names_the_key(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"missing/thing\.mp4"):
        store.get_bytes("missing/thing.mp4")
    with pytest.raises(ObjectNotFoundError, match=r"missing/thing\.mp4"):
        store.download("missing/thing.mp4", tmp_path / "x")
    with pytest.raises(ObjectNotFoundError):
        store.size("missing/thing.mp4")


def test_refuses_to_delete_the_whole_store(store: ObjectStore) -> None:
    with pytest.raises(StorageError, match="refusing"):
        store.delete_prefix("")


def test_local_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("out/video.mp4", b"first")

    class CrashError(Exception):
        pass

    def crash_while_writing() -> None:
        with store._publishing("out/video.mp4") as tmp:
            tmp.write_bytes(b"half written")
            raise CrashError

    with pytest.raises(CrashError):
        crash_while_writing()
    assert store.get_bytes("out/video.mp4") == b"first"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["video.mp4"]


def test_local_unwritable_destination_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(StorageError, match=r"cannot create folder .*file/sub"):
        LocalStore(tmp_path).put_bytes("file/sub/x.json", b"{}")


class Attempts:
    """Counts the calls of one client method and the backoff sleeps of the store's retry loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: S3Store, method: str) -> None:
        self.calls = 0
        self.sleeps: list[float] = []
        real = getattr(store.client, method)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(store.client, method, counted)
        monkeypatch.setattr(retries, "time", SimpleNamespace(sleep=self.sleeps.append))


def test_wrong_credentials_give_one_clear_line(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_server.make_bucket("creds")
    env = {**s3_server.env(), "FACEBLUR_S3_SECRET_KEY": "not-the-secret"}
    store = S3Store("creds", S3Settings.from_env(env), RetryPolicy(attempts=3, first_delay_s=0.01))
    attempts = Attempts(monkeypatch, store, "put_object")
    with pytest.raises(StorageError, match="rejected the S3 credentials") as info:
        store.put_bytes("x", b"y")
    assert "\n" not in str(info.value)
    assert not isinstance(info.value, ObjectNotFoundError)
    # Rejected credentials are final: one try, no backoff, although the policy allows three.
    assert attempts.calls == 1
    assert attempts.sleeps == []


def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    store = S3Store("no-such-bucket", S3Settings.from_env(s3_server.env()), FAST_RETRY)
    with pytest.raises(ObjectNotFoundError, match="bucket 'no-such-bucket' does not exist"):
        store.get_bytes("k")


@pytest.mark.parametrize("configured", ["1", "3"])
def test_unreachable_endpoint_is_retried_then_reported(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = S3Settings(
        endpoint="127.0.0.1:9", secure=False, access_key="a", secret_key="b", region="us-east-1"
    )
    policy = RetryPolicy.from_env({"FACEBLUR_S3_ATTEMPTS": configured})
    store = S3Store("bucket", settings, RetryPolicy(attempts=policy.attempts, first_delay_s=0.01))
    attempts = Attempts(monkeypatch, store, "get_object")
    with pytest.raises(StorageError, match=r"unreachable") as info:
        store.get_bytes("k")
    assert "http://127.0.0.1:9" in str(info.value)
    # Every configured attempt reached the client, with one growing, jittered backoff between two.
    assert attempts.calls == int(configured)
    assert len(attempts.sleeps) == int(configured) - 1
    for n, delay in enumerate(attempts.sleeps):
        base = 0.01 * 2**n
        assert base / 2 <= delay <= base, attempts.sleeps


def test_transient_classification() -> None:
    class Response:
        def __init__(self, status: int) -> None:
            self.status = status

    def s3_error(code: str, status: int) -> S3Error:
        return S3Error(Response(status), code, "m", "/r", None, None)  # type: ignore[arg-type]

    assert is_transient(s3_error("SlowDown", 503))
    assert is_transient(s3_error("InternalError", 500))
    assert is_transient(ConnectionResetError())
    assert not is_transient(s3_error("NoSuchKey", 404))
    assert not is_transient(s3_error("SignatureDoesNotMatch", 403))
    assert not is_transient(ValueError("bug"))


def test_settings_from_env(tmp_path: Path) -> None:
    (tmp_path / "accessKey").write_text("AK\n")
    (tmp_path / "secretKey").write_text("SK\n")
    settings = S3Settings.from_env(
        {"FACEBLUR_S3_ENDPOINT": "https://minio.example:9000", "FACEBLUR_S3_CREDENTIALS_DIR": str(tmp_path)}
    )
    assert settings == S3Settings("minio.example:9000", True, None, "AK", "SK")
    env = {"FACEBLUR_S3_ENDPOINT": "minio:9000", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    assert S3Settings.from_env(env) == S3Settings("minio:9000", False, None, "a", "s")
    assert S3Settings.from_env({**env, "FACEBLUR_S3_SECURE": "true"}).secure
    assert S3Settings.from_env(env, endpoint="http://other:1").endpoint == "other:1"
    with pytest.raises(StorageError, match="invalid S3 endpoint"):
        parse_endpoint("ftp://x")


def test_url_parsing(tmp_path: Path) -> None:
    assert parse_url("s3://bucket/a/b.mp4").key == "a/b.mp4"
    assert parse_url("s3://bucket").key == ""
    assert parse_url(str(tmp_path / "x.mp4")).key == (tmp_path / "x.mp4").as_posix().lstrip("/")
    assert parse_url((tmp_path / "x y.mp4").as_uri()).key.endswith("x y.mp4")
    with pytest.raises(InvalidInputError, match="unsupported URL scheme 'ftp'"):
        parse_url("ftp://host/x")
    with pytest.raises(InvalidInputError):
        parse_url("s3:///key")
    store, key = open_store(str(tmp_path / "f.bin"))
    store.put_bytes(key, b"1")
    assert (tmp_path / "f.bin").read_bytes() == b"1"
