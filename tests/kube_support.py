"""What every cluster tier's tests do with the API server (tests/node, tests/operator, tests/testenv):
say whether the real node can start here, apply manifests as a user does, read an object, write a pod and
wait on its phase, write a FaceBlurJob, make a fresh namespace. One copy here, imported by each tier's
support module or tests (tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Collection
from typing import Any

from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.kubeapi import ApiError
from faceblur_testenv.kubenode.localimages import BUSYBOX_IMAGE
from faceblur_testenv.polling import wait_until

JSON = dict[str, Any]
NODE_TOOLS = ("containerd", "runc", "iptables", "ctr")

_numbers = itertools.count()


def real_node_missing() -> str:
    """Why the real node cannot start here ("" when it can)."""
    if os.geteuid() != 0:
        return "the real node needs root"
    missing = [tool for tool in NODE_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the real node needs {', '.join(missing)} (scripts/install-deps.sh --cluster)"
    return ""


def apply(cluster: TestCluster, *docs: JSON, namespace: str | None = None) -> None:
    """kubectl apply, as a user would (server-side validation and defaults included), the docs as one
    List; namespace is where docs that name none go."""
    where = ("-n", namespace) if namespace else ()
    cluster.kubectl(
        "apply",
        *where,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}),
    )


def get(cluster: TestCluster, path: str) -> JSON | None:
    """The object at an API path; None when it does not exist (any other error is raised)."""
    try:
        found: JSON = cluster.api.get(path)
        return found
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def wait_pod_phase(
    cluster: TestCluster, namespace: str, name: str, phases: Collection[str], timeout_s: float = 90
) -> JSON:
    """The pod once its phase is one of phases."""

    def probe() -> JSON | None:
        pod = get(cluster, f"/api/v1/namespaces/{namespace}/pods/{name}")
        return pod if pod and pod.get("status", {}).get("phase") in phases else None

    pod: JSON = wait_until(f"pod {namespace}/{name} in {sorted(phases)}", probe, timeout_s=timeout_s)
    return pod


def container(command: list[str], name: str = "main", image: str = BUSYBOX_IMAGE, **extra: Any) -> JSON:
    """A container of an image the node already has (busybox unless told): never pulled."""
    return {"name": name, "image": image, "imagePullPolicy": "Never", "command": command, **extra}


def bare_pod(namespace: str, name: str, *containers: JSON, **spec: object) -> JSON:
    """A pod of its own (no controller) that runs once: restartPolicy Never, stopped within a second."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": list(containers),
            **spec,
        },
    }


def job_doc(
    name: str, spec: JSON, annotations: dict[str, str] | None = None, namespace: str | None = None
) -> JSON:
    """A FaceBlurJob as a user writes it."""
    meta: JSON = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "faceblur.dev/v1alpha1", "kind": "FaceBlurJob", "metadata": meta, "spec": spec}


def namespace_name(prefix: str, test_name: str, limit: int = 63) -> str:
    """A namespace name unique in this run, saying which test it is for."""
    label = re.sub(r"[^a-z0-9]+", "-", test_name.removeprefix("test_").lower())
    return f"{prefix}-{next(_numbers)}-{label}"[:limit].rstrip("-")


def new_namespace(cluster: TestCluster, name: str) -> str:
    """Create the namespace and wait for its "default" ServiceAccount: pods are refused until the
    service-account controller has made it. Returns name."""
    cluster.api.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    wait_until(
        f"service account {name}/default",
        lambda: get(cluster, f"/api/v1/namespaces/{name}/serviceaccounts/default"),
        timeout_s=30,
    )
    return name
