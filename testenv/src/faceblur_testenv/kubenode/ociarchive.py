"""Write OCI image archives (the `oci-archive` layout as one tar) from files on this machine.

Images that no registry can give us here (the pause image, a busybox) are small: one layer of a few
files. Writing the layout ourselves needs no buildah and no daemon, and `ctr images import` reads it.
Every tar entry has fixed owner and mtime, so the same inputs give the same digests (a cache hit).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class LayerEntry:
    """One path in the layer: a regular file (content), a directory, or a symlink (target)."""

    path: str
    content: bytes | None = None
    mode: int = 0o755
    symlink_to: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """What the image is: its name (`repo:tag`), its single layer and its runtime config."""

    name: str
    entries: tuple[LayerEntry, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/bin",)
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(entries: tuple[LayerEntry, ...]) -> bytes:
    """The uncompressed layer: parents first, fixed uid/gid 0 and mtime 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path.lstrip("/"))
            info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, entry.mode
            if entry.symlink_to is not None:
                info.type, info.linkname = tarfile.SYMTYPE, entry.symlink_to
                tar.addfile(info)
            elif entry.content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.content)
                tar.addfile(info, io.BytesIO(entry.content))
    return buffer.getvalue()


def archive_bytes(spec: ImageSpec) -> bytes:
    """The whole oci-archive tar of spec: oci-layout, index.json (named) and the three blobs."""
    raw = layer_tar(spec.entries)
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": list(spec.env),
                "Entrypoint": list(spec.entrypoint) or None,
                "Cmd": list(spec.cmd) or None,
                "User": spec.user,
                "Labels": spec.labels or None,
            },
            "rootfs": {"type": "layers", "diff_ids": [_sha(raw)]},
            "history": [{"created_by": "faceblur_testenv.kubenode.ociarchive"}],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": _sha(config), "size": len(config)},
            "layers": [{"mediaType": MEDIA_LAYER, "digest": _sha(layer), "size": len(layer)}],
        },
        sort_keys=True,
    ).encode()
    tag = spec.name.rsplit(":", 1)[1] if ":" in spec.name.rsplit("/", 1)[-1] else "latest"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": _sha(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    # containerd takes the full name from its own annotation, others read ref.name.
                    "annotations": {
                        "io.containerd.image.name": spec.name,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": index,
        **{f"blobs/sha256/{_sha(blob)[7:]}": blob for blob in (layer, config, manifest)},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_archive(spec: ImageSpec, target: Path) -> Path:
    """Write the archive atomically (a half-written archive never has the final name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    partial.write_bytes(archive_bytes(spec))
    partial.replace(target)
    return target
