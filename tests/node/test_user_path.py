"""The user's path on the real node, as the README tells it: `helm install` the chart with an existing S3
store (credentials in a Secret), the operator as the chart's Deployment (its image, ServiceAccount, RBAC,
in-cluster configuration), then `kubectl apply -f manifests/examples/cpu.yaml` and `debug.yaml` as they
are, `kubectl get fbj` until Succeeded, and the output checked for frame count and sharp faces. Then the
chart's MinIO variant (`--set minio.enabled=true`, the workers reaching MinIO by its Service name through
the cluster DNS), and the kind quickstart's steps (hack/node-demo.sh, sharing hack/demo-steps.sh with
hack/kind-demo.sh: all of the quickstart but `kind create` and `docker build`).

The images are the ones scripts/build-images.sh makes, imported into the session node's containerd; the
user's own S3 store listens on the bridge address so pods reach it (an IP endpoint). The README's namespace
holds one variant at a time: `installed` switches between them (uninstall, namespace deleted) and removes
the last when the module is done, leaving the session's cluster as it found it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from chart_minio_support import ChartMinio, InstalledRelease, chart_minio, install_with_minio, run_node_demo
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.devcluster import SAMPLE
from faceblur_testenv.images import ensure_images
from faceblur_testenv.measure import frames_with_a_recognisable_face, frames_with_a_sharp_face
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary
from user_path_support import NAMESPACE, check_cpu_example, install_chart, run_example, upload_sample

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def installed(node_cluster: TestCluster, worker_images: dict[str, str]) -> Iterator[InstalledRelease]:
    """The variant the README's namespace holds; none once the module is done. The chart's MinIO image
    is imported into the session's node here (its worker images are already there)."""
    assert node_cluster.node is not None
    for image in ensure_images(["minio"]):
        node_cluster.node.import_image(image.archive)
    installed = InstalledRelease(node_cluster)
    try:
        yield installed
    finally:
        installed.remove()


@pytest.fixture
def release(node_cluster: TestCluster, s3: S3Server, installed: InstalledRelease) -> str:
    """The README's three commands, with only what this node needs: the image tag, small requests."""
    installed.use(
        "external S3", lambda: print(f"helm install to Available: {install_chart(node_cluster, s3):.1f}s")
    )
    return "faceblur"


@pytest.fixture
def minio_release(node_cluster: TestCluster, installed: InstalledRelease) -> Iterator[ChartMinio]:
    """docs/deploy.md's install with the chart's MinIO, reached as the chart's NOTES tell."""
    installed.use(
        "minio", lambda: print(f"helm install (MinIO) to Available: {install_with_minio(node_cluster):.1f}s")
    )
    with chart_minio(node_cluster) as store:
        yield store


def test_cpu_example_blurs_every_face(
    node_cluster: TestCluster, s3: S3Server, release: str, sample: FaceVideo, tmp_path: Path
) -> None:
    check_cpu_example(node_cluster, s3, sample, tmp_path / "people-cpu.mp4")


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


def test_chart_minio_variant_blurs_every_face(
    node_cluster: TestCluster, minio_release: ChartMinio, tmp_path: Path
) -> None:
    """The workers reach the in-chart MinIO at faceblur-minio.faceblur-system.svc:9000 (the chart's default
    endpoint) with its Secret: resolved by the cluster DNS, routed by kube-proxy."""
    sample = upload_sample(minio_release, tmp_path / "videos")
    check_cpu_example(node_cluster, minio_release, sample, tmp_path / "people-cpu.mp4")
    defaults = json.loads(
        node_cluster.kubectl("-n", NAMESPACE, "get", "configmap", "faceblur-defaults", "-o", "json").stdout
    )
    storage = yaml.safe_load(defaults["data"]["defaults.yaml"])["storage"]
    assert storage["endpoint"] == "faceblur-minio.faceblur-system.svc:9000", (
        "a name only the cluster DNS knows"
    )


def test_kind_quickstart_steps_on_the_node(
    node_cluster: TestCluster, installed: InstalledRelease, tmp_path: Path
) -> None:
    """hack/node-demo.sh with a video of known faces: the chart with MinIO on NodePort 30900, upload, the
    cpu example, Succeeded, download, as hack/kind-demo.sh does after `kind create` and `docker build`."""
    installed.use("quickstart", lambda: None)  # the script installs (helm upgrade --install) itself
    sample = VideoLibrary(tmp_path / "videos").get(SAMPLE)
    done = run_node_demo(node_cluster, tmp_path / "demo", sample.path)
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stderr[-3000:]
    result = tmp_path / "demo" / "people-cpu.blurred.mp4"
    assert f"Anonymized video: {result}" in done.stdout
    assert frames_with_a_sharp_face(sample, result, max_ratio=0.25) == []
