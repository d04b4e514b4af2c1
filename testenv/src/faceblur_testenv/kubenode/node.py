"""One real node: containerd, kubelet and kube-proxy on a bridge pod network, started and stopped here.

`prepare()` takes the host-wide node lock (the kubelet's device-plugin folder is fixed, so one node per
machine at a time), cleans what a crashed earlier node left, and creates the bridge, its isolation rules
and the node's cgroup root; the control plane then binds the API server to the bridge address.
`start()` runs the daemons with their configs under the work folder and imports the local images.
`stop()` undoes everything, in the order that lets each step succeed: daemons, pods' processes, shims,
mounts (newest first), cgroups, iptables (kube-proxy --cleanup, the kubelet's chains, our rules), links,
the kubelet's fixed host paths, ip_forward, then containerd's image store (the logs stay).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import yaml

from faceblur_testenv.deviceplugin import SHARED_RESOURCE, SHARED_SOCKET_NAME, DevicePlugin
from faceblur_testenv.kubenode import hostclean, localimages, network
from faceblur_testenv.kubenode.configs import (
    KubeletSettings,
    NodeLayout,
    ProxySettings,
    containerd_toml,
    kube_proxy_config,
    kubelet_config,
)
from faceblur_testenv.kubenode.hostpaths import DEVICE_PLUGINS, HostPaths
from faceblur_testenv.processes import ManagedProcess, free_ports

log = logging.getLogger(__name__)

REGISTRY = Path(os.environ.get("FACEBLUR_TESTENV_NODE_REGISTRY", "/run/faceblur-testenv"))
LOCK_TIMEOUT_S = float(os.environ.get("FACEBLUR_TESTENV_NODE_LOCK_TIMEOUT", "900"))
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
CGROUP_PREFIX = "faceblur-node-"
# containerd keeps an archive's blobs and unpacks its layers beside them: about 3x the archive, measured
# with the worker images; a node refuses an import the disk cannot hold instead of failing pods later.
IMPORT_SPACE_FACTOR = 3
IMPORT_SPACE_MARGIN = 1 << 30


class NodeError(RuntimeError):
    """The node could not be prepared or started."""


@dataclass(frozen=True)
class NodeRecord:
    """What a running node changed on the host, written before it changes it, so a crash is undone."""

    name: str
    root: str
    bridge: str
    subnet: str
    cgroup: str
    had_kubelet_home: bool
    had_device_plugins: bool
    had_container_logs: bool
    ip_forward: str

    @property
    def net(self) -> network.PodNetwork:
        return network.PodNetwork(self.bridge, self.subnet)

    @property
    def layout(self) -> NodeLayout:
        return NodeLayout(Path(self.root), run_folder(self.name))


class HostLock:
    """The host-wide node lock (flock on a file in the registry): one node per machine at a time."""

    def __init__(self, timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        handle = (REGISTRY / "node.lock").open("ab")
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise NodeError(
                        f"another test node holds {REGISTRY / 'node.lock'} for over {self.timeout_s:.0f}s"
                    ) from None
                time.sleep(1.0)
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> HostLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_folder(name: str) -> Path:
    """The node's short folder for sockets, in the registry folder."""
    return REGISTRY / name


def teardown(record: NodeRecord, bin_dir: Path | None) -> None:
    """Undo every host change of record's node; each step goes on whatever the previous one did."""
    layout = record.layout
    hostclean.kill_cgroup_processes(record.cgroup)
    # Shims and a containerd left by a crash carry our socket path in their argv.
    hostclean.kill_pids(hostclean.processes_with_argument(str(layout.containerd_socket)))
    hostclean.kill_pids(hostclean.processes_with_argument(f"--root-dir={layout.kubelet_root}"))
    still_mounted: list[str] = []
    for folder in (layout.run, layout.root):
        still_mounted += hostclean.unmount_all_under(folder)
    if still_mounted:
        log.warning("still mounted under %s: %s", layout.root, still_mounted)
    hostclean.remove_cgroup(record.cgroup)
    if bin_dir is not None and (bin_dir / "kube-proxy").exists():
        subprocess.run(
            [str(bin_dir / "kube-proxy"), "--cleanup"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    network.remove_kube_chains()
    network.remove_tagged_rules(record.net.comment)
    network.remove_links(record.bridge)
    HostPaths(record.had_kubelet_home, record.had_device_plugins, record.had_container_logs).restore(
        layout.pod_logs
    )
    with contextlib.suppress(OSError):
        IP_FORWARD.write_text(record.ip_forward)
    shutil.rmtree(layout.run, ignore_errors=True)
    if not still_mounted:  # never rmtree through a mount: it could reach the host's files
        # Imported images and their snapshots, gigabytes a stopped node never reads again (its logs stay):
        # test runs keep their work folders, and a few kept stores fill the disk of a later run.
        for store in (layout.containerd_root, layout.containerd_state):
            shutil.rmtree(store, ignore_errors=True)


class KubeNode:
    """A single real node named name, its state under root; see the module docstring."""

    def __init__(
        self,
        root: Path,
        bin_dir: Path,
        name: str = "faceblur-node-0",
        gpus: int = 0,
        images: Sequence[Path] = (),
    ) -> None:
        """gpus: how many `nvidia.com/gpu` the node advertises through our device plugin (0: no plugin);
        images: image archives (e.g. the product's, from faceblur_testenv.images) imported at start, so
        pods use them without a pull, as `kind load` does."""
        self.name = name
        self.gpus = gpus
        self.images = tuple(Path(image) for image in images)
        self.layout = NodeLayout(Path(root).resolve(), run_folder(name))
        self.bin_dir = bin_dir
        self.net: network.PodNetwork | None = None
        self.record: NodeRecord | None = None
        self._lock = HostLock()
        self._components: list[ManagedProcess] = []
        self.timings: dict[str, float] = {}

    @property
    def host_ip(self) -> str:
        if self.net is None:
            raise NodeError("node not prepared")
        return self.net.host_ip

    # ---- lifecycle -------------------------------------------------------------------------------

    def prepare(self) -> network.PodNetwork:
        """Lock, clean a crashed predecessor, create the network and cgroup root; returns the network."""
        started = time.monotonic()
        self._lock.acquire()
        try:
            self._clean_stale_records()
            net = network.choose_network(network.host_networks())
            record = NodeRecord(
                name=self.name,
                root=str(self.layout.root),
                bridge=net.bridge,
                subnet=net.subnet,
                cgroup=f"/{CGROUP_PREFIX}{net.bridge}",
                ip_forward=IP_FORWARD.read_text().strip(),
                **asdict(HostPaths.observe()),
            )
            self._record_path(record).write_text(json.dumps(asdict(record)))
            self.record, self.net = record, net
            network.create(net)
            hostclean.create_cgroup(record.cgroup)
        except BaseException:
            self.stop()
            raise
        self.timings["prepare"] = time.monotonic() - started
        return net

    def start(
        self,
        ca_file: Path,
        kubelet_kubeconfig: Path,
        proxy_kubeconfig: Path,
        cluster_dns: Sequence[str] = (),
    ) -> None:
        """containerd (images imported), then kubelet and kube-proxy; the caller waits for Ready.
        cluster_dns: the kubelet's clusterDNS (the kube-dns Service IP), written into pods' resolv.conf."""
        if self.record is None or self.net is None:
            raise NodeError("prepare() first")
        layout, net = self.layout, self.net
        for folder in (
            layout.cni_conf_dir,
            layout.cni_ipam_dir,
            layout.kubelet_root,
            layout.pod_logs,
            layout.run,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        conflist = network.cni_conflist(net, layout.cni_ipam_dir)
        (layout.cni_conf_dir / "10-faceblur-node.conflist").write_text(json.dumps(conflist, indent=2))
        config = layout.root / "containerd.toml"
        config.write_text(containerd_toml(layout, localimages.PAUSE_IMAGE))
        t0 = time.monotonic()
        self._launch("containerd", ["containerd", "--config", str(config)])
        self._wait("containerd's socket", self._containerd_answers, 60)
        self.timings["containerd"] = time.monotonic() - t0
        t0 = time.monotonic()
        for archive in (localimages.pause_archive(), localimages.busybox_archive()):
            self.import_image(archive)
        self.timings["import local images"] = time.monotonic() - t0
        if self.images:
            t0 = time.monotonic()
            for archive in self.images:
                self.import_image(archive)
            self.timings["import given images"] = time.monotonic() - t0

        kubelet_port, healthz, proxy_healthz, proxy_metrics = free_ports(4)
        settings = KubeletSettings(
            node_ip=net.host_ip,
            port=kubelet_port,
            healthz_port=healthz,
            client_ca=ca_file,
            cgroup_root=self.record.cgroup,
            cluster_dns=tuple(cluster_dns),
        )
        kubelet_file = layout.root / "kubelet-config.yaml"
        kubelet_file.write_text(yaml.safe_dump(kubelet_config(layout, settings), sort_keys=False))
        proxy = ProxySettings(
            proxy_kubeconfig, self.name, net.host_ip, net.subnet, proxy_healthz, proxy_metrics
        )
        proxy_file = layout.root / "kube-proxy-config.yaml"
        proxy_file.write_text(yaml.safe_dump(kube_proxy_config(proxy), sort_keys=False))
        self._launch(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                f"--config={kubelet_file}",
                f"--kubeconfig={kubelet_kubeconfig}",
                f"--root-dir={layout.kubelet_root}",
                f"--cert-dir={layout.kubelet_certs}",
                f"--hostname-override={self.name}",
                f"--node-ip={net.host_ip}",
                "--v=1",
            ],
        )
        self._launch("kube-proxy", [str(self.bin_dir / "kube-proxy"), f"--config={proxy_file}", "--v=1"])
        if self.gpus > 0:
            DEVICE_PLUGINS.mkdir(parents=True, exist_ok=True)  # the kubelet makes it too, maybe later
            logs = layout.root / "logs"
            plugins = [
                DevicePlugin(logs / "device-plugin.log", self.gpus, DEVICE_PLUGINS),
                DevicePlugin(
                    logs / "device-plugin-shared.log",
                    self.gpus,
                    DEVICE_PLUGINS,
                    socket_name=SHARED_SOCKET_NAME,
                    resource=SHARED_RESOURCE,
                    name="device-plugin-shared",
                ),
            ]
            for plugin in plugins:
                plugin.start()  # registers once the kubelet's socket is there
                self._components.append(plugin)

    def stop(self) -> None:
        """Stop the daemons and undo every host change; safe to call twice and after a failed start."""
        for component in reversed(self._components):
            component.stop(grace_s=5.0)
        self._components.clear()
        if self.record is not None:
            teardown(self.record, self.bin_dir)
            with contextlib.suppress(FileNotFoundError):
                self._record_path(self.record).unlink()
            self.record = None
        self._lock.release()

    # ---- what tests use --------------------------------------------------------------------------

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`ctr` against this node's containerd, in the CRI's namespace (k8s.io)."""
        return subprocess.run(
            ["ctr", "--address", str(self.layout.containerd_socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def import_image(self, archive: Path) -> None:
        """Import an oci-archive (or docker-archive) tar so pods find it without pulling."""
        needed = IMPORT_SPACE_FACTOR * archive.stat().st_size + IMPORT_SPACE_MARGIN
        free = shutil.disk_usage(self.layout.root).free
        if free < needed:
            raise NodeError(
                f"importing {archive.name} needs about {needed >> 20} MiB free under {self.layout.root}, "
                f"{free >> 20} MiB are: free disk space (earlier runs' work folders, image caches) first"
            )
        done = self.ctr("images", "import", "--all-platforms", str(archive))
        if done.returncode != 0:
            raise NodeError(f"ctr images import {archive} failed: {done.stderr.strip()}")

    def component_logs(self) -> dict[str, Path]:
        return {c.name: c.log_path for c in self._components}

    def running(self) -> list[str]:
        return [c.name for c in self._components if c.running()]

    def check_alive(self) -> None:
        for component in self._components:
            if not component.running():
                raise NodeError(component.exit_report())

    # ---- internals -------------------------------------------------------------------------------

    def _launch(self, name: str, argv: list[str]) -> None:
        component = ManagedProcess(name, argv, self.layout.root / "logs" / f"{name}.log")
        component.start()
        self._components.append(component)

    def _containerd_answers(self) -> bool:
        return self.layout.containerd_socket.exists() and self.ctr("version", timeout=10).returncode == 0

    def _wait(self, what: str, done: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            self.check_alive()
            if time.monotonic() > deadline:
                raise NodeError(f"timed out after {timeout_s:.0f}s waiting for {what}")
            time.sleep(0.2)

    def _record_path(self, record: NodeRecord) -> Path:
        return REGISTRY / f"node-{record.bridge}.json"

    def _clean_stale_records(self) -> None:
        """Holding the lock, every record left is a crashed node's: undo it, and any bridge of ours."""
        for path in sorted(REGISTRY.glob("node-*.json")):
            try:
                record = NodeRecord(**json.loads(path.read_text()))
            except (ValueError, TypeError) as exc:
                log.warning("ignoring unreadable node record %s: %s", path, exc)
                path.unlink()
                continue
            log.warning("cleaning up after a node that did not stop: %s", record)
            teardown(record, self.bin_dir)
            path.unlink()
        for bridge in network.leftover_bridges():
            network.remove_links(bridge)
