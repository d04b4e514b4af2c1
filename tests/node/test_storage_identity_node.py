"""Workload identity on the real node: the chart installed with no S3 Secret at all, only
`defaults.storage.webIdentity`, and a real MinIO whose STS (AssumeRoleWithWebIdentity) trusts the
session API server's service-account issuer. The job pods get a projected ServiceAccount token for the
chart's audience, exchange it for temporary keys and read the input and write the output; with the
audience set wrong, the job fails with a message naming the identity, never the token. MinIO's role
admits the release namespace's worker ServiceAccount only (a condition on the token's `sub`, as an AWS
role's trust names it), so a job in another namespace gets keys that every request is denied with.

MinIO runs on the host at the bridge address (pods reach it as they reach the user-path modules' S3
store) and reads the issuer's discovery document and keys anonymously, as an STS outside the cluster
does: this module binds `system:service-account-issuer-discovery` to `system:unauthenticated` while it
runs. The chart goes into the README's namespace and is uninstalled with it when the module is done.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chart_minio_support import InstalledRelease
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.controlplane import CA
from faceblur_testenv.devcluster import SECRET, chart_settings
from faceblur_testenv.measure import frames_with_a_sharp_face
from faceblur_testenv.minists import MinioSts, subject_policy
from faceblur_testenv.polling import wait_until
from faceblur_testenv.videos import FaceVideo
from kube_support import JSON, apply, job_doc, new_namespace
from user_path_support import (
    BUCKET,
    INPUT_KEY,
    NAMESPACE,
    helm_release,
    upload_sample,
    wait_operator_available,
)

pytestmark = pytest.mark.node

AUDIENCE = "faceblur-node-sts"  # MinIO's OpenID client ID: the only audience its STS accepts
DISCOVERY_BINDING = "faceblur-test-oidc-discovery"
WORKER_ACCOUNT = "faceblur-worker"  # the chart's worker ServiceAccount
TRUSTED = f"system:serviceaccount:{NAMESPACE}:{WORKER_ACCOUNT}"  # the only subject the role admits
OTHER_NAMESPACE = "identity-untrusted"
TOKEN_DIR = "/var/run/secrets/faceblur/storage-identity"
JOB_TIMEOUT_S = 420
# A JSON web token (the service-account token, or MinIO's session token, which is one too).
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")


@pytest.fixture(scope="module")
def sts(node_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioSts]:
    """MinIO on the bridge address, trusting the session API server's issuer for AUDIENCE."""
    node_cluster.kubectl(
        "create",
        "clusterrolebinding",
        DISCOVERY_BINDING,
        "--clusterrole=system:service-account-issuer-discovery",
        "--group=system:unauthenticated",
    )
    try:
        with MinioSts(
            tmp_path_factory.mktemp("minio-sts"),
            f"{node_cluster.server}/.well-known/openid-configuration",
            node_cluster.layout.cert(CA),
            AUDIENCE,
            bind_ip=node_cluster.bind_ip,
            role_policy=subject_policy(BUCKET, TRUSTED),
        ) as server:
            server.client().make_bucket(BUCKET)
            yield server
    finally:
        node_cluster.kubectl("delete", "clusterrolebinding", DISCOVERY_BINDING, "--ignore-not-found")


@pytest.fixture(scope="module")
def video(sts: MinioSts, tmp_path_factory: pytest.TempPathFactory) -> FaceVideo:
    return upload_sample(sts, tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def installed(node_cluster: TestCluster, worker_images: dict[str, str]) -> Iterator[InstalledRelease]:
    installed = InstalledRelease(node_cluster)
    installed.use("web identity", lambda: None)  # each test installs or upgrades it (install_for)
    try:
        yield installed
    finally:
        installed.remove()


def install_for(cluster: TestCluster, sts: MinioSts, audience: str, *extra: str) -> float:
    """The README's install without a Secret: the store, its region and the web identity whose token
    audience is `audience`; a changed value restarts the operator. Seconds until it is Available."""
    started = time.monotonic()
    sets = [s for s in chart_settings(sts.url) if s != f"defaults.storage.credentialsSecret.name={SECRET}"]
    sets += [
        "defaults.storage.region=us-east-1",
        f"defaults.storage.webIdentity.roleArn={sts.role_arn}",
        f"defaults.storage.webIdentity.audience={audience}",
        *extra,
    ]
    helm_release(cluster, "upgrade", "--install", "--create-namespace", values=sets, timeout=600)
    cluster.kubectl(
        "-n", NAMESPACE, "rollout", "status", "deployment/faceblur-operator", "--timeout=180s", timeout=200
    )
    wait_operator_available(cluster)
    return time.monotonic() - started


def run_job(cluster: TestCluster, name: str, namespace: str = NAMESPACE) -> JSON:
    """The sample in 2 chunks, output under identity/; the FaceBlurJob once Succeeded or Failed."""
    spec = {
        "input": {"bucket": BUCKET, "key": INPUT_KEY},
        "output": {"bucket": BUCKET, "key": f"identity/{name}.mp4"},
        "chunking": {"chunks": 2},
        "parallelism": 2,
    }
    started = time.monotonic()
    apply(cluster, job_doc(name, spec, namespace=namespace))
    path = f"/apis/faceblur.dev/v1alpha1/namespaces/{namespace}/faceblurjobs/{name}"

    def finished() -> JSON | None:
        doc: JSON = cluster.api.get(path)
        return doc if (doc.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    found: JSON = wait_until(f"FaceBlurJob {name} to finish", finished, timeout_s=JOB_TIMEOUT_S, interval_s=1)
    status = found["status"]
    print(f"{name}: {status['phase']} in {time.monotonic() - started:.1f}s: {status.get('reason')}")
    return found


def pods_of(cluster: TestCluster, job: str, namespace: str = NAMESPACE) -> list[JSON]:
    found = cluster.api.get(
        f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"app.kubernetes.io/instance={job}"}
    )
    return list(found["items"])


def events_of(cluster: TestCluster, job: str, namespace: str = NAMESPACE) -> list[JSON]:
    """The namespace's Events about the FaceBlurJob, its Jobs and its pods (all named after it)."""
    found = cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    return [e for e in found if e["involvedObject"].get("name", "").startswith(job)]


def assert_no_credential(sts: MinioSts, *docs: object) -> None:
    """No token, no temporary keys (MinIO's session token is a JWT too) and no root key in docs."""
    text = json.dumps(docs)
    assert JWT.search(text) is None
    assert sts.root_password not in text
    assert sts.root_user not in text


def assert_identity_only(pod: JSON) -> None:
    """The pod reaches S3 by the projected token alone: no Secret by env, envFrom or volume."""
    spec = pod["spec"]
    assert spec["serviceAccountName"] == WORKER_ACCOUNT
    assert spec["automountServiceAccountToken"] is False
    assert all("secret" not in volume for volume in spec["volumes"])
    (identity,) = [v for v in spec["volumes"] if v["name"] == "storage-identity"]
    (source,) = identity["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == AUDIENCE
    (main,) = spec["containers"]
    assert "envFrom" not in main
    env = {e["name"]: e for e in main["env"]}
    assert all("secretKeyRef" not in e.get("valueFrom", {}) for e in env.values())
    assert not {"FACEBLUR_S3_ACCESS_KEY", "FACEBLUR_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"]["value"] == f"{TOKEN_DIR}/token"


def test_job_reads_and_writes_with_the_pods_token_and_no_secret(
    node_cluster: TestCluster, sts: MinioSts, video: FaceVideo, installed: InstalledRelease, tmp_path: Path
) -> None:
    print(f"helm install (web identity) to Available: {install_for(node_cluster, sts, AUDIENCE):.1f}s")
    secrets = node_cluster.kubectl("-n", NAMESPACE, "get", "secrets", "-o", "name").stdout.split()
    assert all(name.startswith("secret/sh.helm.release.") for name in secrets), secrets  # Helm's own only
    done = run_job(node_cluster, "identity-ok")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    output = tmp_path / "identity-ok.mp4"
    sts.client().fget_object(BUCKET, "identity/identity-ok.mp4", str(output))
    assert frames_with_a_sharp_face(video, output, max_ratio=0.25) == []
    pods = pods_of(node_cluster, "identity-ok")
    stages = {p["metadata"]["labels"].get("faceblur.dev/stage") for p in pods}
    assert {"split", "work", "compose"} <= stages, stages
    for pod in pods:
        assert_identity_only(pod)
    assert_no_credential(sts, pods, done, events_of(node_cluster, "identity-ok"))


def test_token_for_the_wrong_audience_fails_the_job_naming_the_identity(
    node_cluster: TestCluster, sts: MinioSts, video: FaceVideo, installed: InstalledRelease
) -> None:
    """An administrator's mistake: the chart's audience is not the one the STS trusts. The job fails
    loudly before any work, says which identity was refused and what to check, and publishes nothing."""
    seconds = install_for(node_cluster, sts, "sts.amazonaws.com")  # the chart's default audience
    print(f"helm upgrade (wrong audience) to Available: {seconds:.1f}s")
    done = run_job(node_cluster, "identity-refused")
    status = done["status"]
    assert status["phase"] == "Failed", status
    assert status["reason"] == "StorageError", status
    message = status["message"]
    print(f"identity-refused: {message}")
    assert f"s3://{BUCKET}/" in message
    assert f"web identity token {TOKEN_DIR}/token for role {sts.role_arn}" in message
    assert "was refused" in message
    assert "audience" in message
    objects = [o.object_name for o in sts.client().list_objects(BUCKET, "identity/identity-refused")]
    assert objects == []
    pods = pods_of(node_cluster, "identity-refused")
    assert pods
    assert_no_credential(sts, pods, done, events_of(node_cluster, "identity-refused"))


def test_job_of_a_service_account_the_role_does_not_admit_is_denied(
    node_cluster: TestCluster, sts: MinioSts, video: FaceVideo, installed: InstalledRelease
) -> None:
    """Another namespace's worker ServiceAccount: its token has the right audience and gets keys, but
    the role admits only the release namespace's account, so the job fails on its first request."""
    new_namespace(node_cluster, OTHER_NAMESPACE)
    try:
        extra = f"worker.serviceAccount.extraNamespaces={{{OTHER_NAMESPACE}}}"
        seconds = install_for(node_cluster, sts, AUDIENCE, extra)
        print(f"helm upgrade (another namespace) to Available: {seconds:.1f}s")
        done = run_job(node_cluster, "identity-untrusted", OTHER_NAMESPACE)
        status = done["status"]
        print(f"identity-untrusted: {status.get('message')}")
        assert status["phase"] == "Failed", status
        assert status["reason"] == "StorageError", status
        assert f"s3://{BUCKET}/" in status["message"]
        assert "access denied" in status["message"]
        objects = [o.object_name for o in sts.client().list_objects(BUCKET, "identity/identity-untrusted")]
        assert objects == []
        pods = pods_of(node_cluster, "identity-untrusted", OTHER_NAMESPACE)
        for pod in pods:
            assert_identity_only(pod)
        assert_no_credential(sts, pods, done, events_of(node_cluster, "identity-untrusted", OTHER_NAMESPACE))
    finally:
        node_cluster.kubectl("delete", "namespace", OTHER_NAMESPACE, "--wait=false", check=False)
