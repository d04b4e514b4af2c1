"""The test node's GPU device plugin (testenv/deviceplugin): built by scripts/build-deviceplugin.sh, run
beside the kubelet so that the node advertises `nvidia.com/gpu` although no GPU is attached.

The plugin serves the kubelet's device-plugin API on a socket in the kubelet's device-plugin folder,
registers with the kubelet's `kubelet.sock` there (again whenever the kubelet restarts), advertises
`gpus` healthy devices and answers Allocate as NVIDIA's plugin does: `NVIDIA_VISIBLE_DEVICES` set to
the granted device ids. The kubelet v1.34 always uses `/var/lib/kubelet/device-plugins/`, whatever its
`--root-dir` (devicemanager.NewManagerImpl takes the API's fixed KubeletSocket), hence the default.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

from faceblur_testenv.buildscripts import last_line, run_build_script
from faceblur_testenv.processes import ManagedProcess

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-deviceplugin.sh"
KUBELET_DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
RESOURCE = "nvidia.com/gpu"
# What NVIDIA's plugin advertises for time-sliced GPUs with renameByDefault: a node runs a second
# plugin under this name, so jobs asking for a renamed resource are tested too.
SHARED_RESOURCE = "nvidia.com/gpu.shared"
VISIBLE_DEVICES_ENV = "NVIDIA_VISIBLE_DEVICES"
SOCKET_NAME = "faceblur-gpu.sock"
SHARED_SOCKET_NAME = "faceblur-gpu-shared.sock"  # the plugin advertising SHARED_RESOURCE


def _registered(resource: str) -> str:
    """What the plugin logs after each successful Register call (lifecycle.go)."""
    return f"registered {resource} with the kubelet"


class DevicePluginError(RuntimeError):
    """The device plugin could not be built or did not start."""


def ensure_device_plugin() -> Path:
    """The plugin's binary, built first when its sources changed since the last build (seconds)."""
    log.info("locating the device plugin with %s (builds it when its sources changed)", BUILD_SCRIPT)
    binary = Path(last_line(run_build_script(BUILD_SCRIPT, DevicePluginError)))
    if not binary.is_file():
        raise DevicePluginError(f"{BUILD_SCRIPT} printed {binary}, which is not a file")
    return binary


def device_ids(gpus: int) -> list[str]:
    """The ids the plugin advertises for gpus devices (devices.go's DeviceIDs): NVIDIA-UUID-shaped, fixed."""
    return [f"GPU-fb7e57e0-0000-4000-8000-{index:012x}" for index in range(gpus)]


class DevicePlugin(ManagedProcess):
    """The plugin as a managed process: start() returns once its socket is served; stop() (SIGTERM)
    makes it remove its socket and exit 0. Being a ManagedProcess, a node can keep it with its other
    components and stop it before the kubelet."""

    def __init__(
        self,
        log_path: Path,
        gpus: int = 1,
        plugin_dir: Path = KUBELET_DEVICE_PLUGINS,
        binary: Path | None = None,
        socket_name: str = SOCKET_NAME,
        resource: str = RESOURCE,
        name: str = "device-plugin",
    ) -> None:
        self.gpus = gpus
        self.resource = resource
        self.plugin_dir = Path(plugin_dir)
        self.socket_path = self.plugin_dir / socket_name
        argv = [
            str(binary if binary is not None else ensure_device_plugin()),
            f"-device-plugin-dir={self.plugin_dir}",
            f"-gpus={gpus}",
            f"-resource={resource}",
            f"-socket={socket_name}",
        ]
        super().__init__(name, argv, log_path)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait until it serves on its socket (it registers as soon as kubelet.sock exists)."""
        super().start()
        deadline = time.monotonic() + timeout_s
        while not self.serving():
            if not self.running():
                raise DevicePluginError(
                    f"the device plugin exited with code {self.exit_code()}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DevicePluginError(
                    f"no socket {self.socket_path} after {timeout_s:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def serving(self) -> bool:
        """Whether something accepts connections on its socket (a killed run leaves a dead one)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    def registrations(self) -> int:
        """How many times it has registered with a kubelet so far (once per kubelet start)."""
        return registrations_in(self.log_path, self.resource)


def registrations_in(log_path: Path, resource: str = RESOURCE) -> int:
    """How many successful registrations a device plugin's log records (for a node that keeps only logs)."""
    try:
        return log_path.read_text(errors="replace").count(_registered(resource))
    except FileNotFoundError:
        return 0
