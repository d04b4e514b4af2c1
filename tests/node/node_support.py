"""Helpers for the real-node tests: busybox pods, timing their run, what a clean host looks like."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.kubenode import hostclean, network
from faceblur_testenv.kubenode.hostpaths import HostPaths
from faceblur_testenv.kubenode.node import HostLock
from kube_support import JSON, apply, bare_pod, container, wait_pod_phase


def busybox_pod(namespace: str, name: str, script: str, **container_fields: Any) -> JSON:
    """A pod running script under busybox's sh once (restartPolicy Never), image never pulled."""
    return bare_pod(namespace, name, container(["/bin/sh", "-c", script], **container_fields))


def terminated(pod_doc: JSON) -> JSON:
    """The main container's `terminated` state."""
    statuses = pod_doc["status"]["containerStatuses"]
    return dict(statuses[0]["state"]["terminated"])


def timed_run(cluster: TestCluster, doc: JSON, phases: set[str]) -> tuple[JSON, float]:
    """Apply a pod, wait for one of phases; return it and the seconds it took."""
    started = time.monotonic()
    apply(cluster, doc)
    found = wait_pod_phase(cluster, doc["metadata"]["namespace"], doc["metadata"]["name"], phases)
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
