"""The real node's decisions, without root: addresses, rules, configs, mount parsing, image archives."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest
from faceblur_testenv.kubenode import hostclean, network
from faceblur_testenv.kubenode.configs import (
    KubeletSettings,
    NodeLayout,
    ProxySettings,
    containerd_toml,
    kube_proxy_config,
    kubelet_config,
)
from faceblur_testenv.kubenode.ociarchive import ImageSpec, LayerEntry, archive_bytes


def test_network_avoids_every_network_in_use() -> None:
    net = network.choose_network(["10.213.0.0/24", "192.0.2.2/24"])
    assert net.subnet == "10.213.1.0/24"
    assert net.host_ip == "10.213.1.1"
    assert network.choose_network(["10.213.0.5/32", "0.0.0.0/0"]).subnet == "10.213.1.0/24"
    with pytest.raises(network.NetworkError):
        network.choose_network(["10.213.0.0/16"])


def test_in_use_networks_come_from_addresses_and_routes() -> None:
    addresses = json.dumps(
        [{"addr_info": [{"family": "inet", "local": "10.213.0.1", "prefixlen": 24}, {"family": "inet6"}]}]
    )
    routes = json.dumps([{"dst": "default"}, {"dst": "10.213.4.0/24"}, {"dst": "10.213.9.9"}])
    assert network.parse_in_use(addresses, routes) == ["10.213.0.1/24", "10.213.4.0/24", "10.213.9.9/32"]


def test_isolation_drops_pod_traffic_except_to_pods_and_the_bridge_address() -> None:
    net = network.PodNetwork("fbnode3", "10.213.3.0/24")
    rules = dict(network.isolation_rules(net))
    assert rules["FORWARD"][:4] == ["-s", "10.213.3.0/24", "!", "-d"]
    assert rules["FORWARD"][4] == "10.213.3.0/24"
    assert rules["INPUT"][4] == "10.213.3.1"
    assert all(rule[-2:] == ["-j", "DROP"] and net.comment in rule for rule in rules.values())


def test_cni_config_has_no_masquerade_and_keeps_ipam_state_in_the_work_folder(tmp_path: Path) -> None:
    net = network.PodNetwork("fbnode0", "10.213.0.0/24")
    bridge = network.cni_conflist(net, tmp_path)["plugins"][0]
    assert (bridge["bridge"], bridge["ipMasq"], bridge["isGateway"]) == ("fbnode0", False, True)
    assert bridge["ipam"]["dataDir"] == str(tmp_path)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.213.0.0/24", "gateway": "10.213.0.1"}]]


def test_containerd_config_is_toml_with_our_paths_runc_and_no_negative_oom_scores(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path, tmp_path / "run")
    config = tomllib.loads(containerd_toml(layout, "faceblur.local/pause:1"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert (config["root"], config["state"]) == (str(layout.containerd_root), str(layout.containerd_state))
    assert config["grpc"]["address"] == str(layout.containerd_socket)
    assert (cri["restrict_oom_score_adj"], cri["sandbox_image"]) == (True, "faceblur.local/pause:1")
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["BinaryName"].endswith("/runc")


def test_kubelet_and_proxy_configs() -> None:
    layout = NodeLayout(Path("/w"), Path("/r"))
    settings = KubeletSettings("10.213.0.1", 4001, 4002, Path("/w/ca.crt"), "/faceblur-node-fbnode0")
    kubelet = kubelet_config(layout, settings)
    assert (kubelet["cgroupDriver"], kubelet["failSwapOn"], kubelet["readOnlyPort"]) == ("cgroupfs", False, 0)
    assert kubelet["containerRuntimeEndpoint"] == "unix:///r/containerd.sock"
    assert kubelet["authorization"] == {"mode": "Webhook"}
    assert "clusterDNS" not in kubelet
    proxy = kube_proxy_config(ProxySettings(Path("/k"), "n", "10.213.0.1", "10.213.0.0/24", 4003, 4004))
    assert (proxy["mode"], proxy["clusterCIDR"], proxy["conntrack"]["maxPerCore"]) == (
        "iptables",
        "10.213.0.0/24",
        0,
    )


def test_mounts_under_a_folder_in_mount_order_with_escapes() -> None:
    mountinfo = "\n".join(
        [
            "22 1 0:21 / / rw - ext4 /dev/vda rw",
            "30 22 0:30 / /w/node/a rw - tmpfs tmpfs rw",
            "31 30 0:31 / /w/node/a/with\\040space rw - tmpfs tmpfs rw",
            "32 22 0:32 / /w/node-other rw - tmpfs tmpfs rw",
        ]
    )
    assert hostclean.mounts_under(mountinfo, Path("/w/node")) == ["/w/node/a", "/w/node/a/with space"]


def test_oci_archive_is_a_named_consistent_layout() -> None:
    spec = ImageSpec(
        "faceblur.local/x:2",
        (LayerEntry("bin"), LayerEntry("bin/x", b"#!", 0o755), LayerEntry("bin/y", symlink_to="x")),
        entrypoint=("/bin/x",),
    )
    data = archive_bytes(spec)
    assert data == archive_bytes(spec), "same inputs, same bytes (digests stay cached)"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        read = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    for name, blob in read.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]
    entry = json.loads(read["index.json"])["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == "faceblur.local/x:2"
    manifest = json.loads(read[f"blobs/sha256/{entry['digest'][7:]}"])
    config = json.loads(read[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    assert config["config"]["Entrypoint"] == ["/bin/x"]


def test_an_import_the_disk_cannot_hold_is_refused_before_containerd_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceblur_testenv.kubenode import node

    archive = tmp_path / "worker.oci.tar"
    archive.write_bytes(b"\0" * (1 << 20))
    kube_node = node.KubeNode(tmp_path / "node", tmp_path / "bin")
    ran: list[tuple[str, ...]] = []
    monkeypatch.setattr(kube_node, "ctr", lambda *args, **_: ran.append(args))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(node.shutil, "disk_usage", lambda _: usage._replace(free=node.IMPORT_SPACE_MARGIN))
    refused = r"importing worker\.oci\.tar needs about 1027 MiB free .* 1024 MiB"
    with pytest.raises(node.NodeError, match=refused):
        kube_node.import_image(archive)
    assert ran == []


def test_a_node_not_ready_or_under_pressure_is_a_problem_and_a_healthy_one_is_not() -> None:
    from faceblur_testenv.clusterclient import node_condition_problems

    def node_with(**conditions: str) -> dict[str, object]:
        items = [
            {"type": kind, "status": status, "reason": f"Kubelet{kind}", "message": "m"}
            for kind, status in conditions.items()
        ]
        return {"metadata": {"name": "n"}, "status": {"conditions": items}}

    healthy = {"Ready": "True", "DiskPressure": "False", "MemoryPressure": "False", "PIDPressure": "False"}
    assert node_condition_problems(node_with(**healthy)) == []
    assert node_condition_problems(node_with(**{**healthy, "DiskPressure": "True"})) == [
        "node n: DiskPressure=True (KubeletDiskPressure: m)"
    ]
    assert node_condition_problems(node_with(**{**healthy, "Ready": "Unknown"})) == [
        "node n: Ready=Unknown (KubeletReady: m)"
    ]


def test_a_node_is_schedulable_exactly_when_ready_causes_no_problem_and_its_taints_are_lifted() -> None:
    from faceblur_testenv.clusterclient import node_condition_problems, node_schedulable

    def node(ready: str | None, taint: str | None = None, pressure: str = "False") -> dict[str, object]:
        conditions = [{"type": "DiskPressure", "status": pressure, "reason": "r", "message": "m"}]
        if ready is not None:
            conditions.append({"type": "Ready", "status": ready, "reason": "r", "message": "m"})
        taints = [{"key": taint, "effect": "NoSchedule"}] if taint else []
        return {"metadata": {"name": "n"}, "spec": {"taints": taints}, "status": {"conditions": conditions}}

    for ready in ("True", "False", "Unknown"):
        ready_problem = any("Ready=" in p for p in node_condition_problems(node(ready)))
        assert node_schedulable(node(ready)) == (not ready_problem)
    assert not node_schedulable(node(None))
    assert not node_schedulable(node("True", taint="node.kubernetes.io/not-ready"))
    assert node_schedulable(node("True", taint="example.com/other"))
    assert node_schedulable(node("True", pressure="True"))  # pressure is a problem, not unreadiness
