"""Make an input URL readable by PyAV: local paths as they are, http(s) streamed, S3 downloaded.

S3 inputs are downloaded once to a temporary folder because demuxing seeks back and
forth (MP4 index at the end) and split reads the file twice when it re-encodes.
The input object itself is only ever read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from faceblur.errors import ObjectNotFoundError
from faceblur.storage import S3Settings, S3Store, parse_url

T = TypeVar("T")


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def localize_input(url: str, folder: Path, settings: S3Settings | None = None) -> str:
    """A path or URL PyAV can open for `url`; S3 objects are downloaded into `folder`."""
    if is_http(url):
        return url
    location = parse_url(url)
    if location.scheme == "s3":
        target = folder / f"input{PurePosixPath(location.key).suffix[:16]}"
        _on_input_object(url, settings, lambda store, key: store.download(key, target))
        return str(target)
    path = Path("/" + location.key)
    if not path.is_file():
        raise ObjectNotFoundError(f"no such file: {path}; check the input's path")
    return str(path)


def input_fingerprint(url: str, settings: S3Settings | None = None) -> str | None:
    """Which version of the input this is (size and ETag, or size and modification time), so a job
    never reuses chunks cut from another; None for http(s), which split streams without a look first."""
    if is_http(url):
        return None
    location = parse_url(url)
    if location.scheme == "s3":
        return _on_input_object(url, settings, lambda store, key: store.fingerprint(key))
    try:
        stat = Path("/" + location.key).stat()
    except FileNotFoundError:
        raise ObjectNotFoundError(f"no such file: /{location.key}; check the input's path") from None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _on_input_object(url: str, settings: S3Settings | None, action: Callable[[S3Store, str], T]) -> T:
    """`action` on the input's S3 object; a missing one is final, and the user is told what to do."""
    location = parse_url(url)
    if not location.key:
        raise ObjectNotFoundError(f"{url} names a bucket, not an object")
    try:
        return action(S3Store(location.bucket, settings or S3Settings.from_env()), location.key)
    except ObjectNotFoundError as exc:  # final: it stays missing until someone uploads it
        raise ObjectNotFoundError(f"{exc}; upload the input there, or correct its bucket and key") from None
