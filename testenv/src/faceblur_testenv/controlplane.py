"""The control plane's layout, as pure functions of its work folder, address and ports: where each file
lives (certificates, kubeconfigs, etcd's data, logs), who each client certificate says it is, and the
flags of etcd, kube-apiserver, kube-controller-manager and kube-scheduler. Nothing here writes a file
or starts a process; `faceblur_testenv.launcher` does, as `kubenode.node` does with `kubenode.configs`.

Certificates: one CA signs the API server's serving certificate and one client certificate per identity
(`<pki>/<role>.crt`, `.key`), whose kubeconfig is `<workdir>/kubeconfig` for the admin and
`<workdir>/kubeconfigs/<role>.kubeconfig` for the others; a separate key signs service-account tokens,
and a front-proxy CA signs the API server's client certificate towards aggregated API servers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceblur_testenv import pki
from faceblur_testenv.kubeconfig import kubeconfig_document
from faceblur_testenv.kubenode import clusterdns

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
API_SERVER_SANS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]
ADMIN = "admin"
IDENTITIES = {
    ADMIN: pki.ClientIdentity("faceblur-admin", ("system:masters",)),
    "controller-manager": pki.ClientIdentity("system:kube-controller-manager"),
    "scheduler": pki.ClientIdentity("system:kube-scheduler"),
}
REAL_NODE_NAME = "faceblur-node-0"
# Only with a real node: the kubelet (Node authorizer), kube-proxy (bootstrap role system:node-proxier)
# and the API server's own client for kubelet logs/exec (an administrator, as kubeadm's used to be).
NODE_IDENTITIES = {
    "kubelet": pki.ClientIdentity(f"system:node:{REAL_NODE_NAME}", ("system:nodes",)),
    "kube-proxy": pki.ClientIdentity("system:kube-proxy"),
    "apiserver-kubelet-client": pki.ClientIdentity("kube-apiserver-kubelet-client", ("system:masters",)),
    "coredns": pki.ClientIdentity(clusterdns.USER),  # the cluster DNS, under kubeadm's system:coredns
}
# Key pairs besides the identities' (their stems under pki/).
CA = "ca"
SERVING = "apiserver"
SERVICE_ACCOUNT = "service-account"
FRONT_PROXY_CA = "front-proxy-ca"
FRONT_PROXY_CLIENT = "front-proxy-client"
# etcd and the API server start together (the API server retries etcd); the others read RBAC-protected
# objects as they start, so they wait until the API server is ready (RBAC bootstrapped).
FIRST_COMPONENTS = ("etcd", "kube-apiserver")
LATER_COMPONENTS = ("kube-controller-manager", "kube-scheduler")
PORT_COUNT = 5  # ControlPlaneSettings' ports


@dataclass(frozen=True)
class ControlPlaneLayout:
    """Where the control plane keeps its state: everything under workdir."""

    workdir: Path

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    def cert(self, stem: str) -> Path:
        return self.pki / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.pki / f"{stem}.key"

    def kubeconfig(self, role: str = ADMIN) -> Path:
        """The admin's is `<workdir>/kubeconfig`, the one tests and users are given."""
        if role == ADMIN:
            return self.workdir / "kubeconfig"
        return self.workdir / "kubeconfigs" / f"{role}.kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.workdir / "etcd"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def corefile(self) -> Path:
        return self.workdir / "coredns" / "Corefile"

    @property
    def node_root(self) -> Path:
        return self.workdir / "node"

    def helm_home(self, kind: str) -> Path:
        """kind: cache, config or data (HELM_CACHE_HOME, ...)."""
        return self.workdir / "helm" / kind


@dataclass(frozen=True)
class ControlPlaneSettings:
    """What the flags depend on besides the layout: the API server's address, the ports chosen free, and
    whether a real node joins (its identities, the API server's kubelet client, the Service endpoint)."""

    bind_ip: str
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    controller_manager_port: int
    scheduler_port: int
    real_node: bool

    @property
    def server(self) -> str:
        return f"https://{self.bind_ip}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_peer_port}"

    @property
    def identities(self) -> dict[str, pki.ClientIdentity]:
        """Who gets a client certificate and a kubeconfig, by role."""
        return {**IDENTITIES, **(NODE_IDENTITIES if self.real_node else {})}

    @property
    def health_ports(self) -> dict[str, int]:
        """The components besides the API server that serve /healthz (on 127.0.0.1, self-signed)."""
        return {
            "kube-controller-manager": self.controller_manager_port,
            "kube-scheduler": self.scheduler_port,
        }

    @property
    def serving_ips(self) -> list[str]:
        """The API server certificate's IP addresses: loopback, the kubernetes Service's, the bound one."""
        return sorted({"127.0.0.1", "10.0.0.1", self.bind_ip})


def kubeconfig_for(layout: ControlPlaneLayout, s: ControlPlaneSettings, role: str) -> dict[str, Any]:
    """The kubeconfig of role: the layout's CA, the server, the role's client certificate."""
    return kubeconfig_document(
        s.server, layout.cert(CA), layout.cert(role), layout.key(role), s.identities[role].user
    )


def etcd_flags(layout: ControlPlaneLayout, s: ControlPlaneSettings) -> list[str]:
    return [
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={s.etcd_url}",
        f"--advertise-client-urls={s.etcd_url}",
        f"--listen-peer-urls={s.etcd_peer_url}",
        f"--initial-advertise-peer-urls={s.etcd_peer_url}",
        f"--initial-cluster=default={s.etcd_peer_url}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_flags(layout: ControlPlaneLayout, s: ControlPlaneSettings) -> list[str]:
    return [
        f"--etcd-servers={s.etcd_url}",
        f"--bind-address={s.bind_ip}",
        f"--advertise-address={s.bind_ip}",
        f"--secure-port={s.apiserver_port}",
        f"--cert-dir={layout.pki}",
        f"--tls-cert-file={layout.cert(SERVING)}",
        f"--tls-private-key-file={layout.key(SERVING)}",
        f"--client-ca-file={layout.cert(CA)}",
        "--authorization-mode=Node,RBAC",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        # The discovery document's key URL at an address outside pods reach too: an S3 server's STS that
        # trusts this issuer (tests of workload identity) fetches the keys from there.
        f"--service-account-jwks-uri={s.server}/openid/v1/jwks",
        f"--service-account-key-file={layout.cert(SERVICE_ACCOUNT)}",
        f"--service-account-signing-key-file={layout.key(SERVICE_ACCOUNT)}",
        "--allow-privileged=true",
        f"--requestheader-client-ca-file={layout.cert(FRONT_PROXY_CA)}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={layout.cert(FRONT_PROXY_CLIENT)}",
        f"--proxy-client-key-file={layout.key(FRONT_PROXY_CLIENT)}",
        *_node_apiserver_flags(layout, s),
        "--profiling=false",
        "--v=1",
    ]


def _node_apiserver_flags(layout: ControlPlaneLayout, s: ControlPlaneSettings) -> list[str]:
    if not s.real_node:
        # The "kubernetes" Service cannot point at a loopback address; without a node nothing needs it.
        return ["--endpoint-reconciler-type=none"]
    # The Service gets the bridge address as its endpoint (the default lease reconciler); logs and
    # exec reach the kubelet at the node's InternalIP, the bridge address too.
    return [
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={layout.cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={layout.key('apiserver-kubelet-client')}",
    ]


def controller_manager_flags(layout: ControlPlaneLayout, s: ControlPlaneSettings) -> list[str]:
    kubeconfig = layout.kubeconfig("controller-manager")
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={s.controller_manager_port}",
        "--leader-elect=false",
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={layout.key(SERVICE_ACCOUNT)}",
        f"--root-ca-file={layout.cert(CA)}",
        f"--cluster-signing-cert-file={layout.cert(CA)}",
        f"--cluster-signing-key-file={layout.key(CA)}",
        "--cluster-name=faceblur-test",
        "--node-monitor-period=2s",
        # Each controller fetches its own token at start-up; the default 20 QPS makes that seconds.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_flags(layout: ControlPlaneLayout, s: ControlPlaneSettings) -> list[str]:
    kubeconfig = layout.kubeconfig("scheduler")
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={s.scheduler_port}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def component_flags(layout: ControlPlaneLayout, s: ControlPlaneSettings) -> dict[str, list[str]]:
    """Every component's flags, by binary name, in start order (FIRST_COMPONENTS, then LATER_COMPONENTS)."""
    return {
        "etcd": etcd_flags(layout, s),
        "kube-apiserver": apiserver_flags(layout, s),
        "kube-controller-manager": controller_manager_flags(layout, s),
        "kube-scheduler": scheduler_flags(layout, s),
    }


def component_environment(name: str, s: ControlPlaneSettings) -> dict[str, str]:
    """Variables a component needs on top of the test process's own (none for most)."""
    if name == "kube-apiserver" and s.real_node:
        # busybox's wget (pods' TLS client in the node tests) sends no signature_algorithms, which
        # in TLS 1.2 means SHA-1 signatures; Go 1.25+ refuses those unless told otherwise.
        return {"GODEBUG": "tlssha1=1"}
    return {}
