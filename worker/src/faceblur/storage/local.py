"""A local folder as an object store: the one-machine `blur` and folders workers share.

Writes go to a hidden temporary file next to the target and are renamed over it only when
complete, so readers never see a partial object.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from faceblur.errors import ObjectNotFoundError, StorageError

TMP_MARK = ".faceblur-tmp-"  # hidden temporary files of the local store, never listed


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
                if TMP_MARK in name:
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
        tmp = target.with_name(f".{target.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")
        try:
            yield tmp
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
