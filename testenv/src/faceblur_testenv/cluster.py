"""A real Kubernetes cluster for tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and one real node (containerd, kubelet, kube-proxy, the device plugin; see faceblur_testenv.kubenode).
`real_node=False` gives the control plane alone (no node: pods stay Pending), which needs no root.

Everything lives in one work folder (certificates, etcd data, kubeconfigs, one log per component, the
node's state), listens on free ports on the host's address on the pod bridge (so pods reach the API
server; 127.0.0.1 without a node), and is stopped process group by process group.

`TestCluster` is the facade the tests use; the work is done by three parts, as `kubenode` keeps its
configs apart from its node: `controlplane` (the layout: paths, certificates, flags, kubeconfigs; pure),
`launcher` (starts, waits on and stops the processes) and `clusterclient` (the API, kubectl, helm, logs,
Events, and what the nodes and the disk say of the cluster's health).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from faceblur_testenv.clusterclient import (
    ClusterClient,
    ClusterError,
    CommandFailed,
    disk_problems,
    node_condition_problems,
)
from faceblur_testenv.controlplane import REAL_NODE_NAME, SERVICE_CIDR, ControlPlaneLayout
from faceblur_testenv.kubenode.node import KubeNode
from faceblur_testenv.launcher import ClusterLauncher

__all__ = [
    "REAL_NODE_NAME",
    "SERVICE_CIDR",
    "ClusterError",
    "CommandFailed",
    "TestCluster",
    "node_condition_problems",
]

log = logging.getLogger(__name__)


class TestCluster(ClusterClient):
    """Start, use and stop one throw-away cluster; see the module docstring. What tests do with it
    (api, kubectl, helm, pod_log, events, ...) is its ClusterClient's."""

    __test__ = False  # not a pytest test class despite the name
    # One line per cluster started in this process, for a test session's summary.
    startup_reports: ClassVar[list[str]] = []

    def __init__(
        self,
        workdir: Path,
        binaries: Path | None = None,
        real_node: bool = True,
        node_gpus: int = 1,
        node_images: Sequence[Path] = (),
    ):
        """node_images: archives the real node imports at start (e.g. ensure_images()' archives)."""
        self.workdir = Path(workdir).resolve()
        super().__init__(ControlPlaneLayout(self.workdir))
        self.startup_seconds: float | None = None
        self._launcher = ClusterLauncher(self.layout, self, binaries, real_node, node_gpus, node_images)

    @property
    def node(self) -> KubeNode | None:
        return self._launcher.node

    @property
    def bind_ip(self) -> str:
        return self._launcher.bind_ip

    @property
    def server(self) -> str:
        return self._launcher.server

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self._launcher.locate_binaries()
        built = time.monotonic()
        self._launcher.start()
        self.startup_seconds = time.monotonic() - built
        message = (
            f"faceblur-testenv: cluster up in {self.startup_seconds:.1f}s at {self.server} "
            f"({'1 real node' if self.node else 'no node'}; binaries located in "
            f"{built - started:.1f}s; workdir {self.workdir})"
        )
        log.info(message)
        print(message, file=sys.stderr)
        TestCluster.startup_reports.append(message)

    def stop(self) -> None:
        """Stop what this cluster started, newest first (node, scheduler, ..., etcd)."""
        self._launcher.stop()

    def __enter__(self) -> TestCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- health and logs -------------------------------------------------------------------------

    def health_problems(self) -> list[str]:
        """What keeps this cluster from running pods now (empty when nothing does): an exited component,
        a node not Ready or under pressure, a nearly full disk. Asked after a failure, to tell a broken
        cluster (every later test would wait out its timeouts) from a failing test."""
        return self._launcher.exit_reports() + disk_problems(self.workdir) + self.node_problems()

    def component_log(self, name: str) -> Path:
        """Log of a component: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and with
        the real node containerd, kubelet, kube-proxy."""
        if self.node is not None and name in self.node.component_logs():
            return self.node.component_logs()[name]
        return self.layout.log(name)
