"""Undo what a node leaves on the host: processes in its cgroups, mounts under its work folder, its
cgroup trees. Parsing is pure (tested without root); the rest is a thin layer over /proc and /sys.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def unescape_mount_path(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(mountinfo: str, folder: Path) -> list[str]:
    """Mount points at or below folder, in mount order (unmount them reversed)."""
    prefix = str(folder).rstrip("/")
    found: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = unescape_mount_path(fields[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def current_mounts_under(folder: Path) -> list[str]:
    return mounts_under(Path("/proc/self/mountinfo").read_text(), folder)


def unmount_all_under(folder: Path, rounds: int = 5) -> list[str]:
    """Unmount everything under folder, newest first; lazily when busy. Returns what is still mounted."""
    for _ in range(rounds):
        points = current_mounts_under(folder)
        if not points:
            return []
        for point in reversed(points):
            done = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=False)
    return current_mounts_under(folder)


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, the named systemd one, the unified one)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] in ("cgroup", "cgroup2"):
            found.append(Path(unescape_mount_path(fields[4])))
    return found


def cgroup_dirs(name: str) -> list[Path]:
    """The folder `name` (e.g. /faceblur-node-0) in every hierarchy where it exists."""
    return [h / name.lstrip("/") for h in hierarchies() if (h / name.lstrip("/")).is_dir()]


def create_cgroup(name: str) -> None:
    """Create the cgroup in every v1 hierarchy; cpuset needs its cpus and mems copied from its parent."""
    for hierarchy in hierarchies():
        target = hierarchy / name.lstrip("/")
        target.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            parent_value = hierarchy / knob
            if parent_value.is_file() and not (target / knob).read_text().strip():
                (target / knob).write_text(parent_value.read_text())


def pids_in(tree: Path) -> set[int]:
    pids: set[int] = set()
    for procs in tree.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in procs.read_text().split())
    return pids


def kill_cgroup_processes(name: str, timeout_s: float = 10.0) -> None:
    """SIGKILL every process in the cgroup trees called name until none is left."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = set().union(*(pids_in(d) for d in cgroup_dirs(name))) if cgroup_dirs(name) else set()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    log.warning("processes still in cgroup %s after %.0fs", name, timeout_s)


def remove_cgroup(name: str) -> list[Path]:
    """rmdir the cgroup trees called name, deepest first; returns what could not be removed."""
    left: list[Path] = []
    for tree in cgroup_dirs(name):
        for folder in sorted((p for p in tree.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                folder.rmdir()
        try:
            tree.rmdir()
        except OSError as exc:
            log.warning("could not remove cgroup %s: %s", tree, exc)
            left.append(tree)
    return left


def processes_with_argument(word: str) -> list[int]:
    """PIDs whose command line contains word as one argument (e.g. our containerd's socket path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if word.encode() in argv:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent that is not us."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_pids(pids: list[int], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what still lives after grace_s."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
