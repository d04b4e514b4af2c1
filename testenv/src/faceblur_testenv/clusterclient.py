"""What tests do with a running test cluster, and how its health is read: the REST client (admin),
kubectl and helm with the cluster's kubeconfig, pods' logs and Events, and what the nodes' conditions
and the disk say. It starts nothing; `faceblur_testenv.launcher` starts the cluster and connects it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3

from faceblur_testenv.controlplane import ControlPlaneLayout
from faceblur_testenv.kubeapi import ApiError, Credentials, KubeApi

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

MIN_FREE_BYTES = 1 << 30  # below this under the work folder, pods and uploads start failing


class ClusterError(RuntimeError):
    """The control plane did not start, or a command against it failed."""


class CommandFailed(subprocess.CalledProcessError):
    """kubectl or helm exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited {self.returncode}: {(self.stderr or '').strip()}"


class ClusterClient:
    """The cluster of layout as its admin sees it; usable once the launcher has called `connect()`."""

    def __init__(self, layout: ControlPlaneLayout) -> None:
        self.layout = layout
        self.kubeconfig = layout.kubeconfig()
        self.bin_dir: Path | None = None  # kubectl and helm; set when the binaries are located
        self._api: KubeApi | None = None

    def connect(self) -> None:
        """Make the REST client from the admin kubeconfig (written by the launcher)."""
        self._api = KubeApi(Credentials.from_kubeconfig(self.kubeconfig))

    @property
    def api(self) -> KubeApi:
        """The small REST client (admin); `api_client()` gives the official Python client."""
        if self._api is None:
            raise ClusterError("cluster not started")
        return self._api

    def api_client(self) -> ApiClient:
        from kubernetes import config

        new_client = config.new_client_from_config
        client: ApiClient = new_client(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        return client

    def env(self) -> dict[str, str]:
        """Variables for a subprocess using this cluster (KUBECONFIG, PATH with kubectl and helm)."""
        path = os.environ.get("PATH", "")
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{path}" if self.bin_dir else path,
            "HELM_CACHE_HOME": str(self.layout.helm_home("cache")),
            "HELM_CONFIG_HOME": str(self.layout.helm_home("config")),
            "HELM_DATA_HOME": str(self.layout.helm_home("data")),
        }

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._tool("kubectl", ["--kubeconfig", str(self.kubeconfig), *args], check, input, timeout)

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self._tool("helm", ["--kubeconfig", str(self.kubeconfig), *args], check, input, timeout)

    def pod_log(self, namespace: str, name: str, container: str | None = None, previous: bool = False) -> str:
        """`kubectl logs` of a pod (API server -> kubelet -> containerd's log file), stdout and stderr."""
        args = ["logs", "-n", namespace, name, *(["-c", container] if container else [])]
        return self.kubectl(*args, *(["--previous"] if previous else [])).stdout

    def events(self, namespace: str, fields: dict[str, str]) -> list[dict[str, Any]]:
        """The namespace's Events matching field selectors, e.g. {"involvedObject.name": n, "reason": r}."""
        selector = ",".join(f"{key}={value}" for key, value in fields.items())
        items: list[dict[str, Any]] = self.api.get(
            f"/api/v1/namespaces/{namespace}/events", {"fieldSelector": selector}
        ).get("items", [])
        return items

    def pods_created(self, namespace: str, job: str) -> int:
        """How many pods the job controller has created for a Job: its SuccessfulCreate Events, which
        outlive the Job and its pods (an hour, the API server's default event TTL)."""
        fields = {"involvedObject.kind": "Job", "involvedObject.name": job, "reason": "SuccessfulCreate"}
        return sum(int(event.get("count") or 1) for event in self.events(namespace, fields))

    def node_names(self) -> list[str]:
        return sorted(n["metadata"]["name"] for n in self.api.get("/api/v1/nodes").get("items", []))

    def node_problems(self) -> list[str]:
        """The nodes' conditions that stop pods, or that the API server does not answer."""
        try:
            nodes = self.api.get("/api/v1/nodes").get("items", [])
        except (ApiError, urllib3.exceptions.HTTPError) as exc:
            return [f"the API server does not answer: {exc}"]
        return [problem for node in nodes for problem in node_condition_problems(node)]

    def _tool(
        self, name: str, args: list[str], check: bool, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        if self.bin_dir is None:
            raise ClusterError("cluster not started")
        argv = [str(self.bin_dir / name), *args]
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env()},
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(done.returncode, argv, done.stdout, done.stderr)
        return done


def disk_problems(folder: Path) -> list[str]:
    """A nearly full disk under folder (pods and uploads start failing), else nothing."""
    free = shutil.disk_usage(folder).free
    return [f"only {free >> 20} MiB free on the disk of {folder}"] if free < MIN_FREE_BYTES else []


def has_not_ready_taint(node: dict[str, Any]) -> bool:
    """True while the node lifecycle controller has not yet lifted the taints of a new node."""
    taints: Sequence[dict[str, Any]] = node.get("spec", {}).get("taints", [])
    return any(t.get("key", "").startswith("node.kubernetes.io/") for t in taints)


def _stops_pods(condition: dict[str, Any]) -> bool:
    """Ready not True, or any other condition (DiskPressure, ...) True."""
    return bool((condition["type"] == "Ready") != (condition["status"] == "True"))


def node_schedulable(node: dict[str, Any]) -> bool:
    """Its Ready condition is True and the lifecycle controller has lifted the not-ready taints."""
    conditions: Sequence[dict[str, Any]] = node.get("status", {}).get("conditions", [])
    ready = [c for c in conditions if c["type"] == "Ready"]
    return bool(ready) and not any(map(_stops_pods, ready)) and not has_not_ready_taint(node)


def node_condition_problems(node: dict[str, Any]) -> list[str]:
    """The node's conditions that stop pods: Ready not True, or any other (DiskPressure, ...) True."""
    name = node.get("metadata", {}).get("name", "?")
    return [
        f"node {name}: {c['type']}={c['status']} ({c.get('reason', '')}: {c.get('message', '')})"
        for c in node.get("status", {}).get("conditions", [])
        if _stops_pods(c)
    ]
