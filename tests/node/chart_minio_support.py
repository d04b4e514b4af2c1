"""The chart with its MinIO on the real node: installed as docs/deploy.md tells it, reached from the host as
the chart's NOTES tell users (`kubectl port-forward svc/faceblur-minio`, the keys from its Secret), and the
quickstart's own steps (hack/node-demo.sh, which shares hack/demo-steps.sh with hack/kind-demo.sh).

The workers find this MinIO by its Service name (`faceblur-minio.faceblur-system.svc:9000`, the chart's
default endpoint), so these tests go through the cluster DNS; only the images are this node's: the
locally built worker and MinIO (docker.io/faceblur/{worker,minio}:test), imported, never pulled."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import minio
import minio.error
import urllib3
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.devcluster import BUCKET, NAMESPACE, SMALL_REQUESTS
from faceblur_testenv.images import REPO_ROOT
from faceblur_testenv.polling import wait_until
from user_path_support import RELEASE, helm_release, wait_operator_available

MINIO = f"{RELEASE}-minio"  # the chart's MinIO Deployment, Service and Secret
NODE_DEMO = REPO_ROOT / "hack" / "node-demo.sh"
# What this node needs beyond the README's command: its images' names (built here, no registry: the
# chart's defaults name the published ghcr.io/faceblur/faceblur-* images) and small requests.
MINIO_SETTINGS = [
    "image.repository=faceblur/worker",
    "image.tag=test",
    "minio.image.repository=faceblur/minio",
    "minio.image.tag=test",
    f"defaults.resources.requests.cpu={SMALL_REQUESTS['cpu']}",
    f"defaults.resources.requests.memory={SMALL_REQUESTS['memory']}",
]


class InstalledRelease:
    """Which variant of the chart the README's namespace holds. It holds one release at a time (each
    variant's operator serves every namespace), so tests of one variant share its install and asking
    for another removes the first: `helm uninstall`, then the namespace with what it holds."""

    def __init__(self, cluster: TestCluster) -> None:
        self.cluster = cluster
        self.variant: str | None = None

    def use(self, variant: str, install: Callable[[], object]) -> None:
        if self.variant == variant:
            return
        if self.variant is not None:
            self.remove()
        self.variant = variant  # set first: a failed install is removed by the next switch
        install()

    def remove(self) -> None:
        self.cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False, timeout=300)
        self.cluster.kubectl(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=240s", timeout=260
        )
        self.variant = None


def install_with_minio(cluster: TestCluster) -> float:
    """docs/deploy.md's `helm install ... --create-namespace --set minio.enabled=true` with this node's
    settings; it returns once the bucket hook has run (helm waits for hooks), seconds until Available."""
    started = time.monotonic()
    helm_release(
        cluster, "install", "--create-namespace", values=["minio.enabled=true", *MINIO_SETTINGS], timeout=600
    )
    wait_operator_available(cluster)
    return time.monotonic() - started


def secret_value(cluster: TestCluster, key: str) -> str:
    encoded = cluster.kubectl(
        "-n", NAMESPACE, "get", "secret", MINIO, "-o", f"jsonpath={{.data.{key}}}"
    ).stdout
    return base64.b64decode(encoded).decode()


@dataclass(frozen=True)
class ChartMinio:
    """The chart's MinIO as a user on the host reaches it: a port-forward and the keys of its Secret."""

    endpoint: str
    access_key: str
    secret_key: str

    def client(self) -> minio.Minio:
        return minio.Minio(self.endpoint, self.access_key, self.secret_key, secure=False, region="us-east-1")


@contextmanager
def port_forward(cluster: TestCluster, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward TARGET :PORT` (as the chart's NOTES tell) while inside; yields host:port.
    Its output goes to a file (it prints a line per connection, which would fill an unread pipe)."""
    assert cluster.bin_dir is not None
    argv = [str(cluster.bin_dir / "kubectl"), "-n", NAMESPACE, "port-forward", target, f":{port}"]
    log = cluster.workdir / "logs" / f"port-forward-{target.replace('/', '-')}-{time.monotonic_ns()}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **cluster.env()}
        )
    try:

        def forwarding() -> str | None:
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", log.read_text())
            if found is None and proc.poll() is not None:
                raise AssertionError(
                    f"kubectl port-forward {target} exited {proc.returncode}: {log.read_text()}"
                )
            return found.group(1) if found else None

        yield f"127.0.0.1:{wait_until(f'kubectl port-forward {target}', forwarding, 60)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def chart_minio(cluster: TestCluster) -> Iterator[ChartMinio]:
    """The chart's MinIO reachable from here, once its Deployment is Available."""
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Available",
        f"deployment/{MINIO}",
        "--timeout=180s",
        timeout=200,
    )
    with port_forward(cluster, f"svc/{MINIO}", 9000) as endpoint:
        store = ChartMinio(endpoint, secret_value(cluster, "accessKey"), secret_value(cluster, "secretKey"))

        def answers() -> bool:
            try:
                return bool(store.client().bucket_exists(BUCKET))
            except (minio.error.MinioException, OSError, urllib3.exceptions.HTTPError):
                return False

        wait_until(f"the chart's MinIO with the bucket {BUCKET} through the port-forward", answers, 60)
        yield store


def run_node_demo(cluster: TestCluster, out: Path, video: Path) -> subprocess.CompletedProcess[str]:
    """hack/node-demo.sh VIDEO as a user runs it (KUBECONFIG, kubectl and helm on PATH), with this
    node's small requests; its output goes to out."""
    small = " ".join(f"--set defaults.resources.requests.{k}={v}" for k, v in SMALL_REQUESTS.items())
    env = {
        **os.environ,
        **cluster.env(),
        "FACEBLUR_DEMO_OUT": str(out),
        "FACEBLUR_DEMO_TIMEOUT": "600",
        "FACEBLUR_DEMO_HELM_ARGS": small,
    }
    return subprocess.run(
        ["bash", str(NODE_DEMO), str(video)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
