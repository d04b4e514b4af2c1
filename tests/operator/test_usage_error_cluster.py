"""A command line the worker refuses (exit code 2) can never succeed on a retry: the worker Job the
operator builds fails at its first failed pod, through the real job controller's podFailurePolicy: the
worker image's `faceblur` exits 2 on the real node and the kubelet reports that exit code."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from faceblur_contract.exits import ExitCode
from faceblur_operator.api import FaceBlurJobSpec
from faceblur_operator.builders import build_worker_job
from faceblur_operator.plan import Owner, resolve
from faceblur_operator.settings import load_config
from faceblur_testenv.cluster import TestCluster

pytestmark = pytest.mark.cluster

NAMESPACE = "usage-error"


def job_status(cluster: TestCluster, name: str) -> dict[str, Any]:
    done = cluster.kubectl("get", "job", name, "-n", NAMESPACE, "-o", "json")
    status: dict[str, Any] = json.loads(done.stdout).get("status") or {}
    return status


@pytest.mark.usefixtures("worker_images")
def test_a_usage_error_fails_the_worker_job_at_the_first_pod(test_cluster: TestCluster) -> None:
    test_cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    spec = FaceBlurJobSpec.model_validate(
        {
            "input": {"bucket": "in", "key": "a.mp4"},
            "storage": {"endpoint": "127.0.0.1:9"},
            "maxRetriesPerChunk": 3,
        }
    )
    config = load_config({"FACEBLUR_WORKER_IMAGE": "faceblur/worker:test"})  # the session node's
    plan = resolve(spec, Owner("usage", NAMESPACE, "0123456789abcdef"), config)
    job = build_worker_job(plan, chunks=2)
    del job["metadata"]["ownerReferences"]  # no FaceBlurJob here: the garbage collector would take it
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["faceblur", "process", "--no-such-option"]
    container["imagePullPolicy"] = "Never"  # the worker image worker_images imported
    container["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}}  # both indexes fit at once
    test_cluster.kubectl("apply", "-f", "-", input=json.dumps(job))
    name = job["metadata"]["name"]

    deadline = time.monotonic() + 120
    while not any(c.get("type") == "Failed" for c in job_status(test_cluster, name).get("conditions") or []):
        assert time.monotonic() < deadline, f"Job {name} did not fail: {job_status(test_cluster, name)}"
        time.sleep(1)

    failed = next(c for c in job_status(test_cluster, name)["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert f"exit code {int(ExitCode.USAGE)}" in failed["message"]
    runs = test_cluster.pods_created(NAMESPACE, name)
    assert 1 <= runs <= 2  # both indexes may have started together; neither was retried
    test_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
