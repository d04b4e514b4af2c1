"""A fresh namespace per test, on the session's test cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from faceblur_testenv.cluster import TestCluster
from kube_support import namespace_name, new_namespace


@pytest.fixture
def namespace(test_cluster: TestCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = new_namespace(test_cluster, namespace_name("te", request.node.name))
    yield name
    test_cluster.api.delete(f"/api/v1/namespaces/{name}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show how long the control plane took to start (move to the root conftest to see it in every run)."""
    for line in TestCluster.startup_reports:
        terminalreporter.write_line(line)
