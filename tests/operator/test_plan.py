"""Resolving a spec against the operator's defaults: locations, storage, detector, resources, placement."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from faceblur_contract.enums import ExecutionProvider
from faceblur_operator.api import FaceBlurJobSpec, Input, Output
from faceblur_operator.jobpolicy import JobPolicy, policy_violations
from faceblur_operator.plan import InvalidSpecError, default_output_key, gpu_runtime, resolve
from faceblur_operator.quantity import quantity_value
from faceblur_operator.settings import OperatorConfig, SettingsError, load_config
from operator_support import OWNER
from pydantic import ValidationError

DEFAULTS_YAML = """
images: {worker: reg/cpu:2, gpuWorker: reg/gpu:2, pullPolicy: IfNotPresent}
storage:
  endpoint: http://minio.faceblur:9000
  credentialsSecret: {name: default-s3}
detector: {name: centerface, threshold: 0.3}
gpuDetector: {executionProvider: cuda, batchSize: 32}
resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 4Gi}}
gpuResources: {requests: {cpu: "2", memory: 4Gi}, limits: {memory: 8Gi}}
placement:
  nodeSelector: {kubernetes.io/os: linux}
gpuPlacement:
  nodeSelector: {nvidia.com/gpu.present: "true"}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
"""


@pytest.fixture
def cfg(tmp_path: Path) -> OperatorConfig:
    path = tmp_path / "defaults.yaml"
    path.write_text(DEFAULTS_YAML)
    return load_config({"FACEBLUR_DEFAULTS": str(path), "FACEBLUR_WORKER_IMAGE": "env/cpu:1"})


def spec(**fields: Any) -> FaceBlurJobSpec:
    return FaceBlurJobSpec.model_validate({"input": {"bucket": "media", "key": "a/b.mov"}, **fields})


@pytest.mark.parametrize(
    ("fields", "input_url", "output_url", "job_url"),
    [
        ({}, "s3://media/a/b.mov", "s3://media/a/b.blurred.mov", "s3://media/faceblur-jobs/media/clip-0123abcd"),
        (
            {"output": {"bucket": "out", "key": "x.mp4"}, "intermediates": {"prefix": "/tmp/jobs/"}},
            "s3://media/a/b.mov",
            "s3://out/x.mp4",
            "s3://out/tmp/jobs",
        ),
        (
            {"input": {"url": "https://cdn.example/v.mp4"}, "output": {"bucket": "o", "key": "v.mp4"},
             "intermediates": {"bucket": "scratch"}},
            "https://cdn.example/v.mp4",
            "s3://o/v.mp4",
            "s3://scratch/faceblur-jobs/media/clip-0123abcd",
        ),
    ],
)  # fmt: skip
def test_locations(
    cfg: OperatorConfig, fields: dict[str, Any], input_url: str, output_url: str, job_url: str
) -> None:
    plan = resolve(spec(**fields), OWNER, cfg)
    assert (plan.input_url, plan.output_url, plan.job_url) == (input_url, output_url, job_url)


def test_default_output_key() -> None:
    assert default_output_key("videos/street.mp4") == "videos/street.blurred.mp4"
    assert default_output_key("noext") == "noext.blurred.mp4"
    assert default_output_key("camera/A001.MOV") == "camera/A001.blurred.mov"  # its PCM stays as it is
    assert default_output_key("talk.mkv") == "talk.blurred.mkv"
    assert default_output_key("old.avi") == "old.blurred.mp4"  # AVI is not written: MP4


def test_url_input_without_output_is_invalid(cfg: OperatorConfig) -> None:
    with pytest.raises(ValidationError, match=r"output\.bucket and output\.key are required"):
        spec(input={"url": "https://x/v.mp4"})
    unchecked = FaceBlurJobSpec.model_construct(
        input=Input.model_construct(url="https://x/v.mp4"), output=Output()
    )
    with pytest.raises(InvalidSpecError, match=r"output\.bucket and spec\.output\.key"):
        resolve(unchecked, OWNER, cfg)


def test_storage_defaults_and_no_credential_leak(cfg: OperatorConfig) -> None:
    default = resolve(spec(), OWNER, cfg).storage
    assert (default.endpoint, default.secret_name) == ("http://minio.faceblur:9000", "default-s3")
    own_secret = resolve(spec(storage={"credentialsSecret": {"name": "mine"}}), OWNER, cfg).storage
    assert (own_secret.endpoint, own_secret.secret_name) == ("http://minio.faceblur:9000", "mine")
    elsewhere = resolve(spec(storage={"endpoint": "https://s3.other"}), OWNER, cfg).storage
    assert (elsewhere.endpoint, elsewhere.secret_name) == ("https://s3.other", None)


def test_no_store_anywhere_is_invalid() -> None:
    with pytest.raises(InvalidSpecError, match="no object store"):
        resolve(spec(), OWNER, load_config({}))


def test_cpu_job_takes_cpu_defaults(cfg: OperatorConfig) -> None:
    plan = resolve(spec(), OWNER, cfg)
    assert plan.worker_pod.image == "reg/cpu:2"
    assert plan.worker_pod.gpus == 0
    assert (plan.worker_pod.requests.cpu, plan.worker_pod.limits.memory) == ("1", "4Gi")
    assert plan.worker_pod.placement.node_selector == {"kubernetes.io/os": "linux"}
    assert "--threshold" in plan.process_args
    assert "0.3" in plan.process_args
    assert plan.process_args[plan.process_args.index("--execution-provider") + 1] == "auto"  # the default
    assert plan.pull_policy == "IfNotPresent"


def test_gpu_job_layers_gpu_defaults_over_the_plain_ones(cfg: OperatorConfig) -> None:
    plan = resolve(spec(resources={"gpus": 1, "limits": {"memory": "16Gi"}}), OWNER, cfg)
    pod = plan.worker_pod
    assert (pod.image, pod.gpus) == ("reg/gpu:2", 1)
    assert (pod.requests.cpu, pod.requests.memory, pod.limits.memory) == ("2", "4Gi", "16Gi")
    assert pod.placement.node_selector == {"nvidia.com/gpu.present": "true", "kubernetes.io/os": "linux"}
    assert pod.placement.tolerations is not None
    assert pod.placement.tolerations[0].key == "nvidia.com/gpu"
    args = plan.process_args
    assert args[args.index("--execution-provider") + 1] == "cuda"
    assert args[args.index("--batch-size") + 1] == "32"
    assert args[args.index("--detector") + 1] == "centerface"
    # split and compose never get the GPU image or GPU placement
    assert plan.cpu_pod.image == "reg/cpu:2"
    assert plan.cpu_pod.placement.tolerations is None


@pytest.mark.parametrize(
    ("asked", "fallback", "runtime"),
    [
        (None, False, ExecutionProvider.CUDA),  # a GPU job's pods need their GPU
        (ExecutionProvider.AUTO, False, ExecutionProvider.CUDA),
        (ExecutionProvider.TENSORRT, False, ExecutionProvider.TENSORRT),
        (ExecutionProvider.CPU, False, ExecutionProvider.CPU),  # asked for by name
        (None, True, ExecutionProvider.AUTO),  # CUDA where it starts, else the CPU, as recorded
        (ExecutionProvider.CUDA, True, ExecutionProvider.AUTO),
        (ExecutionProvider.TENSORRT, True, ExecutionProvider.TENSORRT),
    ],
)
def test_a_gpu_jobs_runtime_needs_the_gpu_unless_the_spec_allows_the_cpu(
    asked: ExecutionProvider | None, fallback: bool, runtime: ExecutionProvider
) -> None:
    assert gpu_runtime(asked, fallback) is runtime


def test_a_gpu_job_asking_auto_gets_cuda_and_with_the_fallback_auto(cfg: OperatorConfig) -> None:
    def runtime(**resources: object) -> str:
        args = resolve(
            spec(detector={"executionProvider": "auto"}, resources=resources), OWNER, cfg
        ).process_args
        return args[args.index("--execution-provider") + 1]

    assert runtime(gpus=1) == "cuda"
    assert runtime(gpus=1, allowCpuFallback=True) == "auto"
    assert runtime(gpus=0) == "auto"


def test_spec_wins_over_defaults(cfg: OperatorConfig) -> None:
    plan = resolve(
        spec(detector={"name": "scrfd", "threshold": 0.6}, images={"worker": "mine:1"},
             placement={"nodeSelector": {"kubernetes.io/os": "windows"}}),
        OWNER,
        cfg,
    )  # fmt: skip
    args = plan.process_args
    assert args[args.index("--threshold") + 1] == "0.6"
    assert args[args.index("--detector") + 1] == "scrfd"
    assert plan.cpu_pod.image == "mine:1"
    assert plan.cpu_pod.placement.node_selector == {"kubernetes.io/os": "windows"}


def test_env_image_applies_without_defaults_file() -> None:
    config = load_config(
        {"FACEBLUR_WORKER_IMAGE": "env/cpu:1", "FACEBLUR_WORKER_SERVICE_ACCOUNT": "fb-worker"}
    )
    plan = resolve(spec(storage={"endpoint": "s3:9000"}), OWNER, config)
    assert plan.cpu_pod.image == "env/cpu:1"
    assert plan.service_account == "fb-worker"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACEBLUR_METRICS_PORT": "http"}, "FACEBLUR_METRICS_PORT"),
        ({"FACEBLUR_LOG_LEVEL": "loud"}, "FACEBLUR_LOG_LEVEL"),
        ({"FACEBLUR_DEFAULTS": "/nonexistent/defaults.yaml"}, "cannot read"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_config(env)


def test_bad_defaults_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("detector: {thresold: 0.3}\n")
    with pytest.raises(SettingsError, match=r"detector\.thresold"):
        load_config({"FACEBLUR_DEFAULTS": str(path)})


def test_settings_defaults() -> None:
    config = load_config({"FACEBLUR_NAMESPACES": "a, b,,"})
    assert config.namespaces == ("a", "b")
    assert not config.clusterwide
    assert (config.metrics_port, config.health_port) == (8080, 8081)
    assert load_config({}).clusterwide


def test_openvino_on_a_gpu_worker_by_the_defaults_is_an_invalid_spec(tmp_path: Path) -> None:
    """The spec alone passes the schema's rule; with the defaults' GPUs it would fail in its pods."""
    path = tmp_path / "defaults.yaml"
    path.write_text(DEFAULTS_YAML.replace("resources: {requests", "resources: {gpus: 1, requests", 1))
    config = load_config({"FACEBLUR_DEFAULTS": str(path)})
    with pytest.raises(InvalidSpecError, match=r"GPU image, which has no OpenVINO.*defaults"):
        resolve(spec(detector={"executionProvider": "openvino"}), OWNER, config)
    assert resolve(spec(detector={"executionProvider": "openvino"}, resources={"gpus": 0}), OWNER, config)


def test_a_lowered_memory_limit_lowers_the_default_request_to_it(cfg: OperatorConfig) -> None:
    """The API server refuses a Job whose pods request more than their limit (1Gi default > 64Mi)."""
    pod = resolve(spec(resources={"limits": {"memory": "64Mi"}}), OWNER, cfg).worker_pod
    assert (pod.requests.cpu, pod.requests.memory, pod.limits.memory) == ("1", "64Mi", "64Mi")
    kept = resolve(spec(resources={"limits": {"memory": "2Gi"}}), OWNER, cfg).worker_pod
    assert kept.requests.memory == "1Gi"


def test_a_request_the_spec_sets_above_the_limit_is_an_invalid_spec(cfg: OperatorConfig) -> None:
    with pytest.raises(InvalidSpecError, match=r"requests.memory 8Gi is above .* limit 4Gi.*limits.memory"):
        resolve(spec(resources={"requests": {"memory": "8Gi"}}), OWNER, cfg)
    with pytest.raises(InvalidSpecError, match=r"requests\.cpu 1500m is above"):
        resolve(spec(resources={"requests": {"cpu": "1500m"}, "limits": {"cpu": 1}}), OWNER, cfg)


@pytest.mark.parametrize(
    ("text", "value"),
    [("64Mi", 64 * 2**20), ("1Gi", 2**30), ("500m", 0.5), ("2", 2), (3, 3), ("1e3", 1000), ("1.5G", 1.5e9)],
)
def test_quantities_compare_by_value(text: int | str, value: float) -> None:
    assert float(quantity_value(text)) == value


POLICY = JobPolicy(images=("reg.example/fb/worker",), endpoints=("https://s3.example",), secrets=("fb-s3",))


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({}, []),  # unset fields take the administrator's defaults
        ({"images": {"worker": "reg.example/fb/worker:1.2"}}, []),
        ({"images": {"worker": "reg.example/fb/worker@sha256:" + "a" * 64}}, []),
        (
            {"images": {"worker": "reg.example/fb/worker-evil:1"}},
            ["spec.images.worker"],
        ),  # not a prefix match
        ({"images": {"gpuWorker": "miner:1"}}, ["spec.images.gpuWorker"]),
        ({"storage": {"endpoint": "https://s3.example", "credentialsSecret": {"name": "fb-s3"}}}, []),
        ({"storage": {"endpoint": "https://collector.example"}}, ["spec.storage.endpoint"]),
        ({"storage": {"credentialsSecret": {"name": "other-team"}}}, ["spec.storage.credentialsSecret.name"]),
    ],
)
def test_a_spec_may_name_only_what_the_job_policy_allows(fields: dict[str, Any], refused: list[str]) -> None:
    found = policy_violations(spec(**fields), POLICY)
    assert [v.split()[0] for v in found] == refused


def test_the_operator_refuses_what_the_policy_does_not_allow_naming_what_is(cfg: OperatorConfig) -> None:
    """For clusters without admission policies: the same lists, from the operator's defaults."""
    policed = replace(cfg, defaults=cfg.defaults.model_copy(update={"job_policy": POLICY}))
    with pytest.raises(
        InvalidSpecError, match=r"spec.storage.endpoint https://x is not allowed; .*https://s3.example"
    ):
        resolve(spec(storage={"endpoint": "https://x"}), OWNER, policed)
    assert resolve(spec(), OWNER, policed).storage.endpoint == cfg.defaults.storage.endpoint
    assert policy_violations(spec(images={"worker": "anything:1"}), JobPolicy()) == []  # no lists: no policy


@pytest.mark.parametrize(
    ("output", "refused"),
    [
        ({"key": "a/b.mov"}, True),  # the input's bucket by default
        ({"bucket": "media", "key": "a/b.mov"}, True),
        ({"bucket": "other", "key": "a/b.mov"}, False),
        ({"key": "a/b.blurred.mov"}, False),
        ({}, False),  # the default key is the input's with .blurred.mp4
    ],
)
def test_the_output_is_never_the_input(output: dict[str, str], refused: bool) -> None:
    if refused:
        with pytest.raises(ValidationError, match="output is the input"):
            spec(output=output)
    else:
        spec(output=output)
