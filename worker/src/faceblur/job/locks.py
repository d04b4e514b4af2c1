"""Claims of chunk indexes by workers that share one local job folder (`process --all`).

A claim is a lock file published atomically (a hard link to a finished temp file), holding
who took it (host, pid, time). A
lock whose owner died on this host, or that is older than a timeout (an owner on another
host sharing the folder that vanished), is stale and may be taken over. Taking over goes
through a second such file so that two workers never both take the same stale lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER_S = 6 * 3600.0  # longer than any chunk takes; local dead owners are found at once
_TAKEOVER_STALE_S = 60.0


@dataclass(frozen=True)
class LockOwner:
    host: str
    pid: int
    time: float

    @classmethod
    def me(cls) -> LockOwner:
        return cls(socket.gethostname(), os.getpid(), time.time())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def is_stale(owner: LockOwner | None, now: float, stale_after_s: float, host: str) -> bool:
    """Unreadable, too old, or held by a process of this host that no longer exists."""
    if owner is None:
        return True
    if now - owner.time > stale_after_s:
        return True
    return owner.host == host and not pid_alive(owner.pid)


class IndexLocks:
    """One lock file per index, at `path_for(index)` (a job's `locks/NNNNNN.lock`)."""

    def __init__(self, path_for: Callable[[int], Path], stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        self.path = path_for
        self.stale_after_s = stale_after_s
        self._held: set[int] = set()

    def claim(self, index: int) -> bool:
        """True when this process now holds `index` (a fresh claim or a stale one taken over)."""
        path = self.path(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._create(path):
            self._held.add(index)
            return True
        owner = read_owner(path)
        if not is_stale(owner, time.time(), self.stale_after_s, socket.gethostname()):
            return False
        if self._take_over(path, owner):
            log.warning("took over the stale lock of index %d (held by %s)", index, owner)
            self._held.add(index)
            return True
        return False

    def release(self, index: int) -> None:
        if index in self._held:
            self._held.discard(index)
            self.path(index).unlink(missing_ok=True)

    def release_all(self) -> None:
        for index in list(self._held):
            self.release(index)

    def _create(self, path: Path) -> bool:
        """Create `path` holding our owner record, atomically: hard-linking a finished temp file
        either fails (someone holds it) or publishes a complete record, so a contender never reads
        a half-written lock and mistakes it for a stale one (this also works on NFS)."""
        tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(asdict(LockOwner.me())))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def _take_over(self, path: Path, seen: LockOwner | None) -> bool:
        guard = path.with_name(path.name + ".takeover")
        if not self._create(guard):
            guard_owner = read_owner(guard)
            if guard_owner is None or time.time() - guard_owner.time > _TAKEOVER_STALE_S:
                guard.unlink(missing_ok=True)  # a taker that died mid-takeover
            return False
        try:
            if read_owner(path) != seen:
                return False  # someone released or re-claimed it meanwhile
            path.unlink(missing_ok=True)
            return self._create(path)
        finally:
            guard.unlink(missing_ok=True)


def read_owner(path: Path) -> LockOwner | None:
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        data = json.loads(path.read_text())
        return LockOwner(str(data["host"]), int(data["pid"]), float(data["time"]))
    return None
