"""The test node's device plugin: its Go tests, its cached build, and its process as the node runs it.

The kubelet side (allocatable nvidia.com/gpu, a GPU pod's NVIDIA_VISIBLE_DEVICES) is tested with the
real node in tests/node/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from faceblur_testenv.deviceplugin import BUILD_SCRIPT, REPO_ROOT, DevicePlugin, ensure_device_plugin

SOURCES = REPO_ROOT / "testenv" / "deviceplugin"
GO_ENV = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}

pytestmark = pytest.mark.tools  # builds and tests the plugin with Go


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short folder: a unix socket's path has at most 107 bytes, which pytest's tmp_path can exceed."""
    with tempfile.TemporaryDirectory(prefix="fbdp-", dir="/tmp") as folder:
        yield Path(folder)


def build(script: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACEBLUR_CACHE": str(cache)}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, done.stderr
    return done


def test_go_tests_of_the_plugin_pass() -> None:
    """Allocate's answers, ListAndWatch, registration and re-registration against a fake kubelet."""
    done = subprocess.run(
        ["go", "test", "-count=1", "-v", "./..."],
        cwd=SOURCES,
        env={**os.environ, **GO_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--- PASS: TestRegistersAgainWhenTheKubeletRestarts" in done.stdout
    assert "--- FAIL" not in done.stdout


def test_build_is_cached_by_source_hash(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"  # a copy, so that a source can change without touching the repo's
    shutil.copytree(SOURCES, checkout / "testenv" / "deviceplugin")
    (checkout / "scripts").mkdir()
    script = checkout / "scripts" / BUILD_SCRIPT.name
    shutil.copy2(BUILD_SCRIPT, script)
    cache = tmp_path / "cache"

    first = build(script, cache)
    binary = Path(first.stdout.splitlines()[-1])
    assert binary.is_relative_to(cache / "deviceplugin")
    assert "building" in first.stderr
    help_text = subprocess.run([binary, "-h"], capture_output=True, text=True, check=False).stderr
    assert "-device-plugin-dir" in help_text

    again = build(script, cache)
    assert again.stdout.splitlines()[-1] == str(binary)
    assert "building" not in again.stderr

    with (checkout / "testenv" / "deviceplugin" / "main.go").open("a") as source:
        source.write("\n// a change\n")
    changed = build(script, cache)
    assert "building" in changed.stderr
    assert Path(changed.stdout.splitlines()[-1]).parent != binary.parent


def test_plugin_serves_replacing_a_stale_socket_and_stops_cleanly(socket_dir: Path, tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # what a killed run leaves: a dead socket
    stale.bind(str(socket_dir / "faceblur-gpu.sock"))
    stale.close()
    plugin = DevicePlugin(
        tmp_path / "plugin.log", gpus=2, plugin_dir=socket_dir, binary=ensure_device_plugin()
    )
    plugin.start()
    try:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(str(plugin.socket_path))  # refused on the stale socket; accepted once served
        probe.close()
        assert "serving 2 nvidia.com/gpu devices" in plugin.log_tail()
        assert plugin.registrations() == 0  # no kubelet.sock here
        assert plugin.running()
    finally:
        plugin.stop()
    assert plugin.exit_code() == 0, plugin.log_tail()
    assert not plugin.socket_path.exists()
    assert sorted(socket_dir.iterdir()) == []


def test_plugin_refuses_a_negative_count(socket_dir: Path, tmp_path: Path) -> None:
    plugin = DevicePlugin(
        tmp_path / "plugin.log", gpus=-1, plugin_dir=socket_dir, binary=ensure_device_plugin()
    )
    with pytest.raises(RuntimeError, match="exited with code 2"):
        plugin.start()
    assert "-gpus must be 0 or more" in plugin.log_tail()
