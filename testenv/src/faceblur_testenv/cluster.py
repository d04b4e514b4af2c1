"""A real Kubernetes cluster for tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and one real node (containerd, kubelet, kube-proxy, the device plugin; see faceblur_testenv.kubenode).
`real_node=False` gives the control plane alone (no node: pods stay Pending), which needs no root.

Everything lives in one work folder (certificates, etcd data, kubeconfigs, one log per component, the
node's state), listens on free ports on the host's address on the pod bridge (so pods reach the API
server; 127.0.0.1 without a node), and is stopped process group by process group.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import urllib3

from faceblur_testenv import pki
from faceblur_testenv.binaries import ensure_binaries
from faceblur_testenv.kubeapi import ApiError, Credentials, KubeApi
from faceblur_testenv.kubeconfig import kubeconfig_document, write_kubeconfig
from faceblur_testenv.kubenode import clusterdns
from faceblur_testenv.kubenode.clusterdns import ClusterDns, DnsSettings, ensure_coredns
from faceblur_testenv.kubenode.node import KubeNode, NodeError
from faceblur_testenv.processes import ManagedProcess, free_ports

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_ATTEMPTS = 3  # ports are chosen free, but another process may take one before we bind it
START_TIMEOUT_S = float(os.environ.get("FACEBLUR_TESTENV_START_TIMEOUT", "120"))
API_SERVER_SANS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]

IDENTITIES = {
    "admin": pki.ClientIdentity("faceblur-admin", ("system:masters",)),
    "controller-manager": pki.ClientIdentity("system:kube-controller-manager"),
    "scheduler": pki.ClientIdentity("system:kube-scheduler"),
}
REAL_NODE_NAME = "faceblur-node-0"
MIN_FREE_BYTES = 1 << 30  # below this under the work folder, pods and uploads start failing
# Only with a real node: the kubelet (Node authorizer), kube-proxy (bootstrap role system:node-proxier)
# and the API server's own client for kubelet logs/exec (an administrator, as kubeadm's used to be).
NODE_IDENTITIES = {
    "kubelet": pki.ClientIdentity(f"system:node:{REAL_NODE_NAME}", ("system:nodes",)),
    "kube-proxy": pki.ClientIdentity("system:kube-proxy"),
    "apiserver-kubelet-client": pki.ClientIdentity("kube-apiserver-kubelet-client", ("system:masters",)),
    "coredns": pki.ClientIdentity(clusterdns.USER),  # the cluster DNS, under kubeadm's system:coredns
}


class ClusterError(RuntimeError):
    """The control plane did not start, or a command against it failed."""


class CommandFailed(subprocess.CalledProcessError):
    """kubectl or helm exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited {self.returncode}: {(self.stderr or '').strip()}"


class TestCluster:
    """Start, use and stop one throw-away cluster; see the module docstring."""

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
        self._binaries = binaries
        self._with_real_node = real_node
        self._node_gpus = node_gpus
        self._node_images = tuple(node_images)
        self.node: KubeNode | None = None
        self._coredns: Path | None = None
        self.bind_ip = "127.0.0.1"
        self._components: list[ManagedProcess] = []
        self._api: KubeApi | None = None
        self.bin_dir: Path | None = None
        self.server = ""
        self.startup_seconds: float | None = None
        self.kubeconfig = self.workdir / "kubeconfig"

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self.bin_dir = self._binaries or ensure_binaries()
        self._coredns = ensure_coredns() if self._with_real_node else None
        built = time.monotonic()
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                if self._with_real_node:
                    self.node = KubeNode(
                        self.workdir / "node",
                        self.bin_dir,
                        REAL_NODE_NAME,
                        self._node_gpus,
                        self._node_images,
                    )
                    self.bind_ip = self.node.prepare().host_ip  # the bridge exists before the API server
                self._start_control_plane(self.bin_dir)
                self._wait_control_plane()
                if self.node is not None:
                    self._start_real_node(self.node)
                break
            except ClusterError as exc:
                self.stop()
                if attempt == START_ATTEMPTS or "address already in use" not in str(exc):
                    raise
                log.warning("a port chosen free was taken meanwhile; starting again (%s)", exc)
                shutil.rmtree(self.workdir / "etcd", ignore_errors=True)
            except BaseException:
                self.stop()
                raise
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
        if self.node is not None:
            self.node.stop()  # while the API server lives, so kube-proxy's cleanup needs nothing from it
            self.node = None
        for component in reversed(self._components):
            component.stop()
        self._components.clear()

    def __enter__(self) -> TestCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests use --------------------------------------------------------------------------

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
            "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
            "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
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

    def health_problems(self) -> list[str]:
        """What keeps this cluster from running pods now (empty when nothing does): an exited component,
        a node not Ready or under pressure, a nearly full disk. Asked after a failure, to tell a broken
        cluster (every later test would wait out its timeouts) from a failing test."""
        found = [
            f"{c.name} exited with code {c.exit_code()}; log {c.log_path}:\n{c.log_tail()}"
            for c in self._components
            if not c.running()
        ]
        if self.node is not None:
            try:
                self.node.check_alive()
            except NodeError as exc:
                found.append(str(exc))
        free = shutil.disk_usage(self.workdir).free
        if free < MIN_FREE_BYTES:
            found.append(f"only {free >> 20} MiB free on the disk of {self.workdir}")
        try:
            nodes = self.api.get("/api/v1/nodes").get("items", [])
        except (ApiError, urllib3.exceptions.HTTPError) as exc:
            return [*found, f"the API server does not answer: {exc}"]
        return found + [problem for node in nodes for problem in node_condition_problems(node)]

    def component_log(self, name: str) -> Path:
        """Log of a component: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and with
        the real node containerd, kubelet, kube-proxy."""
        if self.node is not None and name in self.node.component_logs():
            return self.node.component_logs()[name]
        return self.workdir / "logs" / f"{name}.log"

    # ---- internals -------------------------------------------------------------------------------

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

    def _start_control_plane(self, bins: Path) -> None:
        pki_dir = self.workdir / "pki"
        names = ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler")
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.server = f"https://{self.bind_ip}:{ports['apiserver']}"

        ca = pki.CertificateAuthority()
        ca_crt, ca_key = ca.pair.write(pki_dir, "ca")
        serving_crt, serving_key = ca.serving(
            "kube-apiserver", API_SERVER_SANS, sorted({"127.0.0.1", "10.0.0.1", self.bind_ip})
        ).write(pki_dir, "apiserver")
        sa_pub, sa_key = pki.service_account_signing_key().write(pki_dir, "service-account")
        # The front-proxy pair lets the API server authenticate to aggregated API servers (and silences
        # the controllers' "missing requestheader CA" complaints).
        front_proxy_ca = pki.CertificateAuthority("faceblur-testenv-front-proxy-ca")
        proxy_ca_crt, _ = front_proxy_ca.pair.write(pki_dir, "front-proxy-ca")
        proxy_crt, proxy_key = front_proxy_ca.client(pki.ClientIdentity("front-proxy-client")).write(
            pki_dir, "front-proxy-client"
        )
        kubeconfigs: dict[str, Path] = {}
        identities = {**IDENTITIES, **(NODE_IDENTITIES if self.node else {})}
        for role, identity in identities.items():
            crt, key = ca.client(identity).write(pki_dir, role)
            path = self.kubeconfig if role == "admin" else self.workdir / "kubeconfigs" / f"{role}.kubeconfig"
            kubeconfigs[role] = write_kubeconfig(
                path, kubeconfig_document(self.server, ca_crt, crt, key, identity.user)
            )
        self._api = KubeApi(Credentials.from_kubeconfig(self.kubeconfig))

        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        kcm, sched = kubeconfigs["controller-manager"], kubeconfigs["scheduler"]
        commands: dict[str, list[str]] = {
            "etcd": [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            "kube-apiserver": [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.bind_ip}",
                f"--advertise-address={self.bind_ip}",
                f"--secure-port={ports['apiserver']}",
                f"--cert-dir={pki_dir}",
                f"--tls-cert-file={serving_crt}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={ca_crt}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--allow-privileged=true",
                f"--requestheader-client-ca-file={proxy_ca_crt}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={proxy_crt}",
                f"--proxy-client-key-file={proxy_key}",
                *self._node_api_server_flags(pki_dir),
                "--profiling=false",
                "--v=1",
            ],
            "kube-controller-manager": [
                f"--kubeconfig={kcm}",
                f"--authentication-kubeconfig={kcm}",
                f"--authorization-kubeconfig={kcm}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['kcm']}",
                "--leader-elect=false",
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={ca_crt}",
                f"--cluster-signing-cert-file={ca_crt}",
                f"--cluster-signing-key-file={ca_key}",
                "--cluster-name=faceblur-test",
                "--node-monitor-period=2s",
                # Each controller fetches its own token at start-up; the default 20 QPS makes that seconds.
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--profiling=false",
                "--v=1",
            ],
            "kube-scheduler": [
                f"--kubeconfig={sched}",
                f"--authentication-kubeconfig={sched}",
                f"--authorization-kubeconfig={sched}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        }
        self._health_ports = {"kube-controller-manager": ports["kcm"], "kube-scheduler": ports["scheduler"]}
        # etcd and the API server together (the API server retries etcd); the others read RBAC-protected
        # objects as they start, so they wait until the API server is ready (RBAC bootstrapped).
        for name in ("etcd", "kube-apiserver"):
            self._launch(name, [str(bins / name), *commands.pop(name)], self._component_env(name))
        self._wait("kube-apiserver /readyz", lambda: self.api.probe("/readyz")[0] == 200)
        for name, args in commands.items():
            self._launch(name, [str(bins / name), *args])

    def _node_api_server_flags(self, pki_dir: Path) -> list[str]:
        if self.node is None:
            # The "kubernetes" Service cannot point at a loopback address; without a node nothing needs it.
            return ["--endpoint-reconciler-type=none"]
        # The Service gets the bridge address as its endpoint (the default lease reconciler); logs and
        # exec reach the kubelet at the node's InternalIP, the bridge address too.
        return [
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki_dir / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki_dir / 'apiserver-kubelet-client.key'}",
        ]

    def _start_real_node(self, node: KubeNode) -> None:
        kubeconfigs = self.workdir / "kubeconfigs"
        dns = self._start_cluster_dns(node.host_ip, kubeconfigs / "coredns.kubeconfig")
        node.start(
            self.workdir / "pki" / "ca.crt",
            kubeconfigs / "kubelet.kubeconfig",
            kubeconfigs / "kube-proxy.kubeconfig",
            cluster_dns=(clusterdns.SERVICE_IP,),
        )
        started = time.monotonic()
        self._wait("the real node Ready and schedulable", lambda: self._nodes_ready({node.name}))
        node.timings["kubelet to Ready"] = time.monotonic() - started
        if node.gpus:
            self._wait(f"{node.gpus} nvidia.com/gpu allocatable", lambda: self._node_gpus_allocatable(node))
        self._wait(
            "kube-proxy's rules for the kubernetes Service", _service_routed("default/kubernetes:https")
        )
        node.timings["kube-proxy rules"] = time.monotonic() - started
        self._wait("CoreDNS synced with the API server", dns.ready)
        self._wait("kube-proxy's rules for kube-dns", _service_routed(*clusterdns.SERVICE_PORTS))
        node.timings["cluster DNS"] = time.monotonic() - started

    def _start_cluster_dns(self, host_ip: str, kubeconfig: Path) -> ClusterDns:
        """CoreDNS on the host behind kube-system/kube-dns (see faceblur_testenv.kubenode.clusterdns)."""
        port, ready_port, health_port = free_ports(3)
        settings = DnsSettings(host_ip, port, ready_port, health_port, kubeconfig)
        dns = ClusterDns(
            self.workdir / "coredns" / "Corefile", self.component_log("coredns"), settings, self._coredns
        )
        dns.install(self.api)
        dns.start()
        self._components.append(dns)
        return dns

    def _node_gpus_allocatable(self, node: KubeNode) -> bool:
        status = self.api.get(f"/api/v1/nodes/{node.name}").get("status", {})
        return bool(status.get("allocatable", {}).get("nvidia.com/gpu") == str(node.gpus))

    def _component_env(self, name: str) -> dict[str, str] | None:
        if name == "kube-apiserver" and self.node is not None:
            # busybox's wget (pods' TLS client in the node tests) sends no signature_algorithms, which
            # in TLS 1.2 means SHA-1 signatures; Go 1.25+ refuses those unless told otherwise.
            return {**os.environ, "GODEBUG": "tlssha1=1"}
        return None

    def _launch(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        component = ManagedProcess(name, argv, self.component_log(name), env)
        component.start()
        self._components.append(component)

    def _wait_control_plane(self) -> None:
        insecure = urllib3.PoolManager(cert_reqs="CERT_NONE")
        for name, port in self._health_ports.items():
            self._wait(f"{name} /healthz", functools.partial(_healthy, insecure, port))
        self._wait("the default service account (controller manager at work)", self._default_sa_exists)

    def _default_sa_exists(self) -> bool:
        try:
            self.api.get("/api/v1/namespaces/default/serviceaccounts/default")
        except ApiError:
            return False
        return True

    def _nodes_ready(self, wanted: set[str]) -> bool:
        items = self.api.get("/api/v1/nodes").get("items", [])
        ready = {
            n["metadata"]["name"]
            for n in items
            if not has_not_ready_taint(n)
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }
        return wanted <= ready

    def _wait(self, what: str, done: Callable[[], bool], timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for component in self._components:
                if not component.running():
                    raise ClusterError(
                        f"{component.name} exited with code {component.exit_code()} while waiting for "
                        f"{what}; log {component.log_path}:\n{component.log_tail()}"
                    )
            if self.node is not None:
                self.node.check_alive()
            try:
                if done():
                    log.debug("ready: %s", what)
                    return
            except (ApiError, urllib3.exceptions.HTTPError) as exc:
                log.debug("not yet %s: %s", what, exc)
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"timed out after {timeout_s:.0f}s waiting for {what}; logs in {self.workdir}/logs"
                )
            time.sleep(0.2)


def _healthy(http: urllib3.PoolManager, port: int) -> bool:
    """GET /healthz of a component serving a self-signed certificate on loopback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        try:
            return (
                http.request("GET", f"https://127.0.0.1:{port}/healthz", timeout=2.0, retries=False).status
                == 200
            )
        except urllib3.exceptions.HTTPError:
            return False


def has_not_ready_taint(node: dict[str, Any]) -> bool:
    """True while the node lifecycle controller has not yet lifted the taints of a new node."""
    taints: Sequence[dict[str, Any]] = node.get("spec", {}).get("taints", [])
    return any(t.get("key", "").startswith("node.kubernetes.io/") for t in taints)


def node_condition_problems(node: dict[str, Any]) -> list[str]:
    """The node's conditions that stop pods: Ready not True, or any other (DiskPressure, ...) True."""
    name = node.get("metadata", {}).get("name", "?")
    return [
        f"node {name}: {c['type']}={c['status']} ({c.get('reason', '')}: {c.get('message', '')})"
        for c in node.get("status", {}).get("conditions", [])
        if (c["type"] == "Ready") != (c["status"] == "True")
    ]


def _service_routed(*ports: str) -> Callable[[], bool]:
    """Whether kube-proxy has written the NAT rules of each Service port ("namespace/name:port"), e.g.
    default/kubernetes:https (pods can use in-cluster config)."""

    def routed() -> bool:
        done = subprocess.run(
            ["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"],
            capture_output=True,
            text=True,
            check=False,
        )
        return all(f"{port} cluster IP" in done.stdout for port in ports)

    return routed
