"""Helpers for the test-environment tests: manifests as dicts, applying them, waiting on Jobs and pods."""

from __future__ import annotations

import json
from typing import Any

from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.kubeapi import ApiError
from faceblur_testenv.kubenode.localimages import BUSYBOX_IMAGE
from faceblur_testenv.polling import wait_until

JSON = dict[str, Any]
WORKER_IMAGE = "docker.io/faceblur/worker:test"  # imported into the session node by worker_images


def apply(cluster: TestCluster, *docs: JSON) -> None:
    """kubectl apply, as a user would (server-side validation and defaults included)."""
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
    )


def container(command: list[str], name: str = "main", image: str = BUSYBOX_IMAGE, **extra: Any) -> JSON:
    """A container of an image the node already has (busybox unless told): never pulled."""
    return {"name": name, "image": image, "imagePullPolicy": "Never", "command": command, **extra}


def indexed_job(
    namespace: str, name: str, command: list[str], completions: int, parallelism: int, **spec: Any
) -> JSON:
    """An Indexed Job whose pods run command (restartPolicy Never); extra keys go into the Job spec."""
    pod_spec: JSON = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [container(command)],
    }
    pod_spec.update(spec.pop("pod_spec", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, **spec.pop("metadata", {})},
        "spec": {
            "completions": completions,
            "parallelism": parallelism,
            "completionMode": "Indexed",
            "template": {"spec": pod_spec},
            **spec,
        },
    }


def secret(namespace: str, name: str, data: dict[str, str]) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def config_map(namespace: str, name: str, data: dict[str, str]) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def condition(obj: JSON, kind: str) -> JSON | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind and cond["status"] == "True":
            return dict(cond)
    return None


def get(cluster: TestCluster, path: str) -> JSON | None:
    try:
        found: JSON = cluster.api.get(path)
        return found
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def job_path(namespace: str, name: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"


def wait_job(cluster: TestCluster, namespace: str, name: str, kind: str, timeout_s: float = 90) -> JSON:
    """Wait until the Job has condition `kind` (Complete, Failed, ...) and return the Job."""

    def probe() -> JSON | None:
        job = get(cluster, job_path(namespace, name))
        return job if job and condition(job, kind) else None

    job: JSON = wait_until(f"job {namespace}/{name} {kind}", probe, timeout_s)
    return job


def pods(cluster: TestCluster, namespace: str, selector: str = "") -> list[JSON]:
    params = {"labelSelector": selector} if selector else None
    items: list[JSON] = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods", params).get("items", [])
    return items


def wait_pod_phase(
    cluster: TestCluster, namespace: str, name: str, phases: tuple[str, ...], timeout_s: float = 60
) -> JSON:
    def probe() -> JSON | None:
        pod = get(cluster, f"/api/v1/namespaces/{namespace}/pods/{name}")
        return pod if pod and pod.get("status", {}).get("phase") in phases else None

    pod: JSON = wait_until(f"pod {namespace}/{name} in {phases}", probe, timeout_s)
    return pod
