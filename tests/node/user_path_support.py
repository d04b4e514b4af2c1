"""What the user-path modules share: an S3 store pods reach, the chart installed as the README says, and
the examples run as a user runs them (`kubectl apply -f`, `kubectl get fbj` until Succeeded, download)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol

import minio
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.devcluster import BUCKET as BUCKET  # re-exported for the user-path modules
from faceblur_testenv.devcluster import CHART, SAMPLE, chart_settings
from faceblur_testenv.devcluster import INPUT_KEY as INPUT_KEY
from faceblur_testenv.devcluster import NAMESPACE as NAMESPACE
from faceblur_testenv.devcluster import SECRET as SECRET
from faceblur_testenv.devcluster import SMALL_REQUESTS as SMALL_REQUESTS
from faceblur_testenv.images import REPO_ROOT
from faceblur_testenv.measure import frames_with_a_sharp_face
from faceblur_testenv.polling import wait_until
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo, VideoLibrary

JOB_TIMEOUT_S = 600
RELEASE = "faceblur"  # the README's release name


class Store(Protocol):
    """An S3 store the test reaches from the host: the user's own (S3Server) or the chart's MinIO."""

    def client(self) -> minio.Minio: ...


@contextmanager
def s3_on_the_bridge(cluster: TestCluster, workdir: Path) -> Iterator[S3Server]:
    """The user's "existing S3 store", on the bridge address so pods reach it, with the examples' bucket."""
    server = S3Server(workdir, bind_ip=cluster.bind_ip)
    server.start()
    try:
        server.make_bucket(BUCKET)
        yield server
    finally:
        server.stop()


def create_secret(cluster: TestCluster, s3: S3Server, create_namespace: bool = True) -> None:
    """The README's first two commands: the namespace (unless the manifests made it) and the store's keys."""
    if create_namespace:
        cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        SECRET,
        f"--from-literal=accessKey={s3.access_key}",
        f"--from-literal=secretKey={s3.secret_key}",
    )


def wait_operator_available(cluster: TestCluster) -> None:
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Available",
        "deployment/faceblur-operator",
        "--timeout=180s",
        timeout=200,
    )


def helm_release(cluster: TestCluster, *command: str, values: Sequence[str], timeout: float = 300) -> None:
    """`helm COMMAND... faceblur charts/faceblur -n faceblur-system`, each of values (`key=value`) a --set."""
    sets = (arg for value in values for arg in ("--set", value))
    cluster.helm(*command, RELEASE, str(CHART), "-n", NAMESPACE, *sets, timeout=timeout)


def install_chart(cluster: TestCluster, s3: S3Server, *sets: str) -> float:
    """The README's three commands with what this node needs (devcluster.chart_settings, as
    `faceblur-testenv up` prints them) plus sets (`key=value`); seconds until the operator is Available."""
    started = time.monotonic()
    create_secret(cluster, s3)
    helm_release(cluster, "install", values=[*chart_settings(s3.url), *sets])
    wait_operator_available(cluster)
    return time.monotonic() - started


def upload_sample(s3: Store, root: Path) -> FaceVideo:
    video = VideoLibrary(root).get(SAMPLE)
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


def run_example(cluster: TestCluster, s3: Store, name: str, job: str, output: Path) -> dict[str, str]:
    """Apply the example as it is, wait for Succeeded by its columns, download its output to output."""
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


def check_cpu_example(cluster: TestCluster, s3: Store, sample: FaceVideo, output: Path) -> None:
    """manifests/examples/cpu.yaml run to Succeeded in its 4 chunks: every face of the sample covered."""
    seen = run_example(cluster, s3, "cpu", "people-cpu", output)
    assert seen["PROGRESS"] == "4/4"
    assert int(seen["FACES"]) >= sample.frame_count
    assert frames_with_a_sharp_face(sample, output, max_ratio=0.25) == []
