"""The host paths outside its work folder that a kubelet insists on, and how to give them back.

The kubelet (v1.34) keeps the device-plugin socket folder at the fixed `/var/lib/kubelet/device-plugins`
and links every container log into `/var/log/containers`, whatever its root dir and podLogsDir. The
node records which of these folders it created, and removes on stop exactly what it added there.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from faceblur_testenv.deviceplugin import SHARED_SOCKET_NAME, SOCKET_NAME

KUBELET_HOME = Path("/var/lib/kubelet")
DEVICE_PLUGINS = KUBELET_HOME / "device-plugins"
CONTAINER_LOGS = Path("/var/log/containers")
# What the kubelet and our device plugins write into the device-plugin folder (a crash leaves them).
KUBELET_DEVICE_FILES = ("kubelet.sock", "kubelet_internal_checkpoint", SOCKET_NAME, SHARED_SOCKET_NAME)


@dataclass(frozen=True)
class HostPaths:
    """Which of the kubelet's fixed folders existed before this node started."""

    had_kubelet_home: bool
    had_device_plugins: bool
    had_container_logs: bool

    @staticmethod
    def observe() -> HostPaths:
        return HostPaths(KUBELET_HOME.exists(), DEVICE_PLUGINS.exists(), CONTAINER_LOGS.exists())

    def restore(self, pod_logs: Path) -> None:
        """Remove the kubelet's own files and log links to pod_logs, then the folders we created."""
        for name in KUBELET_DEVICE_FILES:
            with contextlib.suppress(FileNotFoundError):
                (DEVICE_PLUGINS / name).unlink()
        if CONTAINER_LOGS.is_dir():
            for link in CONTAINER_LOGS.iterdir():
                if link.is_symlink() and os.readlink(link).startswith(str(pod_logs)):
                    link.unlink()
        for folder, had in (
            (DEVICE_PLUGINS, self.had_device_plugins),
            (KUBELET_HOME, self.had_kubelet_home),
            (CONTAINER_LOGS, self.had_container_logs),
        ):
            if not had:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty: another device plugin's socket stays its own
