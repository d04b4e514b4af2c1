"""The images the node needs that no registry gives us here: a pause image and a busybox image.

Both are made `from scratch` on this machine and cached by content under the cache root:
- pause: a static C program (gcc -static) that sleeps in pause() and reaps children, the sandbox
  image containerd runs for every pod (named by its `sandbox_image`, so it is never pulled);
- busybox: Debian's busybox-static with one symlink per applet, for tests that need a shell.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from faceblur_testenv.kubenode.ociarchive import ImageSpec, LayerEntry, write_archive

PAUSE_IMAGE = "faceblur.local/pause:1"
BUSYBOX_IMAGE = "faceblur.local/busybox:1"
BUSYBOX_BINARY = Path("/bin/busybox")

PAUSE_SOURCE = r"""
/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, exits on INT/TERM. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
static void quit(int sig) { (void)sig; _exit(0); }

int main(void) {
    struct sigaction on_child, on_quit;
    memset(&on_child, 0, sizeof on_child);
    memset(&on_quit, 0, sizeof on_quit);
    on_child.sa_handler = reap;
    on_child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    on_quit.sa_handler = quit;
    sigaction(SIGCHLD, &on_child, 0);
    sigaction(SIGINT, &on_quit, 0);
    sigaction(SIGTERM, &on_quit, 0);
    for (;;) pause();
}
"""


class ImageBuildError(RuntimeError):
    """A local image could not be made (compiler or busybox missing)."""


def cache_root() -> Path:
    base = os.environ.get("FACEBLUR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "faceblur"
    )
    return Path(base) / "node-images"


def _base_entries() -> list[LayerEntry]:
    return [LayerEntry(d) for d in ("bin", "etc", "tmp", "proc", "sys", "dev")] + [
        LayerEntry("etc/passwd", b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n", 0o644),
        LayerEntry("etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644),
    ]


def compile_pause(target: Path) -> Path:
    """gcc -static the pause program into target (once: the source's hash names the binary)."""
    if target.is_file():
        return target
    compiler = shutil.which("gcc")
    if compiler is None:
        raise ImageBuildError("gcc is needed to build the pause image (apt-get install gcc libc6-dev)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pause.c"
        source.write_text(PAUSE_SOURCE)
        done = subprocess.run(
            [compiler, "-static", "-Os", "-s", "-o", str(Path(tmp) / "pause"), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ImageBuildError(f"gcc failed on the pause program: {done.stderr.strip()}")
        shutil.move(str(Path(tmp) / "pause"), target)
    return target


def pause_archive() -> Path:
    """The pause image's oci-archive, built when missing."""
    digest = hashlib.sha256(PAUSE_SOURCE.encode()).hexdigest()[:16]
    archive = cache_root() / f"pause-{digest}.oci.tar"
    if archive.is_file():
        return archive
    binary = compile_pause(cache_root() / f"pause-{digest}")
    spec = ImageSpec(
        name=PAUSE_IMAGE,
        entries=(LayerEntry("pause", binary.read_bytes(), 0o755),),
        entrypoint=("/pause",),
        env=(),
        user="65535:65535",
    )
    return write_archive(spec, archive)


def busybox_applets(binary: Path) -> list[str]:
    done = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True)
    return sorted({name for name in done.stdout.split() if name and "/" not in name} - {"busybox"})


def busybox_archive(binary: Path = BUSYBOX_BINARY) -> Path:
    """A busybox image from Debian's static busybox (package busybox-static), built when missing."""
    if not binary.is_file():
        raise ImageBuildError(f"{binary} missing: apt-get install busybox-static")
    content = binary.read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:16]
    archive = cache_root() / f"busybox-{digest}.oci.tar"
    if archive.is_file():
        return archive
    entries = [*_base_entries(), LayerEntry("bin/busybox", content, 493)]
    entries += [LayerEntry(f"bin/{name}", symlink_to="busybox") for name in busybox_applets(binary)]
    spec = ImageSpec(name=BUSYBOX_IMAGE, entries=tuple(entries), cmd=("/bin/sh",))
    return write_archive(spec, archive)
