"""Cloud identity for S3 when no keys are given: which of minio's own credential providers to use.

The rule, in order (the first that applies wins; static keys in `S3Settings` come before all):
1. `AWS_WEB_IDENTITY_TOKEN_FILE` (with `AWS_ROLE_ARN`, optional `AWS_ROLE_SESSION_NAME`): the
   pod's projected service-account token is exchanged by AssumeRoleWithWebIdentity (EKS IRSA,
   GKE/AKS workload identity federation to AWS, MinIO STS). The STS endpoint is
   `FACEBLUR_S3_STS_ENDPOINT`, else AWS's regional STS for an AWS endpoint, else the S3
   endpoint itself (MinIO and most S3 servers serve STS on their S3 port); AWS STS is regional by
   AWS_REGION, else FACEBLUR_S3_REGION.
2. `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`: EKS Pod Identity or ECS task roles.
3. `FACEBLUR_S3_INSTANCE_IDENTITY=true`: the node's instance role through EC2 instance metadata.
4. Otherwise anonymous (public buckets). Instance metadata is never probed unasked: off AWS,
   169.254.169.254 does not answer and every request would stall on it.
Tokens and the temporary keys never reach messages: minio's STS error text carries the token in
its URL, so only its HTTP status is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from minio.credentials.credentials import Credentials
from minio.credentials.providers import IamAwsProvider, Provider

from faceblur.errors import StorageError

_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_STATUS = re.compile(r"HTTP status code (\d+)")


@dataclass(frozen=True)
class CloudIdentity:
    """Where temporary S3 credentials come from; `kind` names it in messages (no secrets here)."""

    kind: str  # "web identity", "container credentials" or "instance metadata"
    token_file: str | None = None
    role_arn: str | None = None
    role_session_name: str | None = None
    sts_endpoint: str | None = None  # None: minio's default (AWS STS, regional with AWS_REGION)
    region: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], s3_endpoint_url: str, aws: bool) -> CloudIdentity | None:
        """The identity the environment configures, or None for anonymous access (see the rule)."""
        token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        if token_file:
            sts = env.get("FACEBLUR_S3_STS_ENDPOINT") or (None if aws else s3_endpoint_url)
            return cls(
                "web identity",
                token_file,
                env.get("AWS_ROLE_ARN") or None,
                env.get("AWS_ROLE_SESSION_NAME") or None,
                sts.rstrip("/") if sts else None,
                env.get("AWS_REGION") or env.get("FACEBLUR_S3_REGION") or None,
            )
        if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
            return cls("container credentials")
        text = env.get("FACEBLUR_S3_INSTANCE_IDENTITY", "").strip().lower()
        if text and text not in _BOOLEANS:
            raise StorageError(f"FACEBLUR_S3_INSTANCE_IDENTITY must be true or false, not {text!r}")
        return cls("instance metadata") if _BOOLEANS.get(text, False) else None

    def provider(self) -> Provider:
        """minio's provider for this identity, wrapped so its failures name the identity."""
        return _Explained(
            IamAwsProvider(
                custom_endpoint=self.sts_endpoint,
                token_file=self.token_file,
                role_arn=self.role_arn,
                role_session_name=self.role_session_name,
                region=self.region,
                # Bounded: minio's default pool has no timeout, so a silent STS would hang the job.
                http_client=urllib3.PoolManager(
                    timeout=urllib3.Timeout(connect=10.0, read=30.0),
                    retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504]),
                ),
            ),
            self,
        )

    def describe(self) -> str:
        if self.kind != "web identity":
            return self.kind
        sts = self.sts_endpoint or "AWS STS"
        role = f" for role {self.role_arn}" if self.role_arn else ""
        return f"web identity token {self.token_file}{role} at {sts}"


class _Explained(Provider):
    """minio's provider, with its failures turned into one line that names the identity and what
    to check, never the token (minio's own message has it in the STS URL)."""

    def __init__(self, inner: Provider, identity: CloudIdentity) -> None:
        self._inner = inner
        self._identity = identity

    def retrieve(self) -> Credentials:
        try:
            return self._inner.retrieve()
        except Exception as exc:
            unreadable = exc if isinstance(exc, OSError) else exc.__cause__  # minio wraps it
            if isinstance(unreadable, OSError):
                raise StorageError(
                    f"cannot read the {self._identity.describe()}:"
                    f" {unreadable.strerror or type(unreadable).__name__};"
                    " check the pod's projected service-account token volume"
                ) from None
            found = _STATUS.search(str(exc))
            why = f"HTTP status {found.group(1)}" if found else type(exc).__name__
            raise StorageError(
                f"the {self._identity.describe()} was refused ({why}): no S3 credentials;"
                " check the token's audience and subject against the role's trust policy"
                " (or the S3 server's OpenID configuration) and the role ARN"
            ) from None
