"""scripts/build-k8s.sh with KUBEBUILDER_ASSETS: reuse what an envtest folder has, build the rest."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from faceblur_testenv.binaries import BUILD_SCRIPT, ensure_binaries

pytestmark = pytest.mark.tools  # builds the test environment's binaries when the cache is cold


def test_partial_assets_are_reused_and_only_the_missing_binaries_built(tmp_path: Path) -> None:
    cached = ensure_binaries()
    assets = tmp_path / "assets"  # what controller-runtime's envtest has, plus helm (no download here)
    assets.mkdir()
    for name in ("etcd", "kube-apiserver", "kubectl", "helm"):
        shutil.copy2(cached / name, assets / name)
    env = {**os.environ, "KUBEBUILDER_ASSETS": str(assets), "FACEBLUR_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.is_relative_to(tmp_path / "cache")
    for name in ("etcd", "kube-apiserver", "kubectl", "helm"):
        assert (folder / name).resolve() == (assets / name).resolve(), f"{name} was not reused"
    server = subprocess.run([assets / "kube-apiserver", "--version"], capture_output=True, text=True)
    for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
        assert not (folder / name).is_symlink()
        built = subprocess.run([folder / name, "--version"], capture_output=True, text=True, check=True)
        assert built.stdout.split() == server.stdout.split(), f"{name} built at another version"
    assert "building kube-apiserver" not in done.stderr
