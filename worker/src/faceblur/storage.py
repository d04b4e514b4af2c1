"""Object store interface: one protocol, an S3 implementation and a local-folder one.

Publishing is atomic in both: an S3 PUT (or multipart upload) makes the object visible
only once complete, and the local store writes a temporary file then renames it, so a
crashed writer never leaves a partial object under a final key.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import minio
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from faceblur.errors import InvalidInputError, ObjectNotFoundError, StorageError

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class ObjectStore(Protocol):
    """Keys are '/'-separated paths relative to the store root (a bucket or a folder)."""

    url: str  # s3://bucket or file:///abs/folder, for messages

    def exists(self, key: str) -> bool: ...

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def download(self, key: str, path: Path) -> None: ...

    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def size(self, key: str) -> int: ...


# --------------------------------------------------------------------------------------
# Implementations (helper PIPELINE): a local folder, S3 through the minio client, URLs.
# --------------------------------------------------------------------------------------

_TMP_MARK = ".faceblur-tmp-"  # hidden temporary files of the local store, never listed


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid object key {key!r}")
    return key


class LocalStore:
    """A folder as an object store: keys are relative paths, writes are temp file + rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.url = self.root.as_uri()

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _where(self, key: str) -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no such file: {self._where(key)}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {self._where(key)}: {exc.strerror or exc}") from exc

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with self._publishing(key) as tmp:
            tmp.write_bytes(data)

    def download(self, key: str, path: Path) -> None:
        source = self.path(key)
        if not source.is_file():
            raise ObjectNotFoundError(f"no such file: {source}")
        try:
            shutil.copyfile(source, path)
        except OSError as exc:
            raise StorageError(f"cannot copy {source} to {path}: {exc.strerror or exc}") from exc

    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None:
        with self._publishing(key) as tmp:
            shutil.copyfile(path, tmp)

    def list(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix` (a plain string prefix, as in S3), sorted."""
        folder = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not folder.is_dir():
            return iter(())
        keys = []
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                if _TMP_MARK in name:
                    continue
                key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {self._where(key)}: {exc.strerror or exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError("refusing to delete everything under the store root")
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        self._remove_empty_dirs(prefix)
        return len(keys)

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no such file: {self._where(key)}") from None

    def _remove_empty_dirs(self, prefix: str) -> None:
        top = self.root / prefix.strip("/")
        if not top.is_dir():
            return
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):
                Path(dirpath).rmdir()

    @contextlib.contextmanager
    def _publishing(self, key: str) -> Iterator[Path]:
        """Yield a temporary path next to the target; rename it over the target only on success."""
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create folder {target.parent}: {exc.strerror or exc}") from exc
        tmp = target.with_name(f".{target.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
        try:
            yield tmp
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Settings:
    """How to reach the S3 service; see `from_env` for where each value comes from."""

    endpoint: str = "s3.amazonaws.com"  # host[:port]
    secure: bool = True
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, endpoint: str | None = None) -> S3Settings:
        """FACEBLUR_S3_* variables, then AWS_* keys, then the files of FACEBLUR_S3_CREDENTIALS_DIR."""
        env = os.environ if environ is None else environ
        host, scheme_secure = parse_endpoint(endpoint or env.get("FACEBLUR_S3_ENDPOINT") or cls.endpoint)
        secure_text = env.get("FACEBLUR_S3_SECURE", "").strip().lower()
        if secure_text:
            if secure_text not in _BOOLEANS:
                raise StorageError(f"FACEBLUR_S3_SECURE must be true or false, not {secure_text!r}")
            secure = _BOOLEANS[secure_text]
        else:
            secure = scheme_secure if scheme_secure is not None else host == cls.endpoint
        access, secret = _credentials(env)
        return cls(host, secure, env.get("FACEBLUR_S3_REGION") or None, access, secret)


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_endpoint(endpoint: str) -> tuple[str, bool | None]:
    """`http(s)://host:port` or `host:port` -> (host:port, secure from the scheme or None)."""
    text = endpoint.strip().rstrip("/")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise StorageError(f"invalid S3 endpoint {endpoint!r}: expected host:port or http(s)://host:port")
        return rest, scheme == "https"
    if not text or "/" in text:
        raise StorageError(f"invalid S3 endpoint {endpoint!r}: expected host:port or http(s)://host:port")
    return text, None


def _credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    for access_name, secret_name in (
        ("FACEBLUR_S3_ACCESS_KEY", "FACEBLUR_S3_SECRET_KEY"),
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ):
        if env.get(access_name) and env.get(secret_name):
            return env[access_name], env[secret_name]
    folder = env.get("FACEBLUR_S3_CREDENTIALS_DIR")
    if folder:
        try:
            return (
                (Path(folder) / "accessKey").read_text().strip(),
                (Path(folder) / "secretKey").read_text().strip(),
            )
        except OSError as exc:
            raise StorageError(f"cannot read S3 credentials from {folder}: {exc.strerror or exc}") from exc
    return None, None  # anonymous access


# S3 error codes worth another try; everything else is final at once.
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "ResourceNotFound"})


def is_transient(exc: BaseException) -> bool:
    """Connection failures, 5xx answers and throttling: the next try may succeed."""
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_CODES or _status(exc) >= 500
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        return _status(exc) >= 500 or _status(exc) == 429
    return False


def _status(exc: S3Error | InvalidResponseError) -> int:
    if isinstance(exc, S3Error):
        return int(getattr(exc.response, "status", 0) or 0)
    return int(getattr(exc, "_code", 0) or 0)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """FACEBLUR_S3_ATTEMPTS (default 5) tries per S3 call."""
        env = os.environ if environ is None else environ
        text = env.get("FACEBLUR_S3_ATTEMPTS", "").strip()
        if not text:
            return cls()
        if not text.isdigit() or int(text) < 1:
            raise StorageError(f"FACEBLUR_S3_ATTEMPTS must be a whole number >= 1, not {text!r}")
        return cls(attempts=int(text))

    def delays(self) -> Iterator[float]:
        """Exponential backoff with jitter between attempts (attempts - 1 delays)."""
        for n in range(self.attempts - 1):
            base = min(self.max_delay_s, self.first_delay_s * 2**n)
            yield base * (0.5 + random.random() / 2)


class S3Store:
    """One bucket through the minio client; every call retried on transient errors only."""

    def __init__(
        self,
        bucket: str,
        settings: S3Settings | None = None,
        retry: RetryPolicy | None = None,
        client: minio.Minio | None = None,
    ) -> None:
        self.bucket = bucket
        self.settings = settings or S3Settings.from_env()
        self.retry = retry or RetryPolicy.from_env()
        self.url = f"s3://{bucket}"
        self.client = client or minio.Minio(
            self.settings.endpoint,
            access_key=self.settings.access_key,
            secret_key=self.settings.secret_key,
            secure=self.settings.secure,
            region=self.settings.region,
            # No retries inside urllib3: `_call` is the one place that retries, with backoff.
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=10.0, read=120.0),
                retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0),
                maxsize=8,
            ),
        )

    def exists(self, key: str) -> bool:
        try:
            self._call("check", key, lambda: self.client.stat_object(self.bucket, key))
        except ObjectNotFoundError:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        def fetch() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return self._call("read", key, fetch)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call(
            "write",
            key,
            lambda: self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            ),
        )

    def download(self, key: str, path: Path) -> None:
        # fget_object writes a temporary file next to `path` and renames it when complete.
        self._call("download", key, lambda: self.client.fget_object(self.bucket, key, str(path)))

    def upload(self, path: Path, key: str, content_type: str = "application/octet-stream") -> None:
        # A single PUT or a multipart upload: the object appears only once it is complete.
        self._call("upload", key, lambda: self.client.fput_object(self.bucket, key, str(path), content_type))

    def list(self, prefix: str) -> Iterator[str]:
        names = self._call(
            "list",
            prefix,
            lambda: [
                o.object_name
                for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if o.object_name is not None and not o.is_dir
            ],
        )
        return iter(sorted(names))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.client.remove_object(self.bucket, key))

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError(f"refusing to delete every object of {self.url}")
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    def size(self, key: str) -> int:
        stat = self._call("check", key, lambda: self.client.stat_object(self.bucket, key))
        return int(stat.size or 0)

    def check_bucket(self) -> None:
        """Fail early on a missing bucket or rejected credentials (a GET, so errors carry a code)."""
        self._call(
            "list",
            "",
            lambda: next(iter(self.client.list_objects(self.bucket, prefix="", recursive=False)), None),
        )

    def _credentials_rejected(self) -> bool:
        """Tell bad credentials from a missing permission after an AccessDenied on a HEAD request,
        whose answer has no body: a listing's error says which it is."""
        try:
            next(iter(self.client.list_objects(self.bucket, prefix="", recursive=False)), None)
        except S3Error as exc:
            return exc.code in _CREDENTIAL_CODES
        except Exception:
            return False
        return False

    def _call(self, action: str, key: str, operation: Callable[[], _T]) -> _T:
        """Run one S3 operation, retrying transient failures, and turn errors into one-line ones."""
        where = f"s3://{self.bucket}/{key}"
        delays = self.retry.delays()
        while True:
            try:
                return operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise self._error(action, where, exc) from exc
                delay = next(delays, None)
                if delay is None:
                    raise self._error(action, where, exc) from exc
                log.warning("%s %s failed (%s), retrying in %.1fs", action, where, _describe(exc), delay)
                time.sleep(delay)

    def _error(self, action: str, where: str, exc: Exception) -> StorageError:
        endpoint = f"{'https' if self.settings.secure else 'http'}://{self.settings.endpoint}"
        if isinstance(exc, S3Error):
            if exc.code == "NoSuchBucket":
                return ObjectNotFoundError(f"cannot {action} {where}: bucket {self.bucket!r} does not exist")
            if exc.code in _NOT_FOUND_CODES:
                return ObjectNotFoundError(f"cannot {action} {where}: no such object")
            if exc.code in _CREDENTIAL_CODES or (exc.code == "AccessDenied" and self._credentials_rejected()):
                return StorageError(
                    f"cannot {action} {where}: {endpoint} rejected the S3 credentials ({exc.code});"
                    " check FACEBLUR_S3_ACCESS_KEY/FACEBLUR_S3_SECRET_KEY"
                )
            if exc.code == "AccessDenied":
                return StorageError(
                    f"cannot {action} {where}: access denied by {endpoint}"
                    " (wrong credentials or no permission)"
                )
        if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
            return StorageError(
                f"cannot {action} {where}: S3 endpoint {endpoint} unreachable ({_describe(exc)})"
            )
        if isinstance(exc, OSError):
            return StorageError(f"cannot {action} {where}: {exc.strerror or exc}")
        return StorageError(f"cannot {action} {where}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        text = text.rsplit(": ", 1)[-1]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_store(url: str, settings: S3Settings | None = None) -> tuple[ObjectStore, str]:
    """`s3://bucket/key`, `file:///path` or a local path -> (store, key in that store).

    Local paths all live in one store rooted at `/`, so a key is the absolute path
    without its leading slash and messages name the real file.
    """
    location = parse_url(url)
    if location.scheme == "s3":
        return S3Store(location.bucket, settings or S3Settings.from_env()), location.key
    return LocalStore(Path("/")), location.key


@dataclass(frozen=True)
class Location:
    scheme: str  # "s3" or "file"
    bucket: str  # "" for local files
    key: str


def parse_url(url: str) -> Location:
    """Split a URL or path into scheme, bucket and key; refuse what the stores cannot serve."""
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidInputError(f"invalid S3 URL {url!r}: expected s3://bucket/key")
        return Location("s3", bucket, key.strip("/"))
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInputError(f"invalid file URL {url!r}: only local files are supported")
        path = Path(urllib.parse.unquote(parsed.path))
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidInputError(f"unsupported URL scheme {scheme!r} in {url!r}: use a path, file:// or s3://")
    else:
        path = Path(url).expanduser()
    absolute = Path(os.path.abspath(path))
    return Location("file", "", absolute.as_posix().lstrip("/"))


def check_destination(url: str, settings: S3Settings | None = None) -> None:
    """Fail before any work when `url` could not be written: no bucket, bad credentials, no folder."""
    location = parse_url(url)
    if not location.key:
        raise InvalidInputError(f"output {url} names no file")
    if location.scheme == "s3":
        S3Store(location.bucket, settings or S3Settings.from_env()).check_bucket()
        return
    path = Path("/" + location.key)
    if path.is_dir():
        raise StorageError(f"cannot write {path}: it is a folder")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise StorageError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write {path}: no permission to write in {folder}")
