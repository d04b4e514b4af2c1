"""The product's container images as OCI archives: scripts/build-images.sh builds what is stale, says where.

The script owns every decision (what to rebuild, the layer cache, when to export again); this module only
runs it and reads its stdout, so the node imports exactly what a developer's `scripts/build-images.sh` made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from faceblur_testenv.buildscripts import run_build_script

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-images.sh"
DEFAULT_IMAGES = ("worker",)


class ImageBuildError(RuntimeError):
    """The images could not be built or exported (the script's stderr says why)."""


@dataclass(frozen=True)
class ImageArchive:
    """One built image: the name containerd gives it on import, the archive to import, its id."""

    name: str
    reference: str
    archive: Path
    image_id: str


def parse_build_output(stdout: str) -> list[ImageArchive]:
    """The images listed by the script: one `NAME<TAB>REFERENCE<TAB>ARCHIVE<TAB>IMAGE_ID` line each."""
    found: list[ImageArchive] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise ImageBuildError(f"unexpected line from {BUILD_SCRIPT.name}: {line!r}")
        name, reference, archive, image_id = fields
        found.append(ImageArchive(name, reference, Path(archive), image_id))
    return found


def ensure_images(
    names: Sequence[str] = DEFAULT_IMAGES, env: Mapping[str, str] | None = None
) -> list[ImageArchive]:
    """Build (when stale) and export the named images; minutes when the cache is cold, seconds when warm.

    env replaces the script's environment (e.g. FACEBLUR_CACHE, FACEBLUR_IMAGE_TAG); None inherits ours.
    """
    log.info("building images %s with %s (a cold cache takes minutes)", ", ".join(names), BUILD_SCRIPT)
    images = parse_build_output(run_build_script(BUILD_SCRIPT, ImageBuildError, names, env))
    if [image.name for image in images] != list(names):
        raise ImageBuildError(f"{BUILD_SCRIPT} built {[i.name for i in images]}, asked for {list(names)}")
    for image in images:
        if not image.archive.is_file():
            raise ImageBuildError(f"{BUILD_SCRIPT} named {image.archive}, which does not exist")
    return images
