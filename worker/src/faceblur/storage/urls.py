"""Where a URL or path points (s3://bucket/key, file:///path or a local path), the store that
serves it, and whether an output could be written there before any work starts."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from faceblur.errors import InvalidInputError, StorageError
from faceblur.storage.base import ObjectStore
from faceblur.storage.local import LocalStore
from faceblur.storage.s3 import S3Store
from faceblur.storage.s3settings import S3Settings


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


def open_store(url: str, settings: S3Settings | None = None) -> tuple[ObjectStore, str]:
    """`s3://bucket/key`, `file:///path` or a local path -> (store, key in that store).

    Local paths all live in one store rooted at `/`, so a key is the absolute path
    without its leading slash and messages name the real file.
    """
    location = parse_url(url)
    if location.scheme == "s3":
        return S3Store(location.bucket, settings or S3Settings.from_env()), location.key
    return LocalStore(Path("/")), location.key


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
