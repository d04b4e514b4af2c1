"""Where the control-plane binaries are: scripts/build-k8s.sh decides, builds when needed, and prints it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from faceblur_testenv.buildscripts import last_line, run_build_script

log = logging.getLogger(__name__)

NEEDED = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
    "helm",
)
REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-k8s.sh"


class BinariesMissingError(RuntimeError):
    """The binaries could not be found or built."""


def missing_in(folder: Path) -> list[str]:
    """Which of the needed binaries are not executable files in folder."""
    return [name for name in NEEDED if not os.access(folder / name, os.X_OK)]


def ensure_binaries() -> Path:
    """The folder holding every needed binary, building them first if the cache is cold (minutes).

    KUBEBUILDER_ASSETS wins when it holds all of them, as with controller-runtime's envtest; when it
    holds some (envtest has etcd, kube-apiserver and kubectl), the script builds only the rest.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and not missing_in(Path(assets)):
        return Path(assets)
    if not BUILD_SCRIPT.is_file():
        raise BinariesMissingError(
            f"{BUILD_SCRIPT} not found; set KUBEBUILDER_ASSETS to a folder with {', '.join(NEEDED)}"
        )
    log.info("locating control-plane binaries with %s (a cold cache builds them: minutes)", BUILD_SCRIPT)
    folder = Path(last_line(run_build_script(BUILD_SCRIPT, BinariesMissingError)))
    if missing := missing_in(folder):
        raise BinariesMissingError(f"{folder} lacks {', '.join(missing)} after {BUILD_SCRIPT}")
    return folder


ACTIONLINT_SCRIPT = REPO_ROOT / "scripts" / "build-actionlint.sh"


def ensure_actionlint() -> Path:
    """actionlint, the workflow linter, built from its Go module by scripts/build-actionlint.sh when the
    cache is cold (a minute), else found there."""
    log.info("locating actionlint with %s (a cold cache builds it)", ACTIONLINT_SCRIPT)
    binary = Path(last_line(run_build_script(ACTIONLINT_SCRIPT, BinariesMissingError)))
    if not os.access(binary, os.X_OK):
        raise BinariesMissingError(f"{ACTIONLINT_SCRIPT} printed {binary}, which is not an executable")
    return binary
