"""Helpers for the real-node tests: busybox pods, waiting on their phase, what a clean host looks like."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.kubeapi import ApiError
from faceblur_testenv.kubenode import hostclean, network
from faceblur_testenv.kubenode.hostpaths import HostPaths
from faceblur_testenv.kubenode.localimages import BUSYBOX_IMAGE
from faceblur_testenv.kubenode.node import HostLock
from faceblur_testenv.polling import wait_until

JSON = dict[str, Any]


def busybox_pod(namespace: str, name: str, script: str, **container: Any) -> JSON:
    """A pod running script under busybox's sh once (restartPolicy Never), image never pulled."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    **container,
                }
            ],
        },
    }


def apply(cluster: TestCluster, *docs: JSON) -> None:
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
    )


def pod(cluster: TestCluster, namespace: str, name: str) -> JSON | None:
    try:
        return dict(cluster.api.get(f"/api/v1/namespaces/{namespace}/pods/{name}"))
    except ApiError:
        return None


def wait_phase(
    cluster: TestCluster, namespace: str, name: str, phases: set[str], timeout_s: float = 90
) -> JSON:
    """The pod once its phase is one of phases."""

    def probe() -> JSON | None:
        found = pod(cluster, namespace, name)
        return found if found and found.get("status", {}).get("phase") in phases else None

    return dict(wait_until(f"pod {namespace}/{name} in {sorted(phases)}", probe, timeout_s=timeout_s))


def terminated(pod_doc: JSON) -> JSON:
    """The main container's `terminated` state."""
    statuses = pod_doc["status"]["containerStatuses"]
    return dict(statuses[0]["state"]["terminated"])


def timed_run(cluster: TestCluster, doc: JSON, phases: set[str]) -> tuple[JSON, float]:
    """Apply a pod, wait for one of phases; return it and the seconds it took."""
    started = time.monotonic()
    apply(cluster, doc)
    found = wait_phase(cluster, doc["metadata"]["namespace"], doc["metadata"]["name"], phases)
    return found, time.monotonic() - started


def leftovers(workdir: Path, run: Path, net: network.PodNetwork, cgroup: str, before: HostPaths) -> JSON:
    """Everything a stopped node could have left on the host; a clean stop leaves every value empty."""
    kube_chains = [line for line in network.rules_mentioning(["-N KUBE-", ":KUBE-"]) if "KUBE-" in line]
    return {
        # The cluster DNS runs on the host, not in the node's cgroup tree: its process must be gone too.
        "processes": hostclean.processes_with_argument(str(workdir.resolve() / "coredns" / "Corefile")),
        "mounts": hostclean.current_mounts_under(workdir) + hostclean.current_mounts_under(run),
        "run_folder": [str(run)] if run.exists() else [],
        "image_stores": [str(p) for p in workdir.glob("**/containerd/root")],
        "cgroups": [str(p) for p in hostclean.cgroup_dirs(cgroup)],
        "links": network.links_of(net.bridge),
        "rules": network.rules_mentioning([net.subnet, net.bridge, net.comment]),
        "kube_chains": kube_chains,
        "host_paths": [
            str(p)
            for p, had in (
                (Path("/var/lib/kubelet/device-plugins"), before.had_device_plugins),
                (Path("/var/lib/kubelet"), before.had_kubelet_home),
            )
            if p.exists() and not had
        ],
        "container_log_links": [
            str(p)
            for p in (Path("/var/log/containers").iterdir() if Path("/var/log/containers").is_dir() else [])
            if p.is_symlink() and str(workdir) in str(p.readlink())
        ],
    }


def assert_clean(workdir: Path, run: Path, net: network.PodNetwork, cgroup: str, before: HostPaths) -> None:
    """Check under the host lock: another session's node may start as soon as ours released it (it
    would reuse the bridge and cgroup names), and holding the lock waits for it to stop again."""
    with HostLock():
        found = leftovers(workdir, run, net, cgroup, before)
    assert {k: v for k, v in found.items() if v} == {}
