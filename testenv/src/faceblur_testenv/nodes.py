"""Node objects the pod runner registers and keeps alive: pure builders of the API documents."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from faceblur_testenv.kubeapi import JSON

KUBELET_VERSION = "v1.34.4"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute
    value: str = ""


@dataclass(frozen=True)
class NodeSpec:
    """One fake node: its name, what it advertises, and how it is labelled and tainted."""

    name: str
    cpu: str = "8"
    memory: str = "16Gi"
    pods: int = 110
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> NodeSpec:
        data = json.loads(text)
        data["taints"] = tuple(Taint(**t) for t in data.get("taints", ()))
        return cls(**data)


def default_nodes() -> tuple[NodeSpec, ...]:
    """Two nodes with one GPU each: enough to show that GPU requests bound parallelism."""
    return tuple(NodeSpec(name=f"testenv-node-{i}", gpus=1) for i in range(2))


def parse_node_list(text: str) -> tuple[NodeSpec, ...]:
    """Parse `name:gpus[:cpu[:memory]]` items separated by commas, e.g. `a:1,b:1:4:8Gi`."""
    nodes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, *rest = item.split(":")
        if not name or len(rest) > 3:
            raise ValueError(f"bad node {item!r}: expected name:gpus[:cpu[:memory]]")
        gpus = int(rest[0]) if rest else 0
        cpu = rest[1] if len(rest) > 1 else "8"
        memory = rest[2] if len(rest) > 2 else "16Gi"
        nodes.append(NodeSpec(name=name, gpus=gpus, cpu=cpu, memory=memory))
    if not nodes:
        raise ValueError(f"no node in {text!r}")
    return tuple(nodes)


def timestamp(moment: dt.datetime) -> str:
    """RFC 3339 at second precision, as the API server stores metav1.Time."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 with microseconds, as metav1.MicroTime (lease renewals) needs."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def capacity(spec: NodeSpec) -> dict[str, str]:
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods), "ephemeral-storage": "100Gi"}
    if spec.gpus:
        resources[GPU_RESOURCE] = str(spec.gpus)
    return resources


def node_object(spec: NodeSpec) -> JSON:
    """The Node as created; the API server's admission adds the not-ready taint until status says Ready."""
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "faceblur.dev/testenv": "true",
        **({"nvidia.com/gpu.present": "true"} if spec.gpus else {}),
        **spec.labels,
    }
    body: JSON = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {},
    }
    if spec.taints:
        body["spec"]["taints"] = [asdict(t) for t in spec.taints]
    return body


def node_status(spec: NodeSpec, now: dt.datetime, ready_since: dt.datetime) -> JSON:
    """A status patch saying the node is Ready, under no pressure, with its capacity."""
    beat, since = timestamp(now), timestamp(ready_since)

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": since,
        }

    return {
        "status": {
            "capacity": capacity(spec),
            "allocatable": capacity(spec),
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
                condition(
                    "Ready", "True", "KubeletReady", "faceblur-testenv pod runner is posting ready status"
                ),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": spec.name,
                "systemUUID": spec.name,
                "bootID": spec.name,
                "kernelVersion": "host",
                "osImage": "faceblur-testenv pod runner (local processes)",
                "containerRuntimeVersion": "faceblur-testenv://0.1",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    }


def lease_object(node_name: str, node_uid: str, now: dt.datetime) -> JSON:
    """The node's heartbeat Lease in kube-node-lease, owned by the Node as the kubelet does."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "renewTime": micro_timestamp(now),
        },
    }


def has_not_ready_taint(node: JSON) -> bool:
    """True while the node lifecycle controller has not yet lifted the taints of a new node."""
    taints: Sequence[dict[str, Any]] = node.get("spec", {}).get("taints", [])
    return any(t.get("key", "").startswith("node.kubernetes.io/") for t in taints)
