"""Cluster DNS for the real node: CoreDNS (built by scripts/build-coredns.sh) on the host, serving the
cluster's names from the test API server behind the Service kube-system/kube-dns, as on kubeadm and kind.

CoreDNS runs as a host process (no image to build), bound to the bridge address at a free port. The
Service kube-dns has the conventional cluster IP 10.0.0.10 and no selector; an EndpointSlice of ours
points it at that address and port, so kube-proxy routes pods' queries there exactly as it routes
`kubernetes` to the API server, and the kubelet's `clusterDNS` names the Service IP. CoreDNS reads the
API server with a client certificate of its own, under kubeadm's ClusterRole `system:coredns`.

The Corefile serves `cluster.local` and the reverse zones only, and the build leaves out the `forward`
plugin: a name outside the cluster is refused (REFUSED), never looked up anywhere else.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceblur_testenv.buildscripts import last_line, run_build_script
from faceblur_testenv.kubeapi import ApiError, KubeApi
from faceblur_testenv.processes import ManagedProcess

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[4]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-coredns.sh"
SERVICE_IP = "10.0.0.10"  # kubeadm's and kind's choice: the tenth address of the service network
CLUSTER_DOMAIN = "cluster.local"
ZONES = (CLUSTER_DOMAIN, "in-addr.arpa", "ip6.arpa")
NAMESPACE = "kube-system"
SERVICE = "kube-dns"
USER = "faceblur-testenv-coredns"  # the CN of CoreDNS's client certificate
CLUSTER_ROLE = "system:coredns"
MANAGED_BY = "faceblur-testenv"
# The Service's ports as kube-proxy names them in its rules' comments.
SERVICE_PORTS = (f"{NAMESPACE}/{SERVICE}:dns", f"{NAMESPACE}/{SERVICE}:dns-tcp")

JSON = dict[str, Any]


class ClusterDnsError(RuntimeError):
    """CoreDNS could not be built or did not become ready."""


def ensure_coredns() -> Path:
    """The CoreDNS binary, built first when the cache lacks it (minutes cold, see testenv/README.md)."""
    log.info("locating CoreDNS with %s (a cold cache builds it: minutes)", BUILD_SCRIPT)
    binary = Path(last_line(run_build_script(BUILD_SCRIPT, ClusterDnsError)))
    if not binary.is_file():
        raise ClusterDnsError(f"{BUILD_SCRIPT} printed {binary}, which is not a file")
    return binary


@dataclass(frozen=True)
class DnsSettings:
    """Where CoreDNS listens and what it reads."""

    host_ip: str  # the bridge address: pods reach it, nothing outside this machine does
    port: int  # DNS over UDP and TCP
    ready_port: int  # /ready on 127.0.0.1: 200 once the kubernetes plugin has synced with the API
    health_port: int  # /health on 127.0.0.1
    kubeconfig: Path


def corefile(s: DnsSettings) -> str:
    """The Corefile: the cluster's zones from the API server, cached, and nothing forwarded anywhere."""
    keys = " ".join(f"{zone}:{s.port}" for zone in ZONES)
    return (
        f"{keys} {{\n"
        f"    bind {s.host_ip}\n"
        "    errors\n"
        "    log . {\n        class denial error\n    }\n"
        f"    health 127.0.0.1:{s.health_port}\n"
        f"    ready 127.0.0.1:{s.ready_port}\n"
        f"    kubernetes {' '.join(ZONES)} {{\n"
        f"        kubeconfig {s.kubeconfig}\n"
        "        pods insecure\n"
        "        ttl 30\n"
        "    }\n"
        "    cache 30\n"
        "    loadbalance\n"
        "}\n"
    )


def api_objects(host_ip: str, port: int) -> list[JSON]:
    """What the cluster needs for its DNS: CoreDNS's read access (kubeadm's rules), the Service kube-dns
    without a selector, and the EndpointSlice that points it at CoreDNS on the host."""
    labels = {"k8s-app": SERVICE, "kubernetes.io/name": "CoreDNS", "app.kubernetes.io/managed-by": MANAGED_BY}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "clusterIP": SERVICE_IP,
                "ports": [
                    {"name": name, "protocol": protocol, "port": 53, "targetPort": port}
                    for name, protocol in ports
                ],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{SERVICE}-host",
                "namespace": NAMESPACE,
                "labels": {
                    "kubernetes.io/service-name": SERVICE,
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
            "ports": [{"name": name, "protocol": protocol, "port": port} for name, protocol in ports],
        },
    ]


def _collection(obj: JSON) -> str:
    """The REST collection an object of api_objects is created in."""
    group_version, kind = obj["apiVersion"], obj["kind"]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = {"EndpointSlice": "endpointslices", "Service": "services"}.get(kind, f"{kind.lower()}s")
    namespace = obj["metadata"].get("namespace")
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


class ClusterDns(ManagedProcess):
    """CoreDNS for one cluster: `install(api)` creates its API objects, `start()` runs it, `wait_ready()`
    waits until its kubernetes plugin has synced, `stop()` (SIGTERM) ends it. It changes nothing on the
    host but its own listening sockets, so stopping it is all the cleaning there is."""

    def __init__(
        self, corefile_path: Path, log_path: Path, settings: DnsSettings, binary: Path | None = None
    ) -> None:
        self.settings = settings
        self.corefile_path = corefile_path
        argv = [str(binary if binary is not None else ensure_coredns()), "-conf", str(corefile_path)]
        super().__init__("coredns", argv, log_path)

    def install(self, api: KubeApi) -> None:
        """Create the RBAC, the Service kube-dns and its EndpointSlice (kept when they already exist)."""
        for obj in api_objects(self.settings.host_ip, self.settings.port):
            try:
                api.create(_collection(obj), obj)
            except ApiError as exc:
                if exc.status != 409:
                    raise

    def start(self) -> None:
        """Write the Corefile and start CoreDNS; wait_ready() returns once it answers from the API."""
        self.corefile_path.parent.mkdir(parents=True, exist_ok=True)
        self.corefile_path.write_text(corefile(self.settings))
        super().start()

    def ready(self) -> bool:
        """/ready answers 200: the kubernetes plugin has listed the API's Services and EndpointSlices."""
        url = f"http://127.0.0.1:{self.settings.ready_port}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if not self.running():
                raise ClusterDnsError(f"CoreDNS exited with code {self.exit_code()}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ClusterDnsError(f"CoreDNS not ready after {timeout_s:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)
