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
from datetime import datetime
from pathlib import Path

import pytest
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.images import REPO_ROOT, ensure_images
from faceblur_testenv.measure import frames_with_a_recognisable_face, frames_with_a_sharp_face
from faceblur_testenv.polling import wait_until
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary, VideoSpec

pytestmark = pytest.mark.node

NAMESPACE = "faceblur-system"  # the README's; the examples name none, so they go where -n says
SECRET = "faceblur-s3"
BUCKET = "faceblur"  # what the examples name
INPUT_KEY = "samples/people.mp4"
SAMPLE = VideoSpec(frames=40, gop=10)  # astronaut, 320x240, 1.6 s, a keyframe every 10 frames
JOB_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    (worker,) = ensure_images(["worker"])
    cluster = TestCluster(
        Path(tmp_path_factory.mktemp("user-path-cluster")), real_node=True, node_images=[worker.archive]
    )
    cluster.start()
    assert cluster.node is not None
    print(f"node start timings: {cluster.node.timings}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def s3(node_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("user-path-s3"), bind_ip=node_cluster.bind_ip)
    server.start()
    server.make_bucket(BUCKET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def release(node_cluster: TestCluster, s3: S3Server) -> str:
    """The README's three commands, with only what this node needs: the image tag, small requests."""
    started = time.monotonic()
    node_cluster.kubectl("create", "namespace", NAMESPACE)
    node_cluster.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        SECRET,
        f"--from-literal=accessKey={s3.access_key}",
        f"--from-literal=secretKey={s3.secret_key}",
    )
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
        # The node has 2 CPUs; the default 1 CPU per job pod would run one worker at a time.
        "--set",
        "defaults.resources.requests.cpu=500m",
        "--set",
        "defaults.resources.requests.memory=512Mi",
    )
    node_cluster.kubectl(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Available",
        "deployment/faceblur-operator",
        "--timeout=180s",
        timeout=200,
    )
    print(f"helm install to Available: {time.monotonic() - started:.1f}s")
    return "faceblur"


@pytest.fixture(scope="module")
def sample(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> FaceVideo:
    video = VideoLibrary(tmp_path_factory.mktemp("user-path-videos")).get(SAMPLE)
    s3.client().fput_object(BUCKET, INPUT_KEY, str(video.path))
    return video


def example(name: str) -> Path:
    return Path(REPO_ROOT, "manifests", "examples", f"{name}.yaml")


def columns(cluster: TestCluster, job: str) -> dict[str, str]:
    """`kubectl get fbj JOB` as a user reads it: header names to values."""
    header, row = cluster.kubectl("-n", NAMESPACE, "get", "fbj", job).stdout.splitlines()[:2]
    return dict(zip(header.split(), row.split(), strict=False))


def wait_succeeded(cluster: TestCluster, job: str) -> dict[str, str]:
    def probe() -> dict[str, str] | None:
        seen = columns(cluster, job)
        if seen.get("PHASE") == "Failed":
            described = cluster.kubectl("-n", NAMESPACE, "describe", "fbj", job, check=False).stdout
            raise AssertionError(f"{job} Failed: {seen}\n{described}")
        return seen if seen.get("PHASE") == "Succeeded" else None

    return dict(wait_until(f"FaceBlurJob {job} Succeeded", probe, timeout_s=JOB_TIMEOUT_S, interval_s=2))


def pod_start_latencies(cluster: TestCluster, instance: str) -> dict[str, float]:
    """Seconds from each pod's creation to its first container's start (the API's second resolution)."""
    pods = cluster.api.get(
        f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": f"app.kubernetes.io/instance={instance}"}
    )["items"]
    found: dict[str, float] = {}
    for pod in pods:
        created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"])
        for status in pod.get("status", {}).get("containerStatuses", []):
            state = status.get("state", {})
            started = (state.get("terminated") or state.get("running") or {}).get("startedAt")
            if started:
                found[pod["metadata"]["name"]] = (datetime.fromisoformat(started) - created).total_seconds()
    return found


def run_example(cluster: TestCluster, s3: S3Server, name: str, job: str, output: Path) -> dict[str, str]:
    started = time.monotonic()
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", str(example(name)))
    seen = wait_succeeded(cluster, job)
    print(f"{job}: Succeeded in {time.monotonic() - started:.1f}s, columns {seen}")
    print(f"{job}: pod start latencies (s) {pod_start_latencies(cluster, job)}")
    output_key = cluster.kubectl(
        "-n", NAMESPACE, "get", "fbj", job, "-o", "jsonpath={.spec.output.key}"
    ).stdout
    s3.client().fget_object(BUCKET, output_key, str(output))
    return seen


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
