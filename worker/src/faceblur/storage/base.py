"""The object store protocol that every phase writes through, whatever the store is.

Keys are '/'-separated paths relative to the store root (a bucket or a folder). Publishing is
atomic in every implementation: an object appears under its final key only once complete, so a
crashed writer never leaves a partial object behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


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
