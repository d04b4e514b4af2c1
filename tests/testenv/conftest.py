"""A fresh namespace per test, on the session's test cluster."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import wait_until
from testenv_support import get

_numbers = itertools.count()


@pytest.fixture
def namespace(test_cluster: TestCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    label = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    name = f"te-{next(_numbers)}-{label}"[:63].rstrip("-")
    test_cluster.api.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    # Pods are refused until the service-account controller has made the namespace's "default" account.
    wait_until(
        f"service account {name}/default",
        lambda: get(test_cluster, f"/api/v1/namespaces/{name}/serviceaccounts/default"),
        timeout_s=30,
    )
    yield name
    test_cluster.api.delete(f"/api/v1/namespaces/{name}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show how long the control plane took to start (move to the root conftest to see it in every run)."""
    for line in TestCluster.startup_reports:
        terminalreporter.write_line(line)
