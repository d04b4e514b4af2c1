"""The chart's RBAC is enough, and no more than needed: the real operator runs on the test cluster
with the token of the chart's own ServiceAccount, bound only by the chart's own Role, and takes a
small FaceBlurJob to Succeeded, its worker pods in the worker image on the session's real node. A verb
missing from the chart fails this test (the operator logs `forbidden` or never finishes); the grants the
test checks by hand keep the privileges small.

The operator is started namespaced (operator.watchNamespaces), so it only ever sees this test's
namespace and leaves other tests' jobs on the shared cluster alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.processes import free_ports
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary
from packaging_support import CHART, Helm, Manifest, defaults_text, one

pytestmark = pytest.mark.cluster

NAMESPACE = "fb-packaging-rbac"
BUCKET = "packaging"
JOB = "rbac-check"
OPERATOR_SA = "faceblur-operator"
TIMEOUT_S = 300
RETRY_START_S = 60


@dataclass(frozen=True)
class Installed:
    objects: list[Manifest]
    kubeconfig: Path
    defaults: Path


@pytest.fixture(scope="module")
def installed(
    test_cluster: TestCluster,
    worker_images: dict[str, str],
    helm: Helm,
    cluster_s3: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Installed:
    """CRD, namespace, the chart's RBAC, ServiceAccounts and defaults; a kubeconfig holding the SA's token."""
    work = tmp_path_factory.mktemp("rbac")
    objects = helm.template(
        f"operator.watchNamespaces={{{NAMESPACE}}}",
        "jobPolicy.enabled=false",  # cluster-wide admission objects are test_job_policy_cluster's to apply
        f"defaults.storage.endpoint={cluster_s3.url}",
        "defaults.storage.credentialsSecret.name=s3-credentials",
        "image.repository=faceblur/worker",  # the worker image worker_images imported, never pulled
        "image.tag=test",
        "defaults.images.pullPolicy=Never",
        "defaults.resources.requests.cpu=100m",  # the node's 2 CPUs hold both chunks' pods at once
        "defaults.resources.requests.memory=256Mi",
        namespace=NAMESPACE,
    )
    test_cluster.kubectl("apply", "-f", str(CHART / "crds" / "faceblurjobs.yaml"))
    test_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/faceblurjobs.faceblur.dev", "--timeout=60s"
    )
    test_cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    wanted = [o for o in objects if o["kind"] not in ("Deployment", "Service")]
    test_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted))
    test_cluster.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        "s3-credentials",
        f"--from-literal=accessKey={cluster_s3.access_key}",
        f"--from-literal=secretKey={cluster_s3.secret_key}",
    )
    token = test_cluster.kubectl(
        "-n", NAMESPACE, "create", "token", OPERATOR_SA, "--duration=2h"
    ).stdout.strip()
    admin = yaml.safe_load(test_cluster.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    kubeconfig = work / "operator-kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": OPERATOR_SA, "user": {"token": token}}],
                "contexts": [
                    {"name": "operator", "context": {"cluster": cluster["name"], "user": OPERATOR_SA}}
                ],
                "current-context": "operator",
            }
        )
    )
    defaults = work / "defaults.yaml"
    defaults.write_text(defaults_text(objects))
    return Installed(objects, kubeconfig, defaults)


def _operator_env(installed: Installed, health_port: int, metrics_port: int) -> dict[str, str]:
    """The environment the chart's Deployment gives the operator, with local paths and ports."""
    container = one(installed.objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[variable["name"]] = NAMESPACE
    env.update(
        FACEBLUR_DEFAULTS=str(installed.defaults),
        FACEBLUR_HEALTH_PORT=str(health_port),
        FACEBLUR_METRICS_PORT=str(metrics_port),
        FACEBLUR_BIND_ADDRESS="127.0.0.1",
        KUBECONFIG=str(installed.kubeconfig),
    )
    return env


@dataclass
class RunningOperator:
    process: subprocess.Popen[str]
    log: Path
    health_port: int
    metrics_port: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def operator(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    health_port, metrics_port = free_ports(2)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    container = one(installed.objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    command = [str(Path(sys.executable).parent / container["command"][0]), *container.get("args", [])]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, **_operator_env(installed, health_port, metrics_port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    running = RunningOperator(process, log, health_port, metrics_port)
    try:
        _wait_http(running, f"http://127.0.0.1:{health_port}/readyz")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_http(running: RunningOperator, url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(f"the operator exited with {running.process.returncode}:\n{running.text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer 200 within {timeout_s}s:\n{running.text()[-4000:]}")


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        text: str = answer.read().decode()
        return text


def _apply_job(test_cluster: TestCluster, name: str, input_key: str, output_key: str) -> None:
    job = {
        "apiVersion": "faceblur.dev/v1alpha1",
        "kind": "FaceBlurJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "input": {"bucket": BUCKET, "key": input_key},
            "output": {"bucket": BUCKET, "key": output_key},
            "chunking": {"chunks": 2},
            "parallelism": 2,
        },
    }
    test_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(job))


def _status(test_cluster: TestCluster, name: str) -> dict[str, Any]:
    current = test_cluster.kubectl("-n", NAMESPACE, "get", "faceblurjob", name, "-o", "yaml").stdout
    status: dict[str, Any] = yaml.safe_load(current).get("status") or {}
    return status


def _wait_finished(
    test_cluster: TestCluster, operator: RunningOperator, name: str, attempt: int = 0
) -> dict[str, Any]:
    """The job's status once its phase is Succeeded or Failed for the given retry attempt."""
    deadline = time.monotonic() + TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _status(test_cluster, name)
        if status.get("phase") in ("Succeeded", "Failed") and status.get("attempt", 0) == attempt:
            return status
        if operator.process.poll() is not None:
            pytest.fail(f"the operator exited:\n{operator.text()[-4000:]}")
        time.sleep(2)
    pytest.fail(
        f"{name}: no result in {TIMEOUT_S}s; status {status}\noperator log:\n{operator.text()[-4000:]}"
    )


@pytest.fixture(scope="module")
def video(cluster_s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = VideoLibrary(tmp_path_factory.mktemp("videos")).get(frames=30).path
    cluster_s3.make_bucket(BUCKET)
    return path


@pytest.fixture(scope="module")
def finished_job(
    test_cluster: TestCluster, operator: RunningOperator, cluster_s3: S3Server, video: Path
) -> dict[str, Any]:
    cluster_s3.client().fput_object(BUCKET, "in.mp4", str(video))
    _apply_job(test_cluster, JOB, "in.mp4", "out.mp4")
    return _wait_finished(test_cluster, operator, JOB)


def test_job_succeeds_under_the_charts_service_account(
    finished_job: dict[str, Any], cluster_s3: S3Server
) -> None:
    assert finished_job["phase"] == "Succeeded", finished_job
    assert cluster_s3.client().stat_object(BUCKET, "out.mp4").size > 0


def test_a_failed_job_is_retried_under_the_charts_service_account(
    finished_job: dict[str, Any],
    test_cluster: TestCluster,
    operator: RunningOperator,
    cluster_s3: S3Server,
    video: Path,
) -> None:
    """A retry deletes the failed Job and creates it again: the `delete` verb on Jobs."""
    _apply_job(test_cluster, "rbac-retry", "late.mp4", "late-out.mp4")
    failed = _wait_finished(test_cluster, operator, "rbac-retry")
    assert failed["phase"] == "Failed"
    assert failed["reason"] == "StorageError", failed
    cluster_s3.client().fput_object(BUCKET, "late.mp4", str(video))
    test_cluster.kubectl("-n", NAMESPACE, "annotate", "faceblurjob", "rbac-retry", "faceblur.dev/retry=1")
    deadline = time.monotonic() + RETRY_START_S
    while _status(test_cluster, "rbac-retry").get("attempt", 0) == 0:
        assert time.monotonic() < deadline, f"the retry annotation started no retry in {RETRY_START_S}s"
        time.sleep(2)
    retried = _wait_finished(test_cluster, operator, "rbac-retry", attempt=1)
    assert retried["phase"] == "Succeeded", retried


def test_operator_met_no_forbidden_request(finished_job: dict[str, Any], operator: RunningOperator) -> None:
    """Runs after the other jobs of this module, so their requests are in the log too.

    No exceptions: with scanning off kopf lists neither namespaces nor CRDs, so any complaint
    about permissions is a missing grant.
    """
    denied = re.compile(r"forbidden|\b403\b|not enough permissions|unauthori[sz]ed", re.IGNORECASE)
    # each line past its "[date time,ms]" prefix, whose milliseconds can read 403 too
    problems = [line for line in operator.text().splitlines() if denied.search(line.split("]", 1)[-1])]
    assert problems == []


def test_events_were_recorded_on_the_job(finished_job: dict[str, Any], test_cluster: TestCluster) -> None:
    events = test_cluster.kubectl(
        "-n", NAMESPACE, "get", "events", "--field-selector", f"involvedObject.name={JOB}", "-o", "yaml"
    ).stdout
    assert yaml.safe_load(events)["items"], "the operator could not post events (RBAC: events create)"


def test_probe_and_metrics_endpoints_of_the_chart_answer(
    finished_job: dict[str, Any], operator: RunningOperator, installed: Installed
) -> None:
    container = one(installed.objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        _wait_http(operator, f"http://127.0.0.1:{operator.health_port}{path}", timeout_s=10)
    assert "faceblur" in _fetch(f"http://127.0.0.1:{operator.metrics_port}/metrics")


def _can(
    test_cluster: TestCluster,
    verb: str,
    resource: str,
    namespace: str | None = NAMESPACE,
    subresource: str = "",
) -> bool:
    """A subresource goes in --subresource: `resource/status` would ask about the object named "status"."""
    args = ["auth", "can-i", verb, resource, f"--as=system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    args += [f"--subresource={subresource}"] if subresource else []
    answer: str = test_cluster.kubectl(*args, check=False).stdout
    return answer.strip() == "yes"


def test_the_operator_gets_no_more_than_it_needs(installed: Installed, test_cluster: TestCluster) -> None:
    assert _can(test_cluster, "create", "jobs.batch")
    assert _can(test_cluster, "patch", "faceblurjobs.faceblur.dev", subresource="status")
    assert _can(test_cluster, "update", "faceblurjobs.faceblur.dev", subresource="finalizers"), "OpenShift"
    assert not _can(test_cluster, "get", "secrets"), "credentials are for worker pods only"
    assert not _can(test_cluster, "create", "pods"), "pods come from Jobs"
    assert not _can(test_cluster, "update", "faceblurjobs.faceblur.dev"), "the spec belongs to the user"
    assert not _can(test_cluster, "create", "jobs.batch", namespace="default"), "namespaced install"
    assert not _can(test_cluster, "list", "faceblurjobs.faceblur.dev", namespace=None)
    assert not _can(test_cluster, "list", "namespaces", namespace=None), "nothing cluster-wide"
    assert not _can(test_cluster, "list", "customresourcedefinitions.apiextensions.k8s.io", namespace=None)


def test_worker_pods_run_as_the_charts_worker_account(
    finished_job: dict[str, Any], installed: Installed, test_cluster: TestCluster
) -> None:
    env = one(installed.objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    account = next(e["value"] for e in env if e["name"] == "FACEBLUR_WORKER_SERVICE_ACCOUNT")
    found = test_cluster.kubectl("-n", NAMESPACE, "get", "serviceaccount", account, "-o", "yaml").stdout
    assert yaml.safe_load(found)["automountServiceAccountToken"] is False
    jobs = test_cluster.kubectl(
        "-n", NAMESPACE, "get", "jobs", "-l", f"app.kubernetes.io/instance={JOB}", "-o", "yaml"
    )
    templates = [j["spec"]["template"]["spec"] for j in yaml.safe_load(jobs.stdout)["items"]]
    assert templates, "the job's Jobs are gone"
    assert {t.get("serviceAccountName") for t in templates} == {account}
