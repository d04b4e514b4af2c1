"""The cluster DNS of the real node: its build (cached, without `forward`), its Corefile and the API objects
that put it behind kube-system/kube-dns. Pods resolving names through it are tested on the real node
(tests/node/test_node_pods.py and the chart's MinIO variant in tests/node/test_user_path.py)."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path

import pytest
from faceblur_testenv.cluster import SERVICE_CIDR
from faceblur_testenv.kubenode import clusterdns
from faceblur_testenv.kubenode.clusterdns import (
    BUILD_SCRIPT,
    DnsSettings,
    api_objects,
    corefile,
    ensure_coredns,
)

SETTINGS = DnsSettings("10.213.0.1", 40053, 40181, 40080, Path("/work/kubeconfigs/coredns.kubeconfig"))


def test_corefile_serves_the_cluster_zones_on_the_bridge_address_and_forwards_nothing() -> None:
    text = corefile(SETTINGS)
    assert text.splitlines()[0] == "cluster.local:40053 in-addr.arpa:40053 ip6.arpa:40053 {"
    assert "    bind 10.213.0.1\n" in text
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in text
    assert f"kubeconfig {SETTINGS.kubeconfig}" in text
    assert "ready 127.0.0.1:40181" in text
    assert "health 127.0.0.1:40080" in text
    for word in ("forward", "fallthrough", "proxy", "/etc/resolv.conf"):
        assert word not in text


def test_kube_dns_service_routes_to_the_host_endpoint() -> None:
    objects = {obj["kind"]: obj for obj in api_objects("10.213.0.1", 40053)}
    service, endpoints = objects["Service"], objects["EndpointSlice"]
    assert (service["metadata"]["namespace"], service["metadata"]["name"]) == ("kube-system", "kube-dns")
    assert service["spec"]["clusterIP"] == clusterdns.SERVICE_IP
    assert ipaddress.ip_address(clusterdns.SERVICE_IP) in ipaddress.ip_network(SERVICE_CIDR)
    assert "selector" not in service["spec"], "the EndpointSlice is ours; no controller may replace it"
    assert endpoints["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert endpoints["endpoints"] == [{"addresses": ["10.213.0.1"], "conditions": {"ready": True}}]
    service_ports = {(p["name"], p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert service_ports == {("dns", "UDP", 53, 40053), ("dns-tcp", "TCP", 53, 40053)}
    assert {(p["name"], p["protocol"], p["port"]) for p in endpoints["ports"]} == {
        ("dns", "UDP", 40053),
        ("dns-tcp", "TCP", 40053),
    }
    # What the cluster's start-up waits for kube-proxy to route: this Service's ports, by name.
    named = tuple(f"kube-system/kube-dns:{p['name']}" for p in service["spec"]["ports"])
    assert named == clusterdns.SERVICE_PORTS


def test_coredns_reads_only_what_the_kubernetes_plugin_needs() -> None:
    objects = {obj["kind"]: obj for obj in api_objects("10.213.0.1", 40053)}
    verbs = {verb for rule in objects["ClusterRole"]["rules"] for verb in rule["verbs"]}
    assert verbs == {"list", "watch"}
    assert objects["ClusterRoleBinding"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": clusterdns.USER}
    ]


@pytest.mark.tools  # builds CoreDNS on a cold cache (minutes)
def test_build_is_cached_and_leaves_out_forward() -> None:
    binary = ensure_coredns()  # builds on a cold cache (minutes), else finds it
    started = time.monotonic()
    again = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=True)
    assert Path(again.stdout.strip().splitlines()[-1]) == binary
    assert time.monotonic() - started < 10, "a second run must build nothing"
    plugins = subprocess.run([str(binary), "-plugins"], capture_output=True, text=True, check=True).stdout
    listed = {line.strip() for line in plugins.splitlines()}
    assert {"kubernetes", "cache", "bind", "ready"} <= listed
    assert "forward" not in listed
    assert "grpc" not in listed
    version = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("CoreDNS-1.")
