"""The real node's tests: they need root, containerd, runc and the CNI plugins (scripts/install-deps.sh
--cluster).

Most share the session's cluster and its node (tests/conftest.py), each test in a namespace it deletes
and each user-path module removing what it installed. The modules that must break or restart a node start
their own: test_node_gpus (restarts the kubelet) and test_node_lifecycle (stops and crashes nodes); one
node at a time can run on a machine, so they run before the session's node starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo
from kube_support import namespace_name, new_namespace, real_node_missing
from user_path_support import s3_on_the_bridge, upload_sample


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = real_node_missing()
    for item in items:
        if reason and item.get_closest_marker("node") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def node_cluster(test_cluster: TestCluster) -> TestCluster:
    """The session's cluster with its real node; a module that must break its node overrides this."""
    assert test_cluster.node is not None
    return test_cluster


@pytest.fixture
def node_namespace(node_cluster: TestCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = new_namespace(node_cluster, namespace_name("nd", request.node.name))
    yield name
    node_cluster.api.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="module")
def s3(node_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The module's "existing S3 store" of the user, on the bridge address so pods reach it."""
    with s3_on_the_bridge(node_cluster, tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def sample(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> FaceVideo:
    """The examples' input, a short video of known faces, in the store."""
    return upload_sample(s3, tmp_path_factory.mktemp("videos"))
