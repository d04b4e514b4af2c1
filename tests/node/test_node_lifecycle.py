"""The node's life on a shared machine: stop leaves nothing behind, a second start works, and a start
after a crashed run (test process killed, pods and shims left running) cleans up and works too."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faceblur_testenv.binaries import ensure_binaries
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.kubenode import hostclean
from faceblur_testenv.kubenode.hostpaths import HostPaths
from faceblur_testenv.polling import wait_until
from kube_support import namespace_name, new_namespace
from node_support import assert_clean, busybox_pod, timed_run

pytestmark = pytest.mark.node


def _run_sleeper(cluster: TestCluster) -> None:
    """A pod with a volume (mounts), a cgroup and a veth: something for stop to clean."""
    namespace = new_namespace(cluster, namespace_name("nd", "lifecycle"))
    doc = busybox_pod(namespace, "sleeper", "sleep 3600", resources={"limits": {"memory": "32Mi"}})
    doc["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]
    doc["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    _, seconds = timed_run(cluster, doc, {"Running"})
    print(f"pod create to Running: {seconds:.1f}s")


def test_stop_leaves_nothing_and_a_second_start_works(tmp_path: Path) -> None:
    before = HostPaths.observe()
    for round_ in ("first", "second"):
        workdir = tmp_path / round_
        cluster = TestCluster(workdir, real_node=True)
        started = time.monotonic()
        cluster.start()
        print(f"{round_} start: {time.monotonic() - started:.1f}s")
        try:
            assert cluster.node is not None
            assert cluster.node.record is not None
            net, cgroup, run = cluster.node.net, cluster.node.record.cgroup, cluster.node.layout.run
            assert net is not None
            _run_sleeper(cluster)
            assert hostclean.current_mounts_under(workdir), "a running pod's root file system is mounted"
            assert hostclean.current_mounts_under(run), "a running pod's volumes are mounted"
            assert hostclean.cgroup_dirs(cgroup), "a running pod has cgroups under the node's root"
            corefile = str(cluster.workdir / "coredns" / "Corefile")
            assert hostclean.processes_with_argument(corefile), "the cluster DNS runs on the host"
            assert cluster.health_problems() == []
            if round_ == "second":  # a component that dies is what the suite's broken-cluster check names
                proxy_config = f"--config={cluster.node.layout.root / 'kube-proxy-config.yaml'}"
                proxy = hostclean.processes_with_argument(proxy_config)
                assert len(proxy) == 1, proxy
                hostclean.kill_pids(proxy)
                # A killed Go program's leader shows as a zombie while its other threads still exit,
                # and only then can it be reaped: give the exit a moment to be seen.
                deadline = time.monotonic() + 10
                while not (problems := cluster.health_problems()) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert len(problems) == 1, problems
                assert problems[0].startswith("kube-proxy exited"), problems
        finally:
            stopped = time.monotonic()
            cluster.stop()
            print(f"{round_} stop: {time.monotonic() - stopped:.1f}s")
        assert_clean(workdir, run, net, cgroup, before)


def test_start_after_a_crashed_run_cleans_up(tmp_path: Path) -> None:
    before = HostPaths.observe()
    crashed = tmp_path / "crashed"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faceblur_testenv.cli",
            "up",
            "--real-node",
            "--no-s3",
            "--workdir",
            str(crashed),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        output: list[str] = []
        for line in up.stdout:
            output.append(line)
            if line.startswith("Ctrl-C"):
                break
        else:
            pytest.fail(
                f"faceblur-testenv up exited {up.wait()} before the cluster was up:\n{''.join(output)}"
            )
        kubectl = [
            str(ensure_binaries() / "kubectl"),
            "--kubeconfig",
            str(crashed / "cluster" / "kubeconfig"),
        ]
        manifest = busybox_pod("default", "orphan", "sleep 3600")
        subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(manifest), text=True, check=True)
        wait_until(
            "the orphan pod Running",
            lambda: (
                "Running"
                in subprocess.run(
                    [*kubectl, "get", "pod", "orphan", "-o", "jsonpath={.status.phase}"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
            ),
            timeout_s=90,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)  # the crash: no stop ran; shims, the pod and mounts remain
        up.wait()
    assert hostclean.current_mounts_under(crashed), "the crash left the pod's mounts"
    assert hostclean.processes_with_argument("/run/faceblur-testenv/faceblur-node-0/containerd.sock"), (
        "the crash left the pod's shim running"
    )

    cluster = TestCluster(tmp_path / "after", real_node=True)
    cluster.start()
    try:
        assert cluster.node is not None
        assert cluster.node.record is not None
        net, cgroup, run = cluster.node.net, cluster.node.record.cgroup, cluster.node.layout.run
        assert net is not None
        assert hostclean.current_mounts_under(crashed) == []
        _run_sleeper(cluster)
    finally:
        cluster.stop()
    assert_clean(tmp_path, run, net, cgroup, before)
