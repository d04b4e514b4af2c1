"""Fixtures shared by every test tier: the real S3 server and the real control plane.

Both are session-scoped and started lazily, so a run that needs neither starts neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from faceblur_testenv.cluster import TestCluster
    from faceblur_testenv.s3 import S3Server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    from faceblur_testenv.s3 import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def test_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    from faceblur_testenv.cluster import TestCluster

    cluster = TestCluster(Path(tmp_path_factory.mktemp("cluster")))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
