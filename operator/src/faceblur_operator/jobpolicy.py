"""What a job author may name, as the cluster administrator set it. Pure.

A FaceBlurJob's spec can name the images its pods run (under the worker ServiceAccount), the
storage endpoint its pods send the credentials to, and the Secret those credentials come from. The
chart's `jobPolicy` lists what is allowed; a ValidatingAdmissionPolicy refuses anything else at
`kubectl apply` (templates/job-policy.yaml), and the operator checks the same lists, from its
defaults file, for clusters without admission policies. Unset fields are always allowed: they take
the administrator's own defaults.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from faceblur_operator.api import FaceBlurJobSpec

POLICY_VALUE = "chart value jobPolicy"


class JobPolicy(BaseModel):
    """Allowed values; None: anything (no policy for that field)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    images: tuple[str, ...] | None = None  # repositories: any tag or digest of them
    endpoints: tuple[str, ...] | None = None
    secrets: tuple[str, ...] | None = None


def image_allowed(image: str, repositories: tuple[str, ...]) -> bool:
    return any(image == r or image.startswith((f"{r}:", f"{r}@")) for r in repositories)


def policy_violations(spec: FaceBlurJobSpec, policy: JobPolicy) -> list[str]:
    """Each field the spec sets outside the administrator's lists, with what is allowed instead."""
    found = []
    images = spec.images
    if images is not None and policy.images is not None:
        for field, image in (
            ("spec.images.worker", images.worker),
            ("spec.images.gpuWorker", images.gpu_worker),
        ):
            if image is not None and not image_allowed(image, policy.images):
                found.append(f"{field} {image} is not allowed; allowed images: {_listed(policy.images)}")
    storage = spec.storage
    endpoint = storage.endpoint if storage is not None else None
    if endpoint is not None and policy.endpoints is not None and endpoint not in policy.endpoints:
        found.append(
            f"spec.storage.endpoint {endpoint} is not allowed; allowed endpoints: {_listed(policy.endpoints)}"
        )
    secret = storage.credentials_secret if storage is not None else None
    if secret is not None and policy.secrets is not None and secret.name not in policy.secrets:
        allowed = _listed(policy.secrets)
        found.append(
            f"spec.storage.credentialsSecret.name {secret.name} is not allowed; allowed Secrets: {allowed}"
        )
    return found


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else f"none (set {POLICY_VALUE})"
