"""Starting, waiting on and stopping the test cluster's processes: the control plane laid out by
`faceblur_testenv.controlplane` (certificates and kubeconfigs written, components launched in order),
then the real node and the cluster DNS, each step waited for while watching every process started.

Ports are chosen free, but another process may take one before it is bound: a start that fails with
"address already in use" stops everything and starts again with new ports (START_ATTEMPTS in all).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import urllib3

from faceblur_testenv import pki
from faceblur_testenv.binaries import ensure_binaries
from faceblur_testenv.clusterclient import ClusterClient, ClusterError, node_schedulable
from faceblur_testenv.controlplane import (
    API_SERVER_SANS,
    CA,
    FIRST_COMPONENTS,
    FRONT_PROXY_CA,
    FRONT_PROXY_CLIENT,
    LATER_COMPONENTS,
    PORT_COUNT,
    REAL_NODE_NAME,
    SERVICE_ACCOUNT,
    SERVING,
    ControlPlaneLayout,
    ControlPlaneSettings,
    component_environment,
    component_flags,
    kubeconfig_for,
)
from faceblur_testenv.deviceplugin import RESOURCE, SHARED_RESOURCE
from faceblur_testenv.kubeapi import ApiError
from faceblur_testenv.kubeconfig import write_kubeconfig
from faceblur_testenv.kubenode import clusterdns
from faceblur_testenv.kubenode.clusterdns import ClusterDns, DnsSettings, ensure_coredns
from faceblur_testenv.kubenode.node import KubeNode, NodeError
from faceblur_testenv.processes import ManagedProcess, free_ports

log = logging.getLogger(__name__)

START_ATTEMPTS = 3  # ports are chosen free, but another process may take one before we bind it
START_TIMEOUT_S = float(os.environ.get("FACEBLUR_TESTENV_START_TIMEOUT", "120"))


class ClusterLauncher:
    """Starts and stops one cluster's processes; connects client once the admin kubeconfig exists."""

    def __init__(
        self,
        layout: ControlPlaneLayout,
        client: ClusterClient,
        binaries: Path | None = None,
        real_node: bool = True,
        node_gpus: int = 1,
        node_images: Sequence[Path] = (),
    ) -> None:
        self.layout = layout
        self.client = client
        self._binaries = binaries
        self._with_real_node = real_node
        self._node_gpus = node_gpus
        self._node_images = tuple(node_images)
        self.node: KubeNode | None = None
        self.bind_ip = "127.0.0.1"
        self.settings: ControlPlaneSettings | None = None  # the last start's addresses and ports
        self._coredns: Path | None = None
        self._components: list[ManagedProcess] = []

    @property
    def server(self) -> str:
        return self.settings.server if self.settings is not None else ""

    def locate_binaries(self) -> Path:
        """The Kubernetes binaries (and CoreDNS with a real node), built if missing; gives the client
        its kubectl and helm."""
        bin_dir = self._binaries or ensure_binaries()
        self._coredns = ensure_coredns() if self._with_real_node else None
        self.client.bin_dir = bin_dir
        return bin_dir

    def start(self) -> None:
        """The control plane, then the real node; returns once everything is up. locate_binaries() first."""
        bin_dir = self.client.bin_dir
        if bin_dir is None:
            raise ClusterError("locate_binaries() first")
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                if self._with_real_node:
                    self.node = KubeNode(
                        self.layout.node_root,
                        bin_dir,
                        REAL_NODE_NAME,
                        self._node_gpus,
                        self._node_images,
                    )
                    self.bind_ip = self.node.prepare().host_ip  # the bridge exists before the API server
                self._start_control_plane(bin_dir)
                self._wait_control_plane()
                if self.node is not None:
                    self._start_real_node(self.node)
                break
            except ClusterError as exc:
                self.stop()
                if attempt == START_ATTEMPTS or "address already in use" not in str(exc):
                    raise
                log.warning("a port chosen free was taken meanwhile; starting again (%s)", exc)
                shutil.rmtree(self.layout.etcd_data, ignore_errors=True)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop what this launcher started, newest first (node, scheduler, ..., etcd)."""
        if self.node is not None:
            self.node.stop()  # while the API server lives, so kube-proxy's cleanup needs nothing from it
            self.node = None
        for component in reversed(self._components):
            component.stop()
        self._components.clear()

    def exit_reports(self) -> list[str]:
        """What exited of what was started: every control-plane process, the node's first."""
        found = [c.exit_report() for c in self._components if not c.running()]
        if self.node is not None:
            try:
                self.node.check_alive()
            except NodeError as exc:
                found.append(str(exc))
        return found

    # ---- internals -------------------------------------------------------------------------------

    def _start_control_plane(self, bins: Path) -> None:
        etcd, etcd_peer, apiserver, controller_manager, scheduler = free_ports(PORT_COUNT)
        settings = ControlPlaneSettings(
            self.bind_ip, etcd, etcd_peer, apiserver, controller_manager, scheduler, self.node is not None
        )
        self.settings = settings
        write_credentials(self.layout, settings)
        self.client.connect()
        flags = component_flags(self.layout, settings)
        for name in FIRST_COMPONENTS:
            self._launch(name, [str(bins / name), *flags[name]], component_environment(name, settings))
        self._wait("kube-apiserver /readyz", lambda: self.client.api.probe("/readyz")[0] == 200)
        for name in LATER_COMPONENTS:
            self._launch(name, [str(bins / name), *flags[name]])

    def _start_real_node(self, node: KubeNode) -> None:
        dns = self._start_cluster_dns(node.host_ip, self.layout.kubeconfig("coredns"))
        node.start(
            self.layout.cert(CA),
            self.layout.kubeconfig("kubelet"),
            self.layout.kubeconfig("kube-proxy"),
            cluster_dns=(clusterdns.SERVICE_IP,),
        )
        started = time.monotonic()
        self._wait("the real node Ready and schedulable", lambda: self._nodes_ready({node.name}))
        node.timings["kubelet to Ready"] = time.monotonic() - started
        if node.gpus:
            self._wait(
                f"{node.gpus} {RESOURCE} and {SHARED_RESOURCE} allocatable",
                lambda: self._node_gpus_allocatable(node),
            )
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
        dns = ClusterDns(self.layout.corefile, self.layout.log("coredns"), settings, self._coredns)
        dns.install(self.client.api)
        dns.start()
        self._components.append(dns)
        return dns

    def _node_gpus_allocatable(self, node: KubeNode) -> bool:
        status = self.client.api.get(f"/api/v1/nodes/{node.name}").get("status", {})
        allocatable = status.get("allocatable", {})
        return all(allocatable.get(resource) == str(node.gpus) for resource in (RESOURCE, SHARED_RESOURCE))

    def _launch(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **extra_env} if extra_env else None
        component = ManagedProcess(name, argv, self.layout.log(name), env)
        component.start()
        self._components.append(component)

    def _wait_control_plane(self) -> None:
        if self.settings is None:
            raise ClusterError("control plane not started")
        insecure = urllib3.PoolManager(cert_reqs="CERT_NONE")
        for name, port in self.settings.health_ports.items():
            self._wait(f"{name} /healthz", functools.partial(_healthy, insecure, port))
        self._wait("the default service account (controller manager at work)", self._default_sa_exists)

    def _default_sa_exists(self) -> bool:
        try:
            self.client.api.get("/api/v1/namespaces/default/serviceaccounts/default")
        except ApiError:
            return False
        return True

    def _nodes_ready(self, wanted: set[str]) -> bool:
        items = self.client.api.get("/api/v1/nodes").get("items", [])
        return wanted <= {n["metadata"]["name"] for n in items if node_schedulable(n)}

    def _wait(self, what: str, done: Callable[[], bool], timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for component in self._components:
                if not component.running():
                    raise ClusterError(component.exit_report(waiting_for=what))
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
                    f"timed out after {timeout_s:.0f}s waiting for {what}; logs in {self.layout.logs}"
                )
            time.sleep(0.2)


def write_credentials(layout: ControlPlaneLayout, settings: ControlPlaneSettings) -> None:
    """Fresh certificates and keys, and a kubeconfig per identity, where the layout says."""
    folder = layout.pki
    ca = pki.CertificateAuthority()
    ca.pair.write(folder, CA)
    ca.serving("kube-apiserver", API_SERVER_SANS, settings.serving_ips).write(folder, SERVING)
    pki.service_account_signing_key().write(folder, SERVICE_ACCOUNT)
    # The front-proxy pair lets the API server authenticate to aggregated API servers (and silences
    # the controllers' "missing requestheader CA" complaints).
    front_proxy_ca = pki.CertificateAuthority("faceblur-testenv-front-proxy-ca")
    front_proxy_ca.pair.write(folder, FRONT_PROXY_CA)
    front_proxy_ca.client(pki.ClientIdentity(FRONT_PROXY_CLIENT)).write(folder, FRONT_PROXY_CLIENT)
    for role, identity in settings.identities.items():
        ca.client(identity).write(folder, role)
        write_kubeconfig(layout.kubeconfig(role), kubeconfig_for(layout, settings, role))


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
