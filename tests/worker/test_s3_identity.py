"""Which cloud identity the worker's S3 client uses without keys, and how its failures read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faceblur.errors import StorageError
from faceblur.storage import RetryPolicy, S3Settings, S3Store
from faceblur.storage.s3identity import CloudIdentity
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.controlplane import CA
from faceblur_testenv.minists import MinioSts, subject_policy
from faceblur_testenv.s3 import S3Server

TOKEN = "eyJhbGciOiJSUzI1NiJ9.not-a-real-token.signature"


def test_no_keys_and_no_identity_stay_anonymous() -> None:
    """A public bucket off AWS must not stall on instance metadata: nothing configured, no provider."""
    settings = S3Settings.from_env({"FACEBLUR_S3_ENDPOINT": "http://minio:9000"})
    assert settings.identity is None
    assert settings.access_key is None
    assert S3Settings.from_env({}).identity is None  # AWS itself, still not probed unasked
    assert S3Settings.from_env({"FACEBLUR_S3_INSTANCE_IDENTITY": "false"}).identity is None
    with pytest.raises(StorageError, match="FACEBLUR_S3_INSTANCE_IDENTITY must be true or false"):
        S3Settings.from_env({"FACEBLUR_S3_INSTANCE_IDENTITY": "maybe"})


def test_keys_come_before_any_identity() -> None:
    env = {
        "FACEBLUR_S3_ACCESS_KEY": "a",
        "FACEBLUR_S3_SECRET_KEY": "s",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
    }
    assert S3Settings.from_env(env).identity is None


def test_web_identity_sts_endpoint() -> None:
    """MinIO and other S3 servers serve STS on their S3 port; AWS has its own (regional) STS."""
    env = {
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/blur",
        "AWS_ROLE_SESSION_NAME": "job-a",
    }
    minio = S3Settings.from_env({**env, "FACEBLUR_S3_ENDPOINT": "https://minio.example:9000"}).identity
    assert minio == CloudIdentity(
        "web identity", "/var/run/token", "arn:aws:iam::1:role/blur", "job-a", "https://minio.example:9000"
    )
    aws = S3Settings.from_env({**env, "AWS_REGION": "eu-west-1"}).identity
    assert aws is not None
    assert aws.sts_endpoint is None
    assert aws.region == "eu-west-1"
    chosen = S3Settings.from_env({**env, "FACEBLUR_S3_STS_ENDPOINT": "https://sts.example/"}).identity
    assert chosen is not None
    assert chosen.sts_endpoint == "https://sts.example"


def test_container_and_instance_identities() -> None:
    pod_identity = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"}
    assert S3Settings.from_env(pod_identity).identity == CloudIdentity("container credentials")
    instance = S3Settings.from_env({"FACEBLUR_S3_INSTANCE_IDENTITY": "true"}).identity
    assert instance == CloudIdentity("instance metadata")


def test_missing_token_file_names_the_file(tmp_path: Path) -> None:
    identity = CloudIdentity("web identity", str(tmp_path / "token"), None, None, "http://127.0.0.1:1")
    with pytest.raises(StorageError, match=r"cannot read the web identity token .*token.*projected"):
        identity.provider().retrieve()


def test_refused_token_is_an_identity_error_without_the_token(s3_server: S3Server, tmp_path: Path) -> None:
    """A server that refuses the token: the error names the identity and what to check, and never
    carries the token (minio's own message has it in the STS URL), nor chains that message."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    env = {"FACEBLUR_S3_ENDPOINT": s3_server.url, "FACEBLUR_S3_SECURE": "false"}
    env |= {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": "arn:minio:iam:::role/blur"}
    store = S3Store("bucket", S3Settings.from_env(env), RetryPolicy(attempts=1, first_delay_s=0.01))
    with pytest.raises(StorageError) as caught:
        store.put_bytes("a.txt", b"x")
    message = str(caught.value)
    assert "web identity token" in message
    assert "was refused" in message
    assert "audience" in message
    assert TOKEN not in message
    assert "not-a-real-token" not in repr(caught.value.__cause__)


AUDIENCE = "faceblur-sts"
# The tests below: a control plane of its own (no node, no root) and MinIO (built with the images if absent).


@pytest.fixture(scope="module")
def oidc_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """A control plane alone (no node): its service-account issuer is the OpenID issuer, and its
    discovery document and keys are readable anonymously, as an S3 server's STS fetches them."""
    cluster = TestCluster(tmp_path_factory.mktemp("oidc-cluster"), real_node=False)
    cluster.start()
    try:
        cluster.kubectl(
            "create",
            "clusterrolebinding",
            "oidc-discovery-anonymous",
            "--clusterrole=system:service-account-issuer-discovery",
            "--group=system:unauthenticated",
        )
        cluster.kubectl("create", "serviceaccount", "blur", "-n", "default")
        cluster.kubectl("create", "serviceaccount", "other", "-n", "default")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def sts(oidc_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioSts]:
    config = f"{oidc_cluster.server}/.well-known/openid-configuration"
    with MinioSts(
        tmp_path_factory.mktemp("minio-sts"),
        config,
        oidc_cluster.layout.cert(CA),
        AUDIENCE,
        role_policy=subject_policy("blur-identity", "system:serviceaccount:default:blur"),
    ) as server:
        server.client().make_bucket("blur-identity")
        yield server


def token_file(cluster: TestCluster, folder: Path, audience: str, account: str = "blur") -> Path:
    """A projected-style service-account token, minted by the TokenRequest API as the kubelet does."""
    path = folder / f"token-{account}-{audience}"
    path.write_text(
        cluster.kubectl("create", "token", account, "-n", "default", "--audience", audience).stdout.strip()
    )
    return path


def identity_store(sts: MinioSts, token: Path) -> S3Store:
    env = {"FACEBLUR_S3_ENDPOINT": sts.url, "FACEBLUR_S3_REGION": "us-east-1"}
    env |= {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": sts.role_arn}
    return S3Store("blur-identity", S3Settings.from_env(env), RetryPolicy(attempts=1, first_delay_s=0.01))


@pytest.mark.cluster
@pytest.mark.images
def test_service_account_token_reads_and_writes_without_keys(
    oidc_cluster: TestCluster, sts: MinioSts, tmp_path: Path
) -> None:
    """No Secret and no keys: the pod's token, exchanged at the S3 server's STS, reaches the bucket."""
    store = identity_store(sts, token_file(oidc_cluster, tmp_path, AUDIENCE))
    assert store.settings.access_key is None
    store.put_bytes("videos/a.txt", b"identity")
    assert store.get_bytes("videos/a.txt") == b"identity"
    assert list(store.list("videos/")) == ["videos/a.txt"]


@pytest.mark.cluster
@pytest.mark.images
def test_token_for_another_audience_is_refused(
    oidc_cluster: TestCluster, sts: MinioSts, tmp_path: Path
) -> None:
    token = token_file(oidc_cluster, tmp_path, "some-other-service")
    with pytest.raises(StorageError) as caught:
        identity_store(sts, token).put_bytes("videos/b.txt", b"x")
    message = str(caught.value)
    assert f"web identity token {token}" in message
    assert "was refused" in message
    assert "audience" in message
    assert token.read_text() not in message


@pytest.mark.cluster
@pytest.mark.images
def test_token_of_a_service_account_the_role_does_not_name_is_denied(
    oidc_cluster: TestCluster, sts: MinioSts, tmp_path: Path
) -> None:
    """The role admits system:serviceaccount:default:blur only: another account's token of the right
    audience gets keys, and every request with them is denied, naming the object."""
    token = token_file(oidc_cluster, tmp_path, AUDIENCE, account="other")
    with pytest.raises(StorageError) as caught:
        identity_store(sts, token).put_bytes("videos/c.txt", b"x")
    message = str(caught.value)
    assert message.startswith("cannot write s3://blur-identity/videos/c.txt: access denied")
    assert token.read_text() not in message
