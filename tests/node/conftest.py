"""The real node's tests: they need root, containerd, runc and the CNI plugins (scripts/install-deps.sh
--cluster); each module that starts a node says so, since one node at a time can run on a machine."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator

import pytest
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import wait_until

_numbers = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [tool for tool in ("containerd", "runc", "iptables", "ctr") if shutil.which(tool) is None]
    reason = ""
    if os.geteuid() != 0:
        reason = "the real node needs root"
    elif missing:
        reason = f"the real node needs {', '.join(missing)} (scripts/install-deps.sh --cluster)"
    for item in items:
        if reason and item.get_closest_marker("node") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def new_namespace(cluster: TestCluster, label: str) -> str:
    name = f"nd-{next(_numbers)}-{re.sub(r'[^a-z0-9]+', '-', label.lower())}"[:63].rstrip("-")
    cluster.api.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    wait_until(
        f"service account {name}/default",
        lambda: cluster.api.get(f"/api/v1/namespaces/{name}/serviceaccounts").get("items"),
        timeout_s=30,
    )
    return name


@pytest.fixture
def node_namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    cluster: TestCluster = request.getfixturevalue("node_cluster")
    name = new_namespace(cluster, request.node.name.removeprefix("test_"))
    yield name
    cluster.api.delete(f"/api/v1/namespaces/{name}")
