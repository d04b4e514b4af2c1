"""The garbage collector: deleting an owner takes its Jobs, their pods and their containers with it."""

from __future__ import annotations

import pytest
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import wait_until
from kube_support import apply, get
from testenv_support import indexed_job, job_path, pods

pytestmark = pytest.mark.cluster


def test_deleting_the_owner_cascades_to_jobs_pods_and_processes(
    test_cluster: TestCluster, namespace: str
) -> None:
    apply(
        test_cluster,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": namespace}},
    )
    owner = get(test_cluster, f"/api/v1/namespaces/{namespace}/configmaps/owner")
    assert owner is not None
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    for name in ("child-a", "child-b"):
        job = indexed_job(
            namespace,
            name,
            ["sh", "-c", "trap 'exit 143' TERM; sleep 300 & wait"],
            completions=1,
            parallelism=1,
            metadata={"ownerReferences": [reference]},
        )
        apply(test_cluster, job)
    wait_until(
        "both pods running",
        lambda: [p["status"].get("phase") for p in pods(test_cluster, namespace)] == ["Running", "Running"],
    )

    test_cluster.kubectl("-n", namespace, "delete", "configmap", "owner")

    wait_until(
        "jobs gone",
        lambda: all(get(test_cluster, job_path(namespace, n)) is None for n in ("child-a", "child-b")),
    )
    wait_until("pods gone", lambda: pods(test_cluster, namespace) == [], timeout_s=60)
    assert [test_cluster.pods_created(namespace, n) for n in ("child-a", "child-b")] == [1, 1]
    stopped = test_cluster.events(namespace, {"reason": "Killing", "involvedObject.kind": "Pod"})
    assert sorted(e["involvedObject"]["name"].rsplit("-", 2)[0] for e in stopped) == ["child-a", "child-b"]
