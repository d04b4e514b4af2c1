"""nvidia.com/gpu on the real node, through our device plugin and the kubelet's device manager: the
scheduler refuses a pod asking more GPUs than the node has, and a kubelet restart (which deletes every
socket in the device-plugin folder) is survived: the plugin registers again and GPU pods still get
their device. The plain case (allocatable, one GPU pod's NVIDIA_VISIBLE_DEVICES) is in test_node_pods.

Its own node (one GPU): restarting the kubelet here leaves the other modules' node alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faceblur_testenv.cluster import REAL_NODE_NAME, TestCluster
from faceblur_testenv.deviceplugin import RESOURCE, VISIBLE_DEVICES_ENV, device_ids, registrations_in
from faceblur_testenv.kubenode import hostclean
from faceblur_testenv.kubenode.node import KubeNode
from faceblur_testenv.polling import wait_until
from faceblur_testenv.processes import ManagedProcess
from kube_support import apply, get
from node_support import busybox_pod, timed_run

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """Not the session's node (conftest.py): these tests kill and restart its kubelet."""
    cluster = TestCluster(Path(tmp_path_factory.mktemp("gpu-node")), real_node=True, node_gpus=1)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def gpu_pod(namespace: str, name: str, gpus: int) -> dict[str, object]:
    return busybox_pod(
        namespace, name, f"echo ${VISIBLE_DEVICES_ENV}", resources={"limits": {RESOURCE: str(gpus)}}
    )


def allocatable_gpus(cluster: TestCluster) -> str | None:
    allocatable = cluster.api.get(f"/api/v1/nodes/{REAL_NODE_NAME}")["status"].get("allocatable", {})
    return allocatable.get(RESOURCE)


def run_gpu_pod(cluster: TestCluster, namespace: str, name: str) -> list[str]:
    found, _ = timed_run(cluster, gpu_pod(namespace, name, 1), {"Failed", "Succeeded"})
    assert found["status"]["phase"] == "Succeeded", found["status"]
    return cluster.kubectl("logs", "-n", namespace, name).stdout.split()


def gpu_pod_after_restart(cluster: TestCluster, namespace: str, attempts: int = 10) -> list[str]:
    """What a GPU pod sees once the restarted kubelet has the plugin's devices again.

    The node's allocatable may still show the old kubelet's figure for a moment, and a pod the
    scheduler binds then is rejected by the new kubelet with UnexpectedAdmissionError ("Available: 0"),
    as on any cluster: such a pod is replaced, any other failure is not.
    """
    for attempt in range(attempts):
        found, _ = timed_run(cluster, gpu_pod(namespace, f"after-{attempt}", 1), {"Failed", "Succeeded"})
        if found["status"]["phase"] == "Succeeded":
            return cluster.kubectl("logs", "-n", namespace, f"after-{attempt}").stdout.split()
        assert found["status"].get("reason") == "UnexpectedAdmissionError", found["status"]
        time.sleep(1.0)
    raise AssertionError(f"no GPU pod was admitted in {attempts} tries after the kubelet restart")


def restart_kubelet(node: KubeNode) -> ManagedProcess:
    """Stop the node's kubelet and start one with the same command line, logging to the same file."""
    (pid,) = hostclean.processes_with_argument(f"--root-dir={node.layout.kubelet_root}")
    argv = [arg.decode() for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if arg]
    hostclean.kill_pids([pid])
    assert not hostclean.alive(pid)
    kubelet = ManagedProcess("kubelet", argv, node.component_logs()["kubelet"])
    kubelet.start()
    return kubelet


def test_a_pod_asking_more_gpus_than_the_node_has_stays_pending(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    assert allocatable_gpus(node_cluster) == "1"
    apply(node_cluster, gpu_pod(node_namespace, "greedy", 2))

    def unschedulable() -> dict[str, str] | None:
        found = get(node_cluster, f"/api/v1/namespaces/{node_namespace}/pods/greedy") or {}
        for condition in found.get("status", {}).get("conditions", []):
            if condition["type"] == "PodScheduled" and condition["status"] == "False":
                return dict(condition)
        return None

    condition = wait_until("greedy's PodScheduled=False", unschedulable, timeout_s=60)
    assert condition["reason"] == "Unschedulable"
    assert f"Insufficient {RESOURCE}" in condition["message"]
    found = get(node_cluster, f"/api/v1/namespaces/{node_namespace}/pods/greedy")
    assert found is not None
    assert found["status"]["phase"] == "Pending"
    assert "nodeName" not in found["spec"]


def test_the_plugin_registers_again_when_the_kubelet_restarts(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    node = node_cluster.node
    assert node is not None
    plugin_log = node.component_logs()["device-plugin"]
    assert run_gpu_pod(node_cluster, node_namespace, "before") == device_ids(1)
    registered = registrations_in(plugin_log)
    assert registered >= 1

    kubelet = restart_kubelet(node)
    try:
        wait_until(
            "the device plugin's registration with the new kubelet",
            lambda: registrations_in(plugin_log) > registered,
            timeout_s=60,
        )
        assert registrations_in(plugin_log) == registered + 1, plugin_log.read_text()
        wait_until("1 nvidia.com/gpu allocatable again", lambda: allocatable_gpus(node_cluster) == "1")
        # A new pod needs Allocate on the new kubelet's connection to the plugin.
        assert gpu_pod_after_restart(node_cluster, node_namespace) == device_ids(1)
    finally:
        kubelet.stop(grace_s=5.0)  # the node's stop finds no kubelet of its own left to stop
