"""Make an input URL readable by PyAV: local paths as they are, http(s) streamed, S3 downloaded.

S3 inputs are downloaded once to a temporary folder because demuxing seeks back and
forth (MP4 index at the end) and split reads the file twice when it re-encodes.
The input object itself is only ever read.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from faceblur.errors import ObjectNotFoundError
from faceblur.storage import S3Settings, S3Store, parse_url


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def localize_input(url: str, folder: Path, settings: S3Settings | None = None) -> str:
    """A path or URL PyAV can open for `url`; S3 objects are downloaded into `folder`."""
    if is_http(url):
        return url
    location = parse_url(url)
    if location.scheme == "s3":
        if not location.key:
            raise ObjectNotFoundError(f"{url} names a bucket, not an object")
        suffix = PurePosixPath(location.key).suffix[:16]
        target = folder / f"input{suffix}"
        try:
            S3Store(location.bucket, settings or S3Settings.from_env()).download(location.key, target)
        except ObjectNotFoundError as exc:  # final: it stays missing until someone uploads it
            raise ObjectNotFoundError(
                f"{exc}; upload the input there, or correct its bucket and key"
            ) from None
        return str(target)
    path = Path("/" + location.key)
    if not path.is_file():
        raise ObjectNotFoundError(f"no such file: {path}; check the input's path")
    return str(path)
