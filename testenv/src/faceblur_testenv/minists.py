"""A real MinIO whose STS (AssumeRoleWithWebIdentity) trusts a test cluster's service-account issuer.

The tests' usual S3 server (SeaweedFS, `s3.py`) has no OpenID STS; MinIO has, and the project already
builds it for the chart (`scripts/build-images.sh minio` leaves the binary in its cache, by the versions
of docker/minio.env). MinIO reads the API server's discovery document and keys anonymously, trusting
the cluster's CA from its certs dir's `CAs/`; tokens must carry `client_id` as audience, and the one
role it then offers (`role_arn`, named in its log) gets the `readwrite` policy, or the test's own
(`role_policy`, e.g. one whose condition on `jwt:sub` admits one ServiceAccount: MinIO's equivalent of
a role's trust in a subject). MinIO does not start with a role policy that does not exist yet, so that
one is added through the admin API and MinIO restarted with it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import minio
from minio.credentials.providers import StaticProvider
from minio.minioadmin import MinioAdmin

from faceblur_testenv.images import ensure_images
from faceblur_testenv.processes import free_ports

REPO = Path(__file__).resolve().parents[3]
# a restarted MinIO showed its OpenID role (the issuer's discovery document read) after over 60 s
# in a loaded cold run
_READY_TIMEOUT_S = 180.0
_ROLE = re.compile(r"IAM Roles: (arn:minio:iam:::role/\S+)")
ROLE_POLICY = "faceblur-sts-role"  # the name role_policy is added under


def minio_binary() -> Path:
    """The MinIO server build-images.sh built for docker/minio.env's version; built (minutes) if absent."""
    versions = dict(
        line.split("=", 1) for line in (REPO / "docker/minio.env").read_text().splitlines() if "=" in line
    )
    cache = Path(os.environ.get("FACEBLUR_CACHE") or Path.home() / ".cache/faceblur") / "images"
    binary = (
        cache
        / f"minio-{versions['MINIO_VERSION'].rsplit('-', 1)[1]}-mc-{versions['MC_VERSION'].rsplit('-', 1)[1]}"
    )
    binary /= "minio"
    if not binary.is_file():
        ensure_images(["minio"])
    if not binary.is_file():
        raise FileNotFoundError(f"scripts/build-images.sh minio left no {binary}")
    return binary


class MinioSts:
    """MinIO trusting one OpenID issuer, on loopback unless told (a node's pods need the bridge
    address); root keys only for the test's own setup."""

    def __init__(
        self,
        workdir: Path,
        openid_config_url: str,
        ca_file: Path,
        client_id: str,
        bind_ip: str = "127.0.0.1",
        role_policy: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir
        self.bind_ip = bind_ip
        self.role_policy = role_policy
        self.openid_config_url = openid_config_url
        self.ca_file = ca_file
        self.client_id = client_id
        self.root_user = "root-" + secrets.token_hex(4)
        self.root_password = secrets.token_urlsafe(24)
        self.url = ""
        self.role_arn = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_from = 0  # where the running process's lines start in the log

    @property
    def log_path(self) -> Path:
        return self.workdir / "minio.log"

    def start(self) -> None:
        cas = self.workdir / "certs" / "CAs"
        cas.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca_file, cas / "cluster-ca.crt")
        port, console = free_ports(2, self.bind_ip)
        self.url = f"http://{self.bind_ip}:{port}"
        self._launch(port, console, "readwrite")
        if self.role_policy is not None:
            admin = MinioAdmin(
                endpoint=self.url.removeprefix("http://"),
                credentials=StaticProvider(self.root_user, self.root_password),
                secure=False,
            )
            admin.policy_add(ROLE_POLICY, policy=self.role_policy)
            self.stop()
            self._launch(port, console, ROLE_POLICY)

    def _launch(self, port: int, console: int, role_policy: str) -> None:
        certs = self.workdir / "certs"
        env = {
            **os.environ,
            "HOME": str(self.workdir),
            "MINIO_ROOT_USER": self.root_user,
            "MINIO_ROOT_PASSWORD": self.root_password,
            "MINIO_IDENTITY_OPENID_CONFIG_URL": self.openid_config_url,
            "MINIO_IDENTITY_OPENID_CLIENT_ID": self.client_id,
            "MINIO_IDENTITY_OPENID_ROLE_POLICY": role_policy,
            "MINIO_BROWSER": "off",
        }
        command = [str(minio_binary()), "server", str(self.workdir / "data"), "--certs-dir", str(certs)]
        command += ["--address", f"{self.bind_ip}:{port}", "--console-address", f"{self.bind_ip}:{console}"]
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> MinioSts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> minio.Minio:
        """The root client, for the test's own setup (buckets), never the code under test."""
        return minio.Minio(self.url.removeprefix("http://"), self.root_user, self.root_password, secure=False)

    def _wait_ready(self) -> None:
        """Ready once the root keys list buckets and the OpenID role (initialised from the issuer) shows."""
        assert self._process is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"minio exited with code {self._process.returncode}; see {self.log_path}")
            with self.log_path.open("rb") as log:
                log.seek(self._log_from)
                found = _ROLE.search(log.read().decode(errors="replace"))
            try:
                self.client().list_buckets()
                if found:
                    self.role_arn = found.group(1)
                    return
                last = "no OpenID role yet (is the issuer's discovery document reachable?)"
            except Exception as exc:  # any failure means "not yet"
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            time.sleep(0.3)
        raise RuntimeError(
            f"MinIO with OpenID STS not ready within {_READY_TIMEOUT_S:.0f}s: {last}; see {self.log_path}"
        )


def subject_policy(bucket: str, subject: str) -> dict[str, Any]:
    """A role policy: read and write `bucket` for tokens whose subject is `subject` only (e.g.
    system:serviceaccount:NS:NAME), as an AWS role's trust policy narrows it by `sub`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"StringEquals": {"jwt:sub": [subject]}},
            }
        ],
    }
