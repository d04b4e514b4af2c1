"""The pure Job builders: the manifests the operator creates, checked field by field."""

from __future__ import annotations

from typing import Any

import pytest
from faceblur_contract.exits import ExitCode
from faceblur_operator.api import FaceBlurJobSpec
from faceblur_operator.builders import (
    build_cleanup_job,
    build_compose_job,
    build_deletion_cleanup_job,
    build_split_job,
    build_worker_job,
)
from faceblur_operator.naming import JOB_NAME_MAX, LABEL_JOB_UID, LABEL_KUEUE_QUEUE, LABEL_STAGE
from faceblur_operator.plan import JobPlan, Owner, resolve
from operator_support import OWNER, config
from pydantic import ValidationError

BASE_SPEC: dict[str, Any] = {
    "input": {"bucket": "media", "key": "in/clip.mp4"},
    "storage": {"endpoint": "http://minio:9000", "credentialsSecret": {"name": "s3-creds"}},
}


def plan_for(owner: Owner = OWNER, **spec: Any) -> JobPlan:
    return resolve(FaceBlurJobSpec.model_validate({**BASE_SPEC, **spec}), owner, config())


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(job)["env"]}


ALL_BUILDERS = [
    ("split", lambda p: build_split_job(p), "clip-split"),
    ("work", lambda p: build_worker_job(p, chunks=12), "clip-work"),
    ("compose", lambda p: build_compose_job(p), "clip-compose"),
    ("cleanup", lambda p: build_cleanup_job(p), "clip-cleanup"),
]


@pytest.mark.parametrize(("stage", "build", "name"), ALL_BUILDERS, ids=[b[0] for b in ALL_BUILDERS])
def test_every_job_is_owned_labelled_named_and_safe(stage: str, build: Any, name: str) -> None:
    job = build(plan_for())
    meta = job["metadata"]
    assert (meta["name"], meta["namespace"]) == (name, "media")
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "faceblur.dev/v1alpha1",
            "kind": "FaceBlurJob",
            "name": "clip",
            "uid": OWNER.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    for labels in (meta["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[LABEL_JOB_UID] == OWNER.uid
        assert labels[LABEL_STAGE] == stage
        assert labels["app.kubernetes.io/managed-by"] == "faceblur-operator"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = container(job)
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = env_of(job)
    assert env["FACEBLUR_TERMINATION_LOG"] == "/dev/termination-log"
    assert env["FACEBLUR_S3_ENDPOINT"] == "http://minio:9000"
    assert env["FACEBLUR_S3_ACCESS_KEY"] == {"secretKeyRef": {"name": "s3-creds", "key": "accessKey"}}
    assert env["FACEBLUR_S3_SECRET_KEY"] == {"secretKeyRef": {"name": "s3-creds", "key": "secretKey"}}
    assert "suspend" not in job["spec"]
    assert LABEL_KUEUE_QUEUE not in meta["labels"]


def test_split_job_runs_split_with_the_chunking() -> None:
    job = build_split_job(plan_for(chunking={"framesPerChunk": 250, "mode": "copy"}))
    assert container(job)["command"] == [
        "faceblur", "split",
        "--input", "s3://media/in/clip.mp4",
        "--job", f"s3://media/faceblur-jobs/media/clip-{OWNER.uid[:8]}",
        "--owner", OWNER.uid,  # claims the prefix: another job's, or another input's, is refused
        "--output", "s3://media/in/clip.blurred.mp4",  # checked before any work: not the input, not taken
        "--chunk-frames", "250",
        "--split-mode", "copy",
        "--truncated-input", "refuse",  # a truncated input fails at split, before any work
    ]  # fmt: skip
    assert job["spec"]["backoffLimit"] == 2


def test_split_processes_a_truncated_inputs_readable_frames_only_when_the_spec_allows_it() -> None:
    source = {"bucket": "media", "key": "in/clip.mp4", "ifTruncated": "readable"}
    command = container(build_split_job(plan_for(input=source)))["command"]
    assert command[command.index("--truncated-input") + 1] == "readable"


def test_overwrite_is_passed_to_split_and_compose_only_when_the_spec_allows_it() -> None:
    for build in (build_split_job, build_compose_job):
        assert "--overwrite" not in container(build(plan_for()))["command"]
        assert "--overwrite" in container(build(plan_for(output={"overwrite": True})))["command"]


def test_worker_job_is_indexed_with_per_index_retries_and_fail_fast_policy() -> None:
    job = build_worker_job(plan_for(parallelism=3, maxRetriesPerChunk=4), chunks=12)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 12, 3)
    assert spec["backoffLimitPerIndex"] == 4
    assert "backoffLimit" not in spec
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {
            "containerName": "worker",
            "operator": "In",
            # a usage error (2) is permanent too: the command line came from the spec, no retry fixes it
            "values": [
                int(ExitCode.USAGE),
                int(ExitCode.INVALID_INPUT),
                int(ExitCode.MODEL),
                int(ExitCode.RESIDUAL_FACES),
                int(ExitCode.GPU_UNAVAILABLE),
                int(ExitCode.PREFIX_IN_USE),
                int(ExitCode.OUTPUT_EXISTS),
                int(ExitCode.INPUT_TRUNCATED),
            ],
        },
    }
    assert rules[1] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert build_worker_job(plan_for(parallelism=8), chunks=2)["spec"]["parallelism"] == 2


def test_worker_job_passes_every_spec_option_as_cli_flags() -> None:
    plan = plan_for(
        detector={"name": "scrfd", "model": "/models/scrfd.onnx", "threshold": 0.45, "scale": "640x360",
                  "batchSize": 16, "executionProvider": "cpu"},
        anonymization={"method": "mosaic", "maskShape": "box", "maskScale": 1.5},
        smoothing={"lookBack": 12, "lookAhead": 3},
        encoding={"crf": 20, "preset": "fast", "encoder": "nvenc"},
        verification={"every": 5, "thresholdFactor": 0.7, "scaleFactor": 1.5, "maxResidualFrames": 0},
        debug=True,
    )  # fmt: skip
    command = container(build_worker_job(plan, chunks=2))["command"]
    assert command == [
        "faceblur", "process", "--job", plan.job_url,
        "--detector", "scrfd", "--model", "/models/scrfd.onnx", "--threshold", "0.45", "--scale", "640x360",
        "--batch-size", "16", "--execution-provider", "cpu",
        "--method", "mosaic", "--mask-shape", "box", "--mask-scale", "1.5", "--mosaic-blocks", "6",
        "--look-back", "12", "--look-ahead", "3", "--crf", "20", "--preset", "fast", "--encoder", "nvenc",
        "--no-fail-secure", "--fail-secure-hold", "50",
        "--verify", "--verify-every", "5", "--verify-threshold-factor", "0.7", "--verify-scale-factor", "1.5",
        "--verify-fix", "--verify-max-residual-frames", "0", "--debug",
    ]  # fmt: skip
    assert "--index" not in command  # JOB_COMPLETION_INDEX, set by Kubernetes, picks the chunk


def test_gpu_worker_gets_gpu_limits_gpu_image_and_video_capabilities() -> None:
    plan = plan_for(
        resources={"gpus": 1, "requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": 12 * 2**30}}
    )
    work = build_worker_job(plan, chunks=4)
    c = container(work)
    assert c["resources"] == {
        "requests": {"cpu": "4", "memory": "8Gi"},
        "limits": {"memory": "12884901888", "nvidia.com/gpu": "1"},  # an int quantity, as text
    }
    assert c["image"].startswith("ghcr.io/faceblur/faceblur-worker-gpu:")
    assert env_of(work)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility,video"
    for job in (build_split_job(plan), build_compose_job(plan)):  # only the worker Job holds GPUs
        assert "nvidia.com/gpu" not in str(container(job)["resources"])
        assert "NVIDIA_DRIVER_CAPABILITIES" not in env_of(job)
        assert container(job)["image"].startswith("ghcr.io/faceblur/faceblur-worker:")


@pytest.mark.parametrize("resource", ["nvidia.com/gpu.shared", "nvidia.com/mig-1g.10gb"])
def test_a_gpu_is_asked_for_as_the_resource_the_cluster_advertises(resource: str) -> None:
    """Time-slicing with renamed resources and MIG's mixed strategy advertise other names."""
    work = build_worker_job(plan_for(resources={"gpus": 1, "gpuResource": resource}), chunks=2)
    assert container(work)["resources"]["limits"] == {resource: "1"}


def test_gpu_pods_can_be_kept_off_nodes_whose_driver_is_too_old() -> None:
    """By GPU Feature Discovery's driver label; split and compose run anywhere."""
    plan = plan_for(resources={"gpus": 1, "minDriverMajor": 580})
    affinity = build_worker_job(plan, chunks=2)["spec"]["template"]["spec"]["affinity"]
    (term,) = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == {
        "matchExpressions": [
            {"key": "nvidia.com/cuda.driver-version.major", "operator": "Gt", "values": ["579"]}
        ]
    }
    for job in (build_split_job(plan), build_compose_job(plan)):
        assert "affinity" not in job["spec"]["template"]["spec"]
    assert (
        "affinity"
        not in build_worker_job(plan_for(resources={"minDriverMajor": 580}), chunks=2)["spec"]["template"][
            "spec"
        ]
    )


def test_a_pod_gets_one_gpu_at_most() -> None:
    """A worker uses the one device it is given: a second would be held idle, so the API refuses it."""
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        plan_for(resources={"gpus": 2})
    with pytest.raises(ValidationError, match="pattern"):
        plan_for(resources={"gpus": 1, "gpuResource": "gpu"})


def test_cpu_worker_has_no_gpu_settings() -> None:
    work = build_worker_job(plan_for(), chunks=4)
    assert "nvidia.com/gpu" not in str(container(work)["resources"])
    assert "NVIDIA_DRIVER_CAPABILITIES" not in env_of(work)


def test_kueue_queue_labels_and_suspends_every_job() -> None:
    plan = plan_for(queueName="team-a")
    for job in (build_split_job(plan), build_worker_job(plan, 3), build_compose_job(plan)):
        assert job["metadata"]["labels"][LABEL_KUEUE_QUEUE] == "team-a"
        assert job["spec"]["suspend"] is True


def test_compose_job_cleans_up_per_policy_and_debug() -> None:
    assert container(build_compose_job(plan_for()))["command"][-1] == "--cleanup"
    never = container(build_compose_job(plan_for(cleanup="Never", debug=True)))["command"]
    assert never == ["faceblur", "compose", "--job", plan_for().job_url, "--output", "s3://media/in/clip.blurred.mp4",
                     "--debug"]  # fmt: skip


def test_placement_and_pull_policy_reach_the_pod() -> None:
    plan = plan_for(
        placement={
            "nodeSelector": {"pool": "video"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "video", "effect": "NoSchedule"}
            ],
            "priorityClassName": "batch-low",
            "runtimeClassName": "nvidia",
        },
        images={"worker": "registry/w:1", "pullPolicy": "Always"},
    )
    job = build_split_job(plan)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "video"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "video", "effect": "NoSchedule"}
    ]
    assert (pod["priorityClassName"], pod["runtimeClassName"]) == ("batch-low", "nvidia")
    assert (container(job)["image"], container(job)["imagePullPolicy"]) == ("registry/w:1", "Always")


def test_long_names_stay_short_and_distinct() -> None:
    owner = Owner(name="a" * 200, namespace="media", uid=OWNER.uid)
    other = Owner(name="a" * 199 + "b", namespace="media", uid=OWNER.uid)
    names = {build_worker_job(plan_for(o), chunks=2)["metadata"]["name"] for o in (owner, other)}
    assert len(names) == 2
    assert all(len(n) <= JOB_NAME_MAX and n.endswith("-work") for n in names)
    split = build_split_job(plan_for(owner))["metadata"]
    assert len(split["labels"]["app.kubernetes.io/instance"]) <= 63
    assert split["annotations"]["faceblur.dev/faceblurjob"] == owner.name  # the full name, for lookups


def test_deletion_cleanup_is_unowned_and_expires() -> None:
    job = build_deletion_cleanup_job(plan_for(queueName="q"))
    assert "ownerReferences" not in job["metadata"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["suspend"] is True  # until the job's pods are gone: the operator resumes it
    assert container(job)["command"][-4:] == ["--job", plan_for().job_url, "--owner", OWNER.uid]


def test_builders_are_pure() -> None:
    plan = plan_for()
    assert build_worker_job(plan, 5) == build_worker_job(plan, 5)
    first = build_split_job(plan)
    first["metadata"]["labels"]["x"] = "y"
    assert "x" not in build_split_job(plan)["metadata"]["labels"]
    with pytest.raises(ValueError, match="at least one chunk"):
        build_worker_job(plan, 0)


def test_worker_and_compose_pods_request_and_bound_scratch_space_from_the_input_s_size() -> None:
    gib = 1024**3
    work = build_worker_job(plan_for(), chunks=4, input_bytes=8 * gib)
    pod = work["spec"]["template"]["spec"]
    # each worker pod: its chunk and the processed copy, each counted at twice its share, plus a margin
    assert container(work)["resources"]["requests"]["ephemeral-storage"] == "8448Mi"
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {"sizeLimit": "8448Mi"}}]
    compose = build_compose_job(plan_for(debug=True), input_bytes=gib)
    assert compose["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] == "8448Mi"
    for unsized in (build_split_job(plan_for()), build_worker_job(plan_for(), chunks=4)):  # size unknown
        assert "ephemeral-storage" not in container(unsized)["resources"].get("requests", {})
        assert unsized["spec"]["template"]["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {}}]
