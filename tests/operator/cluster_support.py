"""The operator as a real subprocess against the test cluster, and helpers to drive FaceBlurJobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, cast

import kube_support
import yaml
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import wait_until
from faceblur_testenv.s3 import S3Server
from kube_support import JSON, new_namespace
from kube_support import job_doc as job_doc  # test_operator_cluster imports it from here

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests" / "crd" / "faceblurjobs.yaml"
EXAMPLES = ROOT / "manifests" / "examples"
OPERATOR = Path(sys.executable).parent / "faceblur-operator"
SECRET = "s3-credentials"
BUCKET = "faceblur"  # the examples' bucket
JOB_TIMEOUT_S = 240.0


class OperatorProcess:
    """`faceblur-operator` with the test kubeconfig, started and killed by its own pid."""

    def __init__(self, env: dict[str, str], log_path: Path, health_port: int, metrics_port: int) -> None:
        self.env = env
        self.log_path = log_path
        self.health_port = health_port
        self.metrics_port = metrics_port
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            self.process = subprocess.Popen(
                [str(OPERATOR)], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until("the operator to be ready", self.ready, timeout_s=60)

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"the operator exited; log {self.log_path}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def kill(self) -> None:
        """SIGKILL: no goodbye, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def kubectl_json(cluster: TestCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def example(name: str) -> JSON:
    doc: JSON = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def apply(cluster: TestCluster, namespace: str, *docs: JSON) -> None:
    """kube_support.apply into namespace, the argument order the operator's tests call it with."""
    kube_support.apply(cluster, *docs, namespace=namespace)


def get_fbj(cluster: TestCluster, namespace: str, name: str) -> JSON:
    return cast(JSON, kubectl_json(cluster, "get", "faceblurjob", name, "-n", namespace))


def wait_phase(
    cluster: TestCluster, namespace: str, name: str, phase: str, timeout_s: float = JOB_TIMEOUT_S
) -> JSON:
    """Wait for a phase; a job that ends in the other terminal phase fails at once with its message."""
    terminal = {"Succeeded", "Failed"} - {phase}

    def probe() -> JSON | None:
        doc = get_fbj(cluster, namespace, name)
        status = doc.get("status") or {}
        if status.get("phase") in terminal:
            raise AssertionError(
                f"{name} ended {status.get('phase')} instead of {phase}: {status.get('message')}"
            )
        return doc if status.get("phase") == phase else None

    found: JSON = wait_until(
        f"FaceBlurJob {namespace}/{name} to be {phase}", probe, timeout_s=timeout_s, interval_s=0.5
    )
    return found


def jobs_of(cluster: TestCluster, namespace: str, uid: str) -> list[JSON]:
    items: list[JSON] = kubectl_json(
        cluster, "get", "jobs", "-n", namespace, "-l", f"faceblur.dev/job-uid={uid}"
    )["items"]
    return items


def stage_pods(cluster: TestCluster, namespace: str, stage: str) -> list[JSON]:
    """The pods of one stage (split, work, compose) in a namespace, as the API has them."""
    items: list[JSON] = kubectl_json(
        cluster, "get", "pods", "-n", namespace, "-l", f"faceblur.dev/stage={stage}"
    )["items"]
    return items


def set_suspend(cluster: TestCluster, namespace: str, job: str, suspend: bool) -> None:
    patch = json.dumps({"spec": {"suspend": suspend}})
    cluster.kubectl("patch", "job", job, "-n", namespace, "--type=merge", "-p", patch)


def admit(cluster: TestCluster, namespace: str, job: str, timeout_s: float = 60) -> None:
    """Play Kueue: wait for the suspended Job, then let it run."""
    wait_until(
        f"Job {namespace}/{job}",
        lambda: cluster.kubectl("get", "job", job, "-n", namespace, check=False).returncode == 0,
        timeout_s=timeout_s,
    )
    set_suspend(cluster, namespace, job, False)


def wait_for(what: str, probe: Any, timeout_s: float = 60) -> Any:
    return wait_until(what, probe, timeout_s=timeout_s, interval_s=0.5)


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f}s"


def make_namespace(test_cluster: TestCluster, s3_server: S3Server, name: str) -> str:
    """Create a namespace with the S3 credentials Secret the defaults name; returns its name."""
    new_namespace(test_cluster, name)
    keys = (
        f"--from-literal=accessKey={s3_server.access_key}",
        f"--from-literal=secretKey={s3_server.secret_key}",
    )
    test_cluster.kubectl("create", "secret", "generic", SECRET, "-n", name, *keys)
    return name
