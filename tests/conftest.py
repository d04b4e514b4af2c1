"""Fixtures shared by every test tier: the real S3 server and the session's real cluster.

All are session-scoped and started lazily, so a run that needs none starts none. The cluster is one
control plane with the real node (one per machine: it holds the host's node lock while it lives);
`worker_images` imports the project's worker images into it (built first when stale), `cluster_s3` is
an S3 server on the pod bridge that pods reach; tests isolate themselves by namespace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kube_support import real_node_missing

if TYPE_CHECKING:
    from faceblur_testenv.cluster import TestCluster
    from faceblur_testenv.s3 import S3Server
    from faceblur_testenv.videos import VideoLibrary

# What worker_images imports: the operator tests' defaults name both (faceblur/worker:test, and
# faceblur/worker-gpu:test for jobs asking for GPUs).
WORKER_IMAGES = ("worker", "worker-gpu")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip what needs the session cluster where no node can start. Run what holds the host first
    (HOST_TIERS: the longest part of a run, on one xdist worker while another takes the rest), and of
    it the session cluster's tests last: modules that start a node of their own (tests/node) must be
    done before the session's node takes the host lock."""
    reason = real_node_missing()
    if reason:
        for item in items:
            if "test_cluster" in item.fixturenames:
                item.add_marker(pytest.mark.skip(reason=reason))
    items.sort(
        key=lambda item: (item.get_closest_marker("xdist_group") is None, "test_cluster" in item.fixturenames)
    )


# Test tiers, from the fixtures a test uses (its whole fixture closure): `pytest -m unit` runs what
# needs no server, tool build, cluster, node or video encoding; then `-m media`, `-m s3`, `-m tools`,
# `-m cluster`, `-m node`, `-m images`. A test that needs one without a fixture saying so is marked.
TIER_FIXTURES = {
    "s3": ("s3_server", "cluster_s3", "s3"),
    "media": ("videos", "sample", "video", "cat_clip", "square_video", "hidden_face", "failing"),
    "cluster": ("test_cluster",),
    "node": ("node_cluster",),
    "tools": ("helm", "applied"),
}
TIERS = (*TIER_FIXTURES, "images")  # images: marked by its module (buildah builds, no fixture says so)
# Tiers that use the machine's one node: their tests run one at a time, in one xdist group
# (scripts/test.sh runs two workers: this group, mostly waiting on pods, on one; the CPU-bound rest,
# image and tool builds included, on the other: the build scripts take a lock of their own).
HOST_TIERS = frozenset({"cluster", "node"})


def tiers_of(fixtures: Iterable[str], markers: Iterable[str]) -> set[str]:
    """The tiers of a test using `fixtures` and marked `markers`; "unit" when it needs none."""
    used, marked = set(fixtures), set(markers)
    tiers = {tier for tier, names in TIER_FIXTURES.items() if used.intersection(names)}
    tiers |= marked.intersection(TIERS)
    if "slow" in marked:
        tiers.add("media")  # end-to-end runs over real videos
    return tiers or {"unit"}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under xdist's loadgroup, every test of the host group must carry it in its node id (how xdist
    schedules a group onto one worker); where it does not, two workers would each wait for the node
    the other holds: stop at once instead."""
    if session.config.getoption("dist", None) != "loadgroup" or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"xdist did not group {lost[0]} (and {len(lost) - 1} more): this pytest and pytest-xdist do"
            " not honour xdist_group (pytest-dev/pytest-xdist#1386); install requirements-dev.txt's"
            " versions, or run in one process (-n 0)"
        )


def pytest_itemcollected(item: pytest.Item) -> None:
    tiers = tiers_of(getattr(item, "fixturenames", ()), (m.name for m in item.iter_markers()))
    for tier in sorted(tiers):
        item.add_marker(tier)
    if tiers & HOST_TIERS:
        item.add_marker(pytest.mark.xdist_group("host"))


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> VideoLibrary:
    """`videos.get(VideoSpec(...))` makes (once per session) a real face video and its known boxes."""
    from faceblur_testenv.videos import VideoLibrary

    return VideoLibrary(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    from faceblur_testenv.s3 import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# The images the session node imported at start: name -> reference.
_IMPORTED: dict[str, str] = {}
# The session cluster once started, and why it broke (once a failing test found it broken).
_SESSION: list[TestCluster] = []
_BROKEN: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """After a failure on the session cluster, ask whether the cluster itself broke; if it did, say so at
    once (the reason lands beside the progress dots) and let later tests on it fail fast (see below)."""
    report: pytest.TestReport = yield
    if report.failed and _SESSION and not _BROKEN and "test_cluster" in getattr(item, "fixturenames", ()):
        problems = _SESSION[0].health_problems()
        if problems:
            _BROKEN.append(f"the session cluster broke during {item.nodeid}:\n" + "\n".join(problems))
            reporter = item.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line("")
                reporter.write_line(_BROKEN[0], red=True)
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A broken session cluster fails what would use it at once, not after each test's timeouts."""
    if _BROKEN and "test_cluster" in item.fixturenames:
        pytest.fail(_BROKEN[0], pytrace=False)


@pytest.fixture(scope="session")
def test_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestCluster]:
    """When a selected test uses worker_images, they are built (minutes when stale) before the node
    starts and imported as it starts, so the node's host lock is not held through an image build."""
    from faceblur_testenv.cluster import TestCluster
    from faceblur_testenv.images import ensure_images

    wanted = any("worker_images" in item.fixturenames for item in request.session.items)
    started = time.monotonic()
    images = ensure_images(list(WORKER_IMAGES)) if wanted else []
    if images:
        print(f"worker images built/found in {time.monotonic() - started:.1f}s")
    cluster = TestCluster(Path(tmp_path_factory.mktemp("cluster")), node_images=[i.archive for i in images])
    cluster.start()
    _IMPORTED.update({image.name: image.reference for image in images})
    _SESSION.append(cluster)
    if cluster.node is not None:
        print(f"session node start timings: {cluster.node.timings}")
    try:
        yield cluster
    finally:
        _SESSION.clear()
        cluster.stop()


@pytest.fixture(scope="session")
def worker_images(test_cluster: TestCluster) -> dict[str, str]:
    """The worker images in the session node's containerd, as `kind load` puts them there: name -> ref."""
    from faceblur_testenv.images import ensure_images

    assert test_cluster.node is not None
    if not set(WORKER_IMAGES) <= set(_IMPORTED):  # asked for after start (getfixturevalue)
        for image in ensure_images(list(WORKER_IMAGES)):
            test_cluster.node.import_image(image.archive)
            _IMPORTED[image.name] = image.reference
    return dict(_IMPORTED)


@pytest.fixture(scope="session")
def cluster_s3(test_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The S3 server the session cluster's pods use: on the bridge address (no cluster DNS needed)."""
    from faceblur_testenv.s3 import S3Server

    server = S3Server(tmp_path_factory.mktemp("cluster-s3"), bind_ip=test_cluster.bind_ip)
    server.start()
    try:
        yield server
    finally:
        server.stop()
