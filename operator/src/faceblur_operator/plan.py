"""Resolve a FaceBlurJob's spec against the operator's defaults into everything its Jobs need.

Pure: the spec, the owner's identity and the operator's settings in, a frozen `JobPlan` out,
or `InvalidSpecError` when no setting can make the spec work (e.g. no object store at all).
The Job builders take only a plan, so they never look at defaults themselves.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass

from faceblur_contract.argv import compose_argv, process_argv, split_argv
from faceblur_contract.containers import default_output_extension
from faceblur_contract.enums import ExecutionProvider
from faceblur_contract.options import ProcessOptions, options_from_spec
from faceblur_contract.pods import pipelines_for

from faceblur_operator.api import (
    DEFAULT_GPU_RESOURCE,
    GPU_OPENVINO_RULE,
    CleanupPolicy,
    Detector,
    FaceBlurJobSpec,
    Placement,
    ResourceAmounts,
    Toleration,
    WorkerResources,
    option_values,
)
from faceblur_operator.jobpolicy import POLICY_VALUE, policy_violations
from faceblur_operator.quantity import quantity_value
from faceblur_operator.settings import OperatorConfig, WebIdentity

INTERMEDIATES_ROOT = "faceblur-jobs"
OUTPUT_SUFFIX = ".blurred"


class InvalidSpecError(ValueError):
    """The spec can never work with this operator's settings; the message says what to set."""


@dataclass(frozen=True)
class Owner:
    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class StorageAccess:
    endpoint: str
    secure: bool | None
    region: str | None
    secret_name: str | None
    access_key_key: str = "accessKey"
    secret_key_key: str = "secretKey"
    web_identity: WebIdentity | None = None  # the default store's, only without a Secret


@dataclass(frozen=True)
class PodSettings:
    image: str
    gpus: int
    gpu_resource: str  # the extended resource the GPUs are asked for as
    requests: ResourceAmounts
    limits: ResourceAmounts
    placement: Placement
    min_driver_major: int | None = None  # GPU pods only: nodes whose driver is at least this


@dataclass(frozen=True)
class JobPlan:
    owner: Owner
    input_url: str
    output_url: str
    job_url: str  # the worker's job URL: intermediates live under it
    storage: StorageAccess
    split_args: tuple[str, ...]
    process_args: tuple[str, ...]
    compose_args: tuple[str, ...]
    cpu_pod: PodSettings  # split, compose and cleanup pods
    worker_pod: PodSettings  # the Indexed worker Job's pods
    pull_policy: str | None
    service_account: str | None
    parallelism: int
    backoff_limit_per_index: int
    debug: bool
    cleanup: CleanupPolicy
    queue_name: str | None
    chunks_per_index: int = 1  # chunks one worker pod runs at once, one pipeline each


def default_output_key(input_key: str) -> str:
    """'videos/street.blurred.mov' for 'videos/street.mov': the input's container where faceblur writes
    it (its audio then stays as it is), else .mp4 ('clip.avi' -> 'clip.blurred.mp4')."""
    stem, _ext = posixpath.splitext(input_key)
    return stem + OUTPUT_SUFFIX + default_output_extension(input_key)


def _locations(spec: FaceBlurJobSpec, owner: Owner) -> tuple[str, str, str]:
    """Input URL, output URL, job URL."""
    source = spec.input
    if source.url:
        input_url = source.url
    elif source.bucket and source.key:
        input_url = f"s3://{source.bucket}/{source.key}"
    else:
        raise InvalidSpecError("spec.input needs either url, or both bucket and key")
    out_bucket = spec.output.bucket or source.bucket
    out_key = spec.output.key or (default_output_key(source.key) if source.key else None)
    if not out_bucket or not out_key:
        raise InvalidSpecError("spec.output.bucket and spec.output.key are required when the input is a URL")
    inter = spec.intermediates
    work_bucket = (inter.bucket if inter else None) or out_bucket
    prefix = (inter.prefix if inter else None) or (
        f"{INTERMEDIATES_ROOT}/{owner.namespace}/{owner.name}-{owner.uid[:8]}"
    )
    return input_url, f"s3://{out_bucket}/{out_key}", f"s3://{work_bucket}/{prefix.strip('/')}"


def _storage(spec: FaceBlurJobSpec, config: OperatorConfig) -> StorageAccess:
    """The spec's store, or the operator's default one. A spec naming its own endpoint never
    receives the default store's credentials: they belong to that other endpoint."""
    own, default = spec.storage, config.defaults.storage
    if own and own.endpoint:
        base = own
        secret = own.credentials_secret
    else:
        base = default
        secret = (own.credentials_secret if own else None) or default.credentials_secret
    if not base.endpoint:
        raise InvalidSpecError(
            "no object store: set spec.storage.endpoint, or storage.endpoint in the operator's defaults"
        )
    secure = own.secure if own and own.secure is not None else base.secure
    region = (own.region if own else None) or base.region
    if secret is None:
        # The default store's token only: a token sent to an endpoint the job chose could be replayed.
        identity = None if own and own.endpoint else default.web_identity
        return StorageAccess(
            endpoint=base.endpoint, secure=secure, region=region, secret_name=None, web_identity=identity
        )
    return StorageAccess(
        endpoint=base.endpoint,
        secure=secure,
        region=region,
        secret_name=secret.name,
        access_key_key=secret.access_key_key,
        secret_key_key=secret.secret_key_key,
    )


def _merge_detector(*layers: Detector | None) -> Detector:
    """Field by field, the first layer that sets a field wins."""
    merged: dict[str, object] = {}
    for layer in layers:
        if layer is None:
            continue
        for name, value in layer.model_dump(exclude_none=True).items():
            merged.setdefault(name, value)
    detector: Detector = Detector.model_validate(merged)
    return detector


def _merge_amounts(*layers: ResourceAmounts | None) -> ResourceAmounts:
    cpu = next((a.cpu for a in layers if a is not None and a.cpu is not None), None)
    memory = next((a.memory for a in layers if a is not None and a.memory is not None), None)
    return ResourceAmounts(cpu=cpu, memory=memory)


def _requests_within_limits(
    requests: ResourceAmounts, limits: ResourceAmounts, own: ResourceAmounts | None
) -> ResourceAmounts:
    """The API server refuses a Job whose pods request more than their limit. A request inherited from
    the defaults is lowered to the limit (as Kubernetes sets an unset request to the limit), so a spec
    lowering only `limits.memory` works; a request the spec sets itself above the limit cannot work."""
    lowered: dict[str, int | str | None] = {}
    for name in ("cpu", "memory"):
        request, limit = getattr(requests, name), getattr(limits, name)
        if request is None or limit is None or quantity_value(request) <= quantity_value(limit):
            continue
        if own is not None and getattr(own, name) is not None:
            raise InvalidSpecError(
                f"spec.resources.requests.{name} {request} is above the worker pods' {name} limit {limit}:"
                f" lower the request or raise spec.resources.limits.{name}"
            )
        lowered[name] = limit
    return requests.model_copy(update=lowered) if lowered else requests


def _merge_placement(*layers: Placement | None) -> Placement:
    """Node selectors unite (earlier layers win a key), tolerations add up, class names: first set wins."""
    selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    priority = runtime = None
    for layer in layers:
        if layer is None:
            continue
        for key, value in (layer.node_selector or {}).items():
            selector.setdefault(key, value)
        tolerations.extend(t for t in layer.tolerations or [] if t not in tolerations)
        priority = priority or layer.priority_class_name
        runtime = runtime or layer.runtime_class_name
    return Placement(
        node_selector=selector or None,
        tolerations=tolerations or None,
        priority_class_name=priority,
        runtime_class_name=runtime,
    )


def gpu_runtime(asked: ExecutionProvider | None, allow_cpu_fallback: bool) -> ExecutionProvider | None:
    """The runtime of a GPU job's pods: one the worker refuses to run without a GPU (cuda for auto),
    so a pod that cannot use its GPU fails with GPUUnavailable instead of running on the CPU while
    the job holds GPUs; where the spec allows the fallback, `auto` (CUDA, else the CPU, as recorded)."""
    if allow_cpu_fallback:
        return ExecutionProvider.AUTO if asked in (None, ExecutionProvider.CUDA) else asked
    return ExecutionProvider.CUDA if asked in (None, ExecutionProvider.AUTO) else asked


def worker_pipelines(pod: PodSettings) -> int:
    """The pipelines a worker pod runs, by the contract's rule on its CPUs as the worker reads them
    (its limit, else its request, in whole cores); one where it asks for neither."""
    cpu = pod.limits.cpu if pod.limits.cpu is not None else pod.requests.cpu
    cores = math.ceil(quantity_value(cpu)) if cpu is not None else None
    return pipelines_for(cores, on_gpu=pod.gpus > 0)


def process_options(spec: FaceBlurJobSpec, detector: Detector) -> ProcessOptions:
    """The spec's processing options, its detector merged over the defaults, as the contract's."""
    return options_from_spec(option_values(spec.model_copy(update={"detector": detector})))


def resolve(spec: FaceBlurJobSpec, owner: Owner, config: OperatorConfig) -> JobPlan:
    defaults = config.defaults
    violations = policy_violations(spec, defaults.job_policy)
    if violations:
        raise InvalidSpecError(
            f"{'; '.join(violations)} ({POLICY_VALUE}, set by the cluster's administrator)"
        )
    input_url, output_url, job_url = _locations(spec, owner)
    storage = _storage(spec, config)

    own = spec.resources or WorkerResources()
    gpus = own.gpus if own.gpus is not None else (defaults.resources.gpus or 0)
    base = defaults.gpu_resources if gpus else defaults.resources
    detector = _merge_detector(spec.detector, defaults.gpu_detector if gpus else None, defaults.detector)
    if gpus and detector.execution_provider is ExecutionProvider.OPENVINO:  # one of them from the defaults
        raise InvalidSpecError(f"{GPU_OPENVINO_RULE} (the spec and the operator's defaults ask for both)")
    if gpus:
        provider = gpu_runtime(detector.execution_provider, own.allow_cpu_fallback)
        detector = detector.model_copy(update={"execution_provider": provider})
    options = process_options(spec, detector)

    images = spec.images
    cpu_image = (images.worker if images else None) or defaults.images.worker or config.worker_image
    gpu_image = (
        (images.gpu_worker if images else None) or defaults.images.gpu_worker or config.gpu_worker_image
    )
    pull_policy = (images.pull_policy if images else None) or defaults.images.pull_policy

    worker_limits = _merge_amounts(own.limits, base.limits, defaults.resources.limits)
    cpu_pod = PodSettings(
        image=cpu_image,
        gpus=0,
        gpu_resource=DEFAULT_GPU_RESOURCE,
        requests=_merge_amounts(defaults.resources.requests),
        limits=_merge_amounts(defaults.resources.limits),
        placement=_merge_placement(spec.placement, defaults.placement),
    )
    worker_pod = PodSettings(
        image=gpu_image if gpus else cpu_image,
        gpus=gpus,
        gpu_resource=own.gpu_resource
        or base.gpu_resource
        or defaults.resources.gpu_resource
        or DEFAULT_GPU_RESOURCE,
        min_driver_major=(own.min_driver_major or base.min_driver_major) if gpus else None,
        requests=_requests_within_limits(
            _merge_amounts(own.requests, base.requests, defaults.resources.requests),
            worker_limits,
            own.requests,
        ),
        limits=worker_limits,
        placement=_merge_placement(
            spec.placement, defaults.gpu_placement if gpus else None, defaults.placement
        ),
    )
    per_index = worker_pipelines(worker_pod)
    return JobPlan(
        owner=owner,
        input_url=input_url,
        output_url=output_url,
        job_url=job_url,
        storage=storage,
        split_args=split_argv(
            input_url,
            job_url,
            chunks=spec.chunking.chunks,
            chunk_frames=spec.chunking.frames_per_chunk,
            mode=spec.chunking.mode,
            owner=owner.uid,
            output_url=output_url,
            overwrite=spec.output.overwrite,
            if_truncated=spec.input.if_truncated,
        ),
        process_args=process_argv(job_url, options, per_index),
        compose_args=compose_argv(
            job_url,
            output_url,
            options,
            cleanup=spec.cleanup in (CleanupPolicy.ON_SUCCESS, CleanupPolicy.ALWAYS),
            overwrite=spec.output.overwrite,
        ),
        cpu_pod=cpu_pod,
        worker_pod=worker_pod,
        pull_policy=pull_policy.value if pull_policy else None,
        service_account=config.worker_service_account,
        parallelism=spec.parallelism,
        backoff_limit_per_index=spec.max_retries_per_chunk,
        debug=options.debug,
        cleanup=spec.cleanup,
        queue_name=spec.queue_name,
        chunks_per_index=per_index,
    )
