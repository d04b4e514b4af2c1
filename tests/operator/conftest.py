"""Fixtures of the operator's cluster tests: the CRD, a running operator, a namespace per test.

The operator runs as a subprocess (`faceblur-operator`, this checkout's code) with the test
cluster's kubeconfig and a defaults file pointing the jobs at the S3 server on the pod bridge, so
a test can kill and restart it; the Jobs it creates run on the session's real node, in the worker
images built from this checkout. The chart's Deployment of the operator is tests/node's. Unit tests
request none of these and start nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cluster_support import BUCKET, CRD_FILE, SECRET, OperatorProcess, make_namespace
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.processes import free_ports
from faceblur_testenv.s3 import S3Server
from kube_support import namespace_name


@pytest.fixture(scope="session")
def s3_server(cluster_s3: S3Server) -> S3Server:
    """Here the store the worker pods use: the one on the session cluster's bridge address."""
    return cluster_s3


@pytest.fixture(scope="session")
def crd(test_cluster: TestCluster) -> None:
    test_cluster.kubectl("apply", "-f", str(CRD_FILE))
    # kubectl wait, not a jsonpath filter: a CRD read before its first status has no conditions, and
    # filtering a missing list is an error (seen failing the whole module in a cluster test run).
    test_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/faceblurjobs.faceblur.dev", "--timeout=60s", timeout=90
    )


# Module scope: this operator watches every namespace, so it must be gone before other modules
# (tests/packaging) run operators of their own, or two operators would reconcile the same job.
@pytest.fixture(scope="module")
def operator(
    test_cluster: TestCluster,
    worker_images: dict[str, str],
    s3_server: S3Server,
    crd: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    workdir = tmp_path_factory.mktemp("operator")
    s3_server.make_bucket(BUCKET)
    defaults = {
        "images": {
            "worker": "faceblur/worker:test",
            "gpuWorker": "faceblur/worker-gpu:test",
            "pullPolicy": "Never",  # worker_images imported them; a missing one fails at once
        },
        "storage": {"endpoint": s3_server.url, "credentialsSecret": {"name": SECRET}},
        "detector": {"name": "centerface"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "gpuResources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }
    defaults_file = workdir / "defaults.yaml"
    defaults_file.write_text(yaml.safe_dump(defaults))
    metrics_port, health_port = free_ports(2)
    env = {
        **test_cluster.env(),
        "FACEBLUR_DEFAULTS": str(defaults_file),
        "FACEBLUR_METRICS_PORT": str(metrics_port),
        "FACEBLUR_HEALTH_PORT": str(health_port),
        "FACEBLUR_BIND_ADDRESS": "127.0.0.1",
        "FACEBLUR_LOG_LEVEL": "INFO",
        "HOME": str(Path.home()),
    }
    process = OperatorProcess(env, workdir / "operator.log", health_port, metrics_port)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace(
    test_cluster: TestCluster, s3_server: S3Server, operator: OperatorProcess, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace with the S3 credentials Secret the defaults name."""
    name = namespace_name("op", request.node.name, limit=50)
    yield make_namespace(test_cluster, s3_server, name)
    test_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
