"""What a kubelet enforces, proven on the real node with busybox pods: Jobs complete, security contexts
hold, memory limits reach the cgroup and OOM-kill, logs come through the API server, in-cluster
configuration reaches the API server, and nothing outside the pod network is reachable."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from faceblur_testenv.cluster import REAL_NODE_NAME, TestCluster
from faceblur_testenv.deviceplugin import device_ids
from faceblur_testenv.kubenode import clusterdns, network
from faceblur_testenv.polling import wait_until
from kube_support import apply
from node_support import busybox_pod, terminated, timed_run

pytestmark = pytest.mark.node

# An address outside the pod network that is local to this machine only: a bridge without ports holds .1,
# and .2 routes to that bridge, where nothing answers; so even a broken rule sends no packet off the machine
# (the kernel has no dummy links here).
PROBE_LINK, PROBE_NET, PROBE_LOCAL, PROBE_FORWARDED = (
    "fbprobe0",
    "10.214.77.1/24",
    "10.214.77.1",
    "10.214.77.2",
)


def test_job_completes_as_non_root_with_read_only_root_and_memory_limit(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    script = (
        "id -u; "
        "if touch /written 2>/dev/null; then echo root-writable; else echo root-read-only; fi; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    )
    template = busybox_pod(
        node_namespace,
        "x",
        script,
        securityContext={
            "runAsUser": 10001,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
        resources={"limits": {"memory": "64Mi", "cpu": "500m"}},
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "checks", "namespace": node_namespace},
        "spec": {"backoffLimit": 0, "template": {"spec": template["spec"]}},
    }
    apply(node_cluster, job)
    wait_until(
        "Job checks Complete",
        lambda: any(
            c["type"] == "Complete" and c["status"] == "True"
            for c in node_cluster.api.get(f"/apis/batch/v1/namespaces/{node_namespace}/jobs/checks")
            .get("status", {})
            .get("conditions", [])
        ),
        timeout_s=120,
    )
    # kubectl logs goes API server -> kubelet (InternalIP, the bridge address) -> containerd's log file.
    logs = node_cluster.kubectl("logs", "-n", node_namespace, "job/checks").stdout.split()
    assert logs == ["10001", "root-read-only", str(64 * 1024 * 1024)]


def test_container_past_its_memory_limit_is_oom_killed(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    # busybox dd holds one block of bs bytes in memory: 200 MiB against a 32 MiB limit. It is the
    # container's main process (exec), so the kernel's kill ends the container, as with a real hog.
    doc = busybox_pod(
        node_namespace,
        "hog",
        "exec dd if=/dev/zero of=/dev/null bs=200M count=1",
        resources={"limits": {"memory": "32Mi"}},
    )
    found, _ = timed_run(node_cluster, doc, {"Failed", "Succeeded"})
    state = terminated(found)
    assert (found["status"]["phase"], state["reason"], state["exitCode"]) == ("Failed", "OOMKilled", 137)


def test_pod_reaches_api_server_through_in_cluster_configuration(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    # The service-account token, KUBERNETES_SERVICE_HOST/PORT (the ClusterIP, routed by kube-proxy to the
    # API server on the bridge address): a self-review returns who the pod is.
    script = (
        "T=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token); "
        'wget -q -O - --no-check-certificate --header "Authorization: Bearer $T" '
        "--header 'Content-Type: application/json' "
        '--post-data \'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}\' '
        "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/apis/authentication.k8s.io/v1/selfsubjectreviews"
    )
    found, seconds = timed_run(
        node_cluster, busybox_pod(node_namespace, "whoami", script), {"Failed", "Succeeded"}
    )
    log = node_cluster.kubectl("logs", "-n", node_namespace, "whoami").stdout
    print(f"pod create to Succeeded: {seconds:.1f}s")
    assert found["status"]["phase"] == "Succeeded", log
    assert f'"username":"system:serviceaccount:{node_namespace}:default"' in log.replace(" ", "")


def test_pod_resolves_cluster_names_through_kube_dns_and_nothing_else(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    """The kubelet points pods at kube-system/kube-dns (CoreDNS on the host, behind kube-proxy): Service
    names resolve, by their full name and through the search list (glibc's resolver in busybox's nc),
    PTR too; a name outside the cluster is refused, since the DNS server forwards nothing."""
    service = node_cluster.api.create(
        f"/api/v1/namespaces/{node_namespace}/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo"},
            "spec": {"ports": [{"port": 80}]},
        },
    )
    steps = {
        "resolv.conf": "cat /etc/resolv.conf",
        "service": f"nslookup echo.{node_namespace}.svc.cluster.local",
        "kube-dns": "nslookup kube-dns.kube-system.svc.cluster.local",
        "ptr": f"nslookup {clusterdns.SERVICE_IP}",
        "short": "nc -w 5 kubernetes.default 443 </dev/null && echo connects",
        "outside": "nslookup example.com || echo unresolved",
    }
    script = "; ".join(f"echo '== {name}'; {command}" for name, command in steps.items())
    found, seconds = timed_run(
        node_cluster, busybox_pod(node_namespace, "dns", script), {"Failed", "Succeeded"}
    )
    log = node_cluster.kubectl("logs", "-n", node_namespace, "dns").stdout
    print(f"pod create to Succeeded: {seconds:.1f}s\n{log}")
    out = {name: body for name, _, body in (part.partition("\n") for part in log.split("== ")[1:])}
    assert found["status"]["phase"] == "Succeeded", log
    assert f"nameserver {clusterdns.SERVICE_IP}" in out["resolv.conf"]
    assert f"search {node_namespace}.svc.cluster.local svc.cluster.local cluster.local" in out["resolv.conf"]
    assert f"Address: {service['spec']['clusterIP']}" in out["service"]
    assert f"Address: {clusterdns.SERVICE_IP}" in out["kube-dns"]
    assert "kube-dns.kube-system.svc.cluster.local" in out["ptr"]
    assert out["short"].split() == ["connects"], "the search list takes kubernetes.default to the API server"
    assert out["outside"].split()[-1] == "unresolved"


@pytest.fixture
def probe_link() -> Iterator[None]:
    subprocess.run(["ip", "link", "add", PROBE_LINK, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", PROBE_NET, "dev", PROBE_LINK], check=True)
        subprocess.run(["ip", "link", "set", PROBE_LINK, "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "link", "del", PROBE_LINK], check=False)


@pytest.mark.usefixtures("probe_link")
def test_pod_reaches_nothing_outside_the_pod_network(node_cluster: TestCluster, node_namespace: str) -> None:
    assert node_cluster.node is not None
    assert node_cluster.node.net is not None
    net = node_cluster.node.net
    before = network.drop_counts(net)
    script = (
        f"if nc -w 3 {PROBE_FORWARDED} 80 </dev/null 2>/dev/null; then echo forwarded-open; "
        "else echo forwarded-closed; fi; "
        f"if nc -w 3 {PROBE_LOCAL} 80 </dev/null 2>/dev/null; then echo host-open; "
        "else echo host-closed; fi; "
        # The positive control: the bridge address itself (the API server's port) is reachable.
        f"if nc -w 3 {net.host_ip} {node_cluster.server.rsplit(':', 1)[1]} </dev/null; then echo api-open; "
        "else echo api-closed; fi"
    )
    found, _ = timed_run(node_cluster, busybox_pod(node_namespace, "probe", script), {"Failed", "Succeeded"})
    log = node_cluster.kubectl("logs", "-n", node_namespace, "probe").stdout.split()
    after = network.drop_counts(net)
    assert log == ["forwarded-closed", "host-closed", "api-open"], found["status"]
    assert after["FORWARD"] > before.get("FORWARD", 0)
    assert after["INPUT"] > before.get("INPUT", 0)


def test_gpu_pod_gets_the_device_through_the_kubelets_allocation(
    node_cluster: TestCluster, node_namespace: str
) -> None:
    allocatable = node_cluster.api.get(f"/api/v1/nodes/{REAL_NODE_NAME}")["status"]["allocatable"]
    assert allocatable["nvidia.com/gpu"] == "1"
    doc = busybox_pod(
        node_namespace, "gpu", "echo $NVIDIA_VISIBLE_DEVICES", resources={"limits": {"nvidia.com/gpu": "1"}}
    )
    found, _ = timed_run(node_cluster, doc, {"Failed", "Succeeded"})
    assert found["status"]["phase"] == "Succeeded"
    assert node_cluster.kubectl("logs", "-n", node_namespace, "gpu").stdout.split() == device_ids(1)
