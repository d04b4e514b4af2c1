"""Child processes that can always be stopped: each in its own process group, logged to a file.

Stopping sends SIGTERM to the whole group, waits, then SIGKILL: only groups this module started are
signalled. On Linux a child also gets SIGKILL when the thread that started it ends
(PR_SET_PDEATHSIG), so a killed test session does not leave an API server behind; start components
from a thread that outlives them (the main thread, typically).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# Looked up once here: the child between fork and exec must not load libraries (locks).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def free_ports(count: int, host: str = "0.0.0.0") -> list[int]:
    """Distinct TCP ports on `host` that were free a moment ago (all sockets held until all are chosen).

    By default chosen on the wildcard address, so free on every address (loopback, the node's bridge):
    a port free on loopback may be taken on the bridge address (a test S3 server died when its admin
    port was), and the control plane and CoreDNS bind the bridge address."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to kill it when its parent thread exits."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> int | None:
    """SIGTERM the process group led by proc, SIGKILL it after grace_s; return the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("process group %d ignored SIGTERM for %.0fs; killing it", proc.pid, grace_s)
    # The leader may be gone while others in its group live on: always sweep the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return proc.returncode


class ManagedProcess:
    """One long-running component (etcd, kube-apiserver, ...) with its log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.debug("started %s (pid %d): %s", self.name, self._proc.pid, " ".join(self.argv))

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def exit_code(self) -> int | None:
        """None while running (or never started), else the exit code."""
        return self._proc.poll() if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the component's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def exit_report(self, waiting_for: str | None = None) -> str:
        """What to tell of a component that exited: its code, its log and the log's last lines."""
        during = f" while waiting for {waiting_for}" if waiting_for else ""
        code = self.exit_code()
        return f"{self.name} exited with code {code}{during}; log {self.log_path}:\n{self.log_tail()}"

    def stop(self, grace_s: float = 10.0) -> None:
        if self._proc is not None:
            stop_group(self._proc, grace_s)
        if self._log is not None:
            self._log.close()
            self._log = None
