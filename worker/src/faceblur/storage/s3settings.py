"""How to reach an S3 service: endpoint, TLS, region and credentials, from the environment
(FACEBLUR_S3_*, then AWS_* keys, then a mounted Secret's files, then a cloud identity, see
`s3identity`) with --s3-endpoint on top."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from faceblur.errors import StorageError
from faceblur.storage.s3identity import CloudIdentity

_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class S3Settings:
    """How to reach the S3 service; see `from_env` for where each value comes from."""

    endpoint: str = "s3.amazonaws.com"  # host[:port]
    secure: bool = True
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    identity: CloudIdentity | None = None  # used only without keys; None and no keys: anonymous

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, endpoint: str | None = None) -> S3Settings:
        """FACEBLUR_S3_* variables, then AWS_* keys, then the files of FACEBLUR_S3_CREDENTIALS_DIR."""
        env = os.environ if environ is None else environ
        host, scheme_secure = parse_endpoint(endpoint or env.get("FACEBLUR_S3_ENDPOINT") or cls.endpoint)
        secure_text = env.get("FACEBLUR_S3_SECURE", "").strip().lower()
        if secure_text:
            if secure_text not in _BOOLEANS:
                raise StorageError(f"FACEBLUR_S3_SECURE must be true or false, not {secure_text!r}")
            secure = _BOOLEANS[secure_text]
        else:
            secure = scheme_secure if scheme_secure is not None else host == cls.endpoint
        access, secret = _credentials(env)
        identity = None
        if access is None:
            url = f"{'https' if secure else 'http'}://{host}"
            identity = CloudIdentity.from_env(env, url, aws=host.endswith(".amazonaws.com"))
        return cls(host, secure, env.get("FACEBLUR_S3_REGION") or None, access, secret, identity)

    def endpoint_url(self) -> str:
        """The endpoint as a URL, for messages."""
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


def parse_endpoint(endpoint: str) -> tuple[str, bool | None]:
    """`http(s)://host:port` or `host:port` -> (host:port, secure from the scheme or None)."""
    text = endpoint.strip().rstrip("/")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise StorageError(f"invalid S3 endpoint {endpoint!r}: expected host:port or http(s)://host:port")
        return rest, scheme == "https"
    if not text or "/" in text:
        raise StorageError(f"invalid S3 endpoint {endpoint!r}: expected host:port or http(s)://host:port")
    return text, None


def _credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    for access_name, secret_name in (
        ("FACEBLUR_S3_ACCESS_KEY", "FACEBLUR_S3_SECRET_KEY"),
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ):
        if env.get(access_name) and env.get(secret_name):
            return env[access_name], env[secret_name]
    folder = env.get("FACEBLUR_S3_CREDENTIALS_DIR")
    if folder:
        try:
            return (
                (Path(folder) / "accessKey").read_text().strip(),
                (Path(folder) / "secretKey").read_text().strip(),
            )
        except OSError as exc:
            raise StorageError(f"cannot read S3 credentials from {folder}: {exc.strerror or exc}") from exc
    return None, None  # a cloud identity, or anonymous access
