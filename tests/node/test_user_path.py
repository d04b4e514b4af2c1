"""The user's path on the real node, as the README tells it: `helm install` the chart with an existing S3
store (credentials in a Secret), the operator as the chart's Deployment (its image, ServiceAccount, RBAC,
in-cluster configuration), then `kubectl apply -f manifests/examples/cpu.yaml` and `debug.yaml` as they
are, `kubectl get fbj` until Succeeded, and the output checked for frame count and sharp faces.

The worker image is the one scripts/build-images.sh makes (imported into the node's containerd at start),
the S3 store listens on the bridge address so pods reach it (no cluster DNS here: an IP endpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.images import REPO_ROOT
from faceblur_testenv.measure import frames_with_a_recognisable_face, frames_with_a_sharp_face
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo
from user_path_support import (
    NAMESPACE,
    SECRET,
    SMALL_REQUESTS,
    create_secret,
    node_with_worker_image,
    run_example,
    s3_on_the_bridge,
    upload_sample,
    wait_operator_available,
)

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with node_with_worker_image(Path(tmp_path_factory.mktemp("user-path-cluster"))) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def s3(node_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_on_the_bridge(node_cluster, tmp_path_factory.mktemp("user-path-s3")) as server:
        yield server


@pytest.fixture(scope="module")
def release(node_cluster: TestCluster, s3: S3Server) -> str:
    """The README's three commands, with only what this node needs: the image tag, small requests."""
    started = time.monotonic()
    create_secret(node_cluster, s3)
    node_cluster.helm(
        "install",
        "faceblur",
        str(REPO_ROOT / "charts" / "faceblur"),
        "-n",
        NAMESPACE,
        "--set",
        f"defaults.storage.endpoint={s3.url}",
        "--set",
        f"defaults.storage.credentialsSecret.name={SECRET}",
        "--set",
        "image.tag=test",
        "--set",
        "defaults.images.pullPolicy=Never",
        "--set",
        f"defaults.resources.requests.cpu={SMALL_REQUESTS['cpu']}",
        "--set",
        f"defaults.resources.requests.memory={SMALL_REQUESTS['memory']}",
    )
    wait_operator_available(node_cluster)
    print(f"helm install to Available: {time.monotonic() - started:.1f}s")
    return "faceblur"


@pytest.fixture(scope="module")
def sample(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> FaceVideo:
    return upload_sample(s3, tmp_path_factory.mktemp("user-path-videos"))


def test_cpu_example_blurs_every_face(
    node_cluster: TestCluster, s3: S3Server, release: str, sample: FaceVideo, tmp_path: Path
) -> None:
    seen = run_example(node_cluster, s3, "cpu", "people-cpu", tmp_path / "people-cpu.mp4")
    assert seen["PROGRESS"] == "4/4"
    assert int(seen["FACES"]) >= sample.frame_count
    assert frames_with_a_sharp_face(sample, tmp_path / "people-cpu.mp4", max_ratio=0.25) == []


def test_debug_example_pixelates_every_face_and_keeps_its_debug_files(
    node_cluster: TestCluster, s3: S3Server, release: str, sample: FaceVideo, tmp_path: Path
) -> None:
    seen = run_example(node_cluster, s3, "debug", "people-debug", tmp_path / "people-debug.mp4")
    assert seen["PROGRESS"] == "3/3"
    # A mosaic's block edges are sharp, so this example is judged by the detail left in place.
    assert frames_with_a_recognisable_face(sample, tmp_path / "people-debug.mp4", max_kept=0.25) == []
    debug = json.loads(
        node_cluster.kubectl(
            "-n", NAMESPACE, "get", "fbj", "people-debug", "-o", "jsonpath={.status.debug}"
        ).stdout
    )
    for url in (debug["video"], debug["contactSheet"]):
        bucket, key = url.removeprefix("s3://").split("/", 1)
        assert s3.client().stat_object(bucket, key).size, url
