"""One S3 bucket as an object store, through the minio client.

Every call goes through `_call`: transient failures are retried with backoff (`retries`), and
every failure becomes one line naming the s3://bucket/key and what to do (`s3errors`). An S3 PUT
or multipart upload makes an object visible only once complete, so publishing is atomic.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import minio
import urllib3
from minio.error import S3Error

from faceblur.errors import ObjectNotFoundError, StorageError
from faceblur.storage.retries import RetryPolicy, retrying
from faceblur.storage.s3errors import CREDENTIAL_CODES, storage_error
from faceblur.storage.s3settings import S3Settings

_T = TypeVar("_T")


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
            credentials=(
                self.settings.identity.provider()
                if self.settings.identity and not self.settings.access_key
                else None
            ),
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

    def fingerprint(self, key: str) -> str:
        """Which version of the object this is: its size and ETag (and version id, where versioned)."""
        stat = self._call("check", key, lambda: self.client.stat_object(self.bucket, key))
        return ":".join(str(part) for part in (stat.size, stat.etag, stat.version_id) if part)

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
            return exc.code in CREDENTIAL_CODES
        except Exception:
            return False
        return False

    def _call(self, action: str, key: str, operation: Callable[[], _T]) -> _T:
        """Run one S3 operation, retrying transient failures, and turn errors into one-line ones."""
        try:
            return retrying(operation, self.retry, f"{action} s3://{self.bucket}/{key}")
        except Exception as exc:
            endpoint = self.settings.endpoint_url()
            raise storage_error(action, self.bucket, key, exc, endpoint, self._credentials_rejected) from exc
