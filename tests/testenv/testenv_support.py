"""Helpers for the test-environment tests: manifests as dicts, waiting on Jobs (applying them, reading
objects and waiting on pods are kube_support's)."""

from __future__ import annotations

from typing import Any

from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import wait_until
from kube_support import JSON, container, get

WORKER_IMAGE = "docker.io/faceblur/worker:test"  # imported into the session node by worker_images


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
