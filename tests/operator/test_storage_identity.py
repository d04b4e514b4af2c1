"""The default store's web identity reaches worker pods as a projected token, and only there."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from faceblur_operator.api import FaceBlurJobSpec
from faceblur_operator.builders import IDENTITY_DIR, build_compose_job, build_split_job, build_worker_job
from faceblur_operator.plan import JobPlan, resolve
from faceblur_operator.settings import Defaults
from operator_support import OWNER, config

ROLE = "arn:aws:iam::123456789012:role/faceblur"
DEFAULTS = Defaults.model_validate(
    {"storage": {"endpoint": "https://s3.eu-west-1.amazonaws.com", "webIdentity": {"roleArn": ROLE}}}
)
BUILDERS = [build_split_job, lambda p: build_worker_job(p, chunks=2), build_compose_job]


def plan_for(**storage: Any) -> JobPlan:
    spec = {"input": {"bucket": "media", "key": "clip.mp4"}, **({"storage": storage} if storage else {})}
    operator = dataclasses.replace(config(), defaults=DEFAULTS)
    return resolve(FaceBlurJobSpec.model_validate(spec), OWNER, operator)


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("build", BUILDERS, ids=["split", "work", "compose"])
def test_default_store_pods_get_a_projected_token_for_the_audience(build: Any) -> None:
    spec = pod(build(plan_for()))
    (volume,) = [v for v in spec["volumes"] if v["name"] == "storage-identity"]
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "sts.amazonaws.com", "expirationSeconds": 3600, "path": "token"}
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"{IDENTITY_DIR}/token"
    assert env["AWS_ROLE_ARN"] == ROLE
    assert {"name": "storage-identity", "mountPath": IDENTITY_DIR, "readOnly": True} in container[
        "volumeMounts"
    ]
    assert spec["automountServiceAccountToken"] is False  # the API token itself stays out


def test_a_job_naming_its_own_endpoint_or_secret_gets_no_token() -> None:
    """A token sent to an endpoint the job chose could be replayed at the real STS; a Secret wins."""
    for plan in (plan_for(endpoint="https://other.example"), plan_for(credentialsSecret={"name": "keys"})):
        spec = pod(build_worker_job(plan, chunks=1))
        assert all(v["name"] != "storage-identity" for v in spec["volumes"])
        assert not {"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} & {
            e["name"] for e in spec["containers"][0]["env"]
        }
