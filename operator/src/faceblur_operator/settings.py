"""The operator's settings: environment variables, plus a YAML file of defaults for new jobs.

Environment (all optional):

    FACEBLUR_WORKER_IMAGE            CPU worker image (split, compose, CPU work).
                                     Default ghcr.io/faceblur/faceblur-worker:<version>
    FACEBLUR_GPU_WORKER_IMAGE        GPU worker image (work pods with GPUs).
                                     Default ghcr.io/faceblur/faceblur-worker-gpu:<version>
    FACEBLUR_WORKER_SERVICE_ACCOUNT  ServiceAccount of the worker pods (must exist in each job's namespace).
                                     Default: none, i.e. the namespace's `default` ServiceAccount
    FACEBLUR_DEFAULTS                path of a YAML file of defaults for new jobs (format: `Defaults` below)
    FACEBLUR_NAMESPACES              comma-separated namespaces to serve (globs allowed).
                                     Default: all namespaces (cluster-wide)
    FACEBLUR_METRICS_PORT            port of GET /metrics (Prometheus). Default 8080
    FACEBLUR_HEALTH_PORT             port of GET /healthz (liveness) and GET /readyz (readiness). Default 8081
    FACEBLUR_BIND_ADDRESS            address both ports listen on. Default 0.0.0.0
    FACEBLUR_LOG_LEVEL               DEBUG, INFO, WARNING or ERROR. Default INFO

Precedence for every job setting: the FaceBlurJob's spec, then the defaults file, then the
environment (images only), then the built-in defaults of the worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from faceblur_operator.api import Detector, Images, Placement, Storage, WorkerResources
from faceblur_operator.jobpolicy import JobPolicy

log = logging.getLogger(__name__)

PUBLISHED = "ghcr.io/faceblur/faceblur"  # the release's images (scripts/release.sh), as the chart names them


def _package_version() -> str:
    try:
        return version("faceblur_operator")
    except PackageNotFoundError:  # running from a source tree without installing
        return "latest"


class WebIdentity(BaseModel):
    """The default store's cloud identity: worker pods get a projected service-account token for
    `audience` and AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN, which the worker exchanges at the store's
    STS. Administrator-only (not in the spec): a job naming its own endpoint never gets the token."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    role_arn: str = Field(min_length=1, max_length=2048)
    audience: str = Field("sts.amazonaws.com", min_length=1, max_length=512)
    expiration_seconds: int = Field(3600, ge=600, le=86400)


class DefaultStorage(Storage):
    """The default store: a spec storage section plus the administrator's `webIdentity`."""

    web_identity: WebIdentity | None = None


class Defaults(BaseModel):
    """Defaults for new jobs, from the YAML file named by FACEBLUR_DEFAULTS (the chart's ConfigMap).

    Every section has the shape of the spec section of the same name. Example:

        images: {worker: faceblur/worker:0.1.0, gpuWorker: faceblur/worker-gpu:0.1.0}
        storage:
          endpoint: http://minio.faceblur.svc:9000
          credentialsSecret: {name: faceblur-s3}
          webIdentity: {roleArn: "arn:aws:iam::123456789012:role/faceblur"}  # without a Secret only
        detector: {name: centerface}
        gpuDetector: {executionProvider: cuda, batchSize: 32}      # over `detector` when a job asks for GPUs
        resources: {requests: {cpu: "2", memory: 2Gi}, limits: {memory: 4Gi}}
        gpuResources: {gpus: 1, requests: {cpu: "4", memory: 8Gi}} # worker pods of GPU jobs
        placement: {nodeSelector: {kubernetes.io/os: linux}}
        gpuPlacement:                                              # over `placement` for GPU worker pods
          nodeSelector: {nvidia.com/gpu.present: "true"}
          tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        jobPolicy:                                                 # what a job's spec may name
          images: [registry.example.com/faceblur/worker, registry.example.com/faceblur/worker-gpu]
          endpoints: [https://s3.example.com]
          secrets: [faceblur-s3]
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    images: Images = Field(default_factory=Images)
    storage: DefaultStorage = Field(default_factory=DefaultStorage)
    detector: Detector = Field(default_factory=Detector)
    gpu_detector: Detector = Field(default_factory=Detector)
    resources: WorkerResources = Field(default_factory=WorkerResources)
    gpu_resources: WorkerResources = Field(default_factory=WorkerResources)
    placement: Placement = Field(default_factory=Placement)
    gpu_placement: Placement = Field(default_factory=Placement)
    job_policy: JobPolicy = Field(default_factory=JobPolicy)  # what job authors may name (jobpolicy.py)


class SettingsError(ValueError):
    """A setting the operator cannot start with: the message names the variable or file."""


@dataclass(frozen=True)
class OperatorConfig:
    worker_image: str
    gpu_worker_image: str
    worker_service_account: str | None
    defaults: Defaults
    namespaces: tuple[str, ...]  # empty: cluster-wide
    metrics_port: int
    health_port: int
    bind_address: str
    log_level: str

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def load_defaults(path: Path) -> Defaults:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SettingsError(f"FACEBLUR_DEFAULTS: cannot read {path}: {e}") from e
    try:
        return Defaults.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"FACEBLUR_DEFAULTS: {path}: {where}: {first['msg']}") from e


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) < 65536:
        raise SettingsError(f"{name}: {raw!r} is not a port number")
    return int(raw)


def load_config(env: Mapping[str, str] | None = None) -> OperatorConfig:
    env = os.environ if env is None else env
    tag = _package_version()
    defaults_path = env.get("FACEBLUR_DEFAULTS", "").strip()
    level = env.get("FACEBLUR_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"FACEBLUR_LOG_LEVEL: {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    return OperatorConfig(
        worker_image=env.get("FACEBLUR_WORKER_IMAGE", "").strip() or f"{PUBLISHED}-worker:{tag}",
        gpu_worker_image=env.get("FACEBLUR_GPU_WORKER_IMAGE", "").strip() or f"{PUBLISHED}-worker-gpu:{tag}",
        worker_service_account=env.get("FACEBLUR_WORKER_SERVICE_ACCOUNT", "").strip() or None,
        defaults=load_defaults(Path(defaults_path)) if defaults_path else Defaults(),
        namespaces=tuple(ns.strip() for ns in env.get("FACEBLUR_NAMESPACES", "").split(",") if ns.strip()),
        metrics_port=_port(env, "FACEBLUR_METRICS_PORT", 8080),
        health_port=_port(env, "FACEBLUR_HEALTH_PORT", 8081),
        bind_address=env.get("FACEBLUR_BIND_ADDRESS", "").strip() or "0.0.0.0",
        log_level=level,
    )
