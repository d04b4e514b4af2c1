"""A job author gets no more than the administrator granted: on a real API server, the
chart's ValidatingAdmissionPolicy refuses at `kubectl apply` a FaceBlurJob naming an image, a storage
endpoint or a credentials Secret outside the chart's jobPolicy lists, naming the field and what is
allowed; one that names only allowed values, or none, is admitted. The chart's rendering of the lists
(the admission parameters and the operator's defaults file, one source) is checked without a cluster.

The policy runs on an API server of its own (a control plane alone), not the session's: an API server
stops resolving ConfigMap parameters for good once no binding has used that kind for a moment
(kubernetes/kubernetes#130887), which the session's chart uninstalls do, and a binding whose
parameters are not found admits (parameterNotFoundAction Allow). The operator's own check of the
same lists (jobpolicy.py) is what still refuses such jobs on a cluster hit by that bug.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from faceblur_operator.jobpolicy import JobPolicy
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import wait_until
from packaging_support import CHART, Helm, Manifest, one

NAMESPACE = "fb-job-policy"
RELEASE = "policy"
ENDPOINT = "http://s3.tenant.example:9000"
SECRET = "tenant-s3"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
WORKER, GPU_WORKER = VALUES["image"]["repository"], VALUES["gpuImage"]["repository"]  # the chart's images


def rendered(helm: Helm, *sets: str) -> list[Manifest]:
    base = (f"defaults.storage.endpoint={ENDPOINT}", f"defaults.storage.credentialsSecret.name={SECRET}")
    return helm.template(*base, *sets, release=RELEASE, namespace=NAMESPACE)


def operator_policy(objects: list[Manifest]) -> JobPolicy | None:
    defaults = yaml.safe_load(
        one(objects, "ConfigMap", f"{RELEASE}-faceblur-defaults")["data"]["defaults.yaml"]
    )
    return JobPolicy.model_validate(defaults["jobPolicy"]) if "jobPolicy" in defaults else None


def job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "faceblur.dev/v1alpha1",
        "kind": "FaceBlurJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"input": {"bucket": "tenant", "key": f"{name}.mp4"}, **spec},
    }


def test_by_default_jobs_may_name_the_charts_images_endpoint_and_secret(helm: Helm) -> None:
    objects = rendered(helm)
    params = one(objects, "ConfigMap", f"{RELEASE}-faceblur-job-policy")["data"]
    assert params == {"images": f"{WORKER},{GPU_WORKER}", "endpoints": ENDPOINT, "secrets": SECRET}
    assert operator_policy(objects) == JobPolicy(
        images=(WORKER, GPU_WORKER), endpoints=(ENDPOINT,), secrets=(SECRET,)
    )  # the operator checks the same lists


def test_the_lists_are_the_administrators_and_off_means_no_policy(helm: Helm) -> None:
    objects = rendered(helm, "jobPolicy.allowedImages={reg.example/fb}", "jobPolicy.allowedSecrets={a,b}")
    assert operator_policy(objects) == JobPolicy(
        images=("reg.example/fb",), endpoints=(ENDPOINT,), secrets=("a", "b")
    )
    off = rendered(helm, "jobPolicy.enabled=false")
    assert not [o for o in off if o["kind"] in POLICY_KINDS]
    assert operator_policy(off) is None


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    cluster = TestCluster(tmp_path_factory.mktemp("policy-cluster"), real_node=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def policy(api_server: TestCluster, helm: Helm) -> None:
    """The chart's policy, its binding and parameters, enforced (nothing to remove: the API server is
    the module's own)."""
    objects = [o for o in rendered(helm) if o["kind"] in (*POLICY_KINDS, "ConfigMap")]
    objects = [
        o for o in objects if o["kind"] != "ConfigMap" or o["metadata"]["name"].endswith("-job-policy")
    ]
    api_server.kubectl("apply", "-f", str(CHART / "crds" / "faceblurjobs.yaml"))
    api_server.kubectl(
        "wait", "--for=condition=Established", "crd/faceblurjobs.faceblur.dev", "--timeout=60s"
    )
    api_server.kubectl("create", "namespace", NAMESPACE, check=False)
    api_server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    probe = json.dumps(job("probe", images={"worker": "evil.example/miner:1"}))

    def enforced() -> bool:  # the API server compiles a new policy and its binding a moment later
        done = api_server.kubectl("apply", "--dry-run=server", "-f", "-", input=probe, check=False)
        return done.returncode != 0 and "is not allowed" in done.stderr

    wait_until("the job policy to be enforced", enforced, timeout_s=60, interval_s=1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"images": {"worker": "evil.example/miner:1"}},
            f"spec.images.worker evil.example/miner:1 is not allowed; allowed images: {WORKER},{GPU_WORKER}",
        ),
        (
            {"images": {"gpuWorker": f"{GPU_WORKER}-not:1"}},  # a prefix of an allowed name is not it
            f"spec.images.gpuWorker {GPU_WORKER}-not:1 is not allowed",
        ),
        (
            {"storage": {"endpoint": "https://collector.example"}},
            f"spec.storage.endpoint https://collector.example is not allowed; allowed endpoints: {ENDPOINT}",
        ),
        (
            {"storage": {"credentialsSecret": {"name": "other-team-s3"}}},
            f"spec.storage.credentialsSecret.name other-team-s3 is not allowed; allowed Secrets: {SECRET}",
        ),
    ],
    ids=["image", "image-prefix", "endpoint", "secret"],
)
@pytest.mark.cluster
def test_a_job_naming_what_is_not_allowed_is_refused_at_apply(
    policy: None, api_server: TestCluster, spec: dict[str, Any], message: str
) -> None:
    done = api_server.kubectl("apply", "-f", "-", input=json.dumps(job("refused", **spec)), check=False)
    assert done.returncode != 0
    assert message in done.stderr
    assert "jobPolicy" in done.stderr  # where the administrator sets it
    gone = api_server.kubectl("get", "fbj", "refused", "-n", NAMESPACE, check=False)
    assert gone.returncode != 0


@pytest.mark.cluster
def test_a_job_naming_only_allowed_values_or_none_is_admitted(policy: None, api_server: TestCluster) -> None:
    allowed = job(
        "allowed",
        images={"worker": f"{WORKER}:0.2.0", "gpuWorker": f"{GPU_WORKER}@sha256:" + "0" * 64},
        storage={"endpoint": ENDPOINT, "credentialsSecret": {"name": SECRET}},
    )
    for doc in (allowed, job("plain")):
        api_server.kubectl("apply", "-f", "-", input=json.dumps(doc))
        api_server.kubectl("get", "fbj", doc["metadata"]["name"], "-n", NAMESPACE)
