"""The node's configuration files, as pure functions of its folders, addresses and ports.

containerd: its own root, state and socket (never the system service's), CRI with runc and
`restrict_oom_score_adj` (a negative oom_score_adj is refused here), our pause image as the sandbox
image, network namespaces under its state folder. kubelet and kube-proxy: cgroupfs, no swap check, their
ports chosen free, every path under the work folder where the kubelet allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"


@dataclass(frozen=True)
class NodeLayout:
    """Where a node keeps its state: all under root, but for what holds unix sockets (containerd's, and
    the kubelet's root dir with its pod-resources and plugin sockets), which lives in a short run folder:
    a socket path has at most 104 bytes, and pytest's work folders are long."""

    root: Path
    run: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def kubelet_certs(self) -> Path:
        return self.root / "kubelet-pki"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def containerd_toml(layout: NodeLayout, sandbox_image: str) -> str:
    """containerd 1.6 config (version 2) for this node only."""
    sections: list[tuple[str, dict[str, object]]] = [
        (
            "",
            {"version": 2, "root": layout.containerd_root, "state": layout.containerd_state, "oom_score": 0},
        ),
        ("grpc", {"address": layout.containerd_socket}),
        ("ttrpc", {"address": ""}),
        ("debug", {"address": "", "level": "info"}),
        ("metrics", {"address": ""}),
        (
            'plugins."io.containerd.grpc.v1.cri"',
            {
                "sandbox_image": sandbox_image,
                "restrict_oom_score_adj": True,
                "netns_mounts_under_state_dir": True,
                "stream_server_address": "127.0.0.1",
                "stream_server_port": "0",
                "enable_selinux": False,
                "max_container_log_line_size": 16384,
            },
        ),
        (
            'plugins."io.containerd.grpc.v1.cri".cni',
            {"bin_dir": CNI_BIN_DIR, "conf_dir": layout.cni_conf_dir},
        ),
        (
            'plugins."io.containerd.grpc.v1.cri".containerd',
            {"default_runtime_name": "runc", "snapshotter": "overlayfs", "discard_unpacked_layers": False},
        ),
        (
            'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc',
            {"runtime_type": "io.containerd.runc.v2"},
        ),
        (
            'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options',
            {"BinaryName": RUNC, "SystemdCgroup": False},
        ),
        ('plugins."io.containerd.internal.v1.opt"', {"path": layout.root / "containerd" / "opt"}),
    ]
    lines: list[str] = []
    for header, values in sections:
        if header:
            lines.append(f"\n[{header}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class KubeletSettings:
    """What the kubelet's configuration depends on."""

    node_ip: str
    port: int
    healthz_port: int
    client_ca: Path
    cgroup_root: str
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"


def kubelet_config(layout: NodeLayout, s: KubeletSettings) -> dict[str, Any]:
    """KubeletConfiguration (v1beta1) for this machine: cgroupfs, swap allowed, no negative OOM scores."""
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": s.cgroup_root,
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "imageServiceEndpoint": f"unix://{layout.containerd_socket}",
        "address": s.node_ip,
        "port": s.port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": s.healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(s.client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(layout.pod_logs),
        "oomScoreAdj": 0,
        # The images are imported, never pulled: image garbage collection must not delete them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A shared build machine: evict on real exhaustion only.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "nodeStatusUpdateFrequency": "4s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "resolvConf": "/etc/resolv.conf",
        "clusterDomain": s.cluster_domain,
        "maxPods": 60,
        "shutdownGracePeriod": "0s",
    }
    if s.cluster_dns:
        config["clusterDNS"] = list(s.cluster_dns)
    return config


@dataclass(frozen=True)
class ProxySettings:
    """What kube-proxy's configuration depends on."""

    kubeconfig: Path
    node_name: str
    node_ip: str
    cluster_cidr: str
    healthz_port: int
    metrics_port: int


def kube_proxy_config(s: ProxySettings) -> dict[str, Any]:
    """KubeProxyConfiguration (v1alpha1), iptables mode, touching no host sysctl (conntrack, localnet)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(s.kubeconfig)},
        "hostnameOverride": s.node_name,
        "bindAddress": s.node_ip,
        "clusterCIDR": s.cluster_cidr,
        "healthzBindAddress": f"127.0.0.1:{s.healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{s.metrics_port}",
        "nodePortAddresses": [f"{s.node_ip}/32"],
        "oomScoreAdj": 0,
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "syncPeriod": "10s"},
    }
