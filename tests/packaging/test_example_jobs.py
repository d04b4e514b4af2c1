"""The example FaceBlurJobs (manifests/examples/) are valid against the CRD's openAPIV3Schema, and
laid out so that applying a folder runs: CPU examples at the top, GPU ones in gpu/.

The API server refuses unknown fields (kubectl's strict field validation), so every object schema
without additionalProperties or x-kubernetes-preserve-unknown-fields is treated as closed here too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_support import FACEBLURJOB_CRD, MANIFESTS, faceblurjob_validator

EXAMPLES_DIR = MANIFESTS / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.rglob("*.yaml"))
IDS = [p.relative_to(EXAMPLES_DIR).with_suffix("").as_posix() for p in EXAMPLES]


def test_there_are_cpu_gpu_and_debug_examples() -> None:
    assert set(IDS) >= {"cpu", "gpu/gpu", "debug"}


def asks_for_gpus(path: Path) -> bool:
    return any(
        job["spec"].get("resources", {}).get("gpus", 0) > 0 for job in yaml.safe_load_all(path.read_text())
    )


def test_gpu_examples_are_apart_from_the_cpu_ones() -> None:
    """`kubectl apply -f manifests/examples/` (not recursive) must leave no job Unschedulable on a cluster
    without GPUs, and `kubectl apply -f manifests/examples/gpu/` applies the GPU ones."""
    top = [p for p in EXAMPLES if p.parent == EXAMPLES_DIR]
    gpu = [p for p in EXAMPLES if p.parent == EXAMPLES_DIR / "gpu"]
    assert top
    assert gpu
    assert sorted(top + gpu) == EXAMPLES, "examples only at the top and in gpu/"
    assert [p.name for p in top if asks_for_gpus(p)] == []
    assert [p.name for p in gpu if not asks_for_gpus(p)] == []


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_satisfies_the_crd_schema(path: Path) -> None:
    for job in yaml.safe_load_all(path.read_text()):
        assert (
            job["apiVersion"]
            == f"{FACEBLURJOB_CRD['spec']['group']}/{FACEBLURJOB_CRD['spec']['versions'][0]['name']}"
        )
        assert job["kind"] == FACEBLURJOB_CRD["spec"]["names"]["kind"]
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in faceblurjob_validator().iter_errors(job)
        ]
        assert not errors


BROKEN = [
    (("spec", "chunking", "chunks"), 0),  # below the minimum
    (("spec", "detector", "threshold"), 0),  # at an exclusive minimum
    (("spec", "anonymization", "method"), "pixelate"),  # not in the enum
    (("spec", "parallelizm"), 2),  # a typo: unknown field
    (("spec", "detector", "scale"), "640"),  # not WxH
]


@pytest.mark.parametrize(("path", "value"), BROKEN, ids=["/".join(p) for p, _ in BROKEN])
def test_schema_refuses_a_broken_example(path: tuple[str, ...], value: Any) -> None:
    job = copy.deepcopy(yaml.safe_load((MANIFESTS / "examples" / "debug.yaml").read_text()))
    node = job
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert list(faceblurjob_validator().iter_errors(job))


def test_the_argo_workflow_example_waits_on_real_phases_and_creates_a_valid_job() -> None:
    """docs/deploy.md's Argo Workflows step: its conditions name phases the operator writes, and the
    FaceBlurJob it creates passes the CRD's schema."""
    from faceblur_operator.api import Phase

    text = (MANIFESTS.parent / "docs" / "deploy.md").read_text()
    block = text.split("<!-- argo-workflow-example -->", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (template,) = yaml.safe_load(block)["spec"]["templates"]
    resource = template["resource"]
    conditions = {resource["successCondition"]: Phase.SUCCEEDED, resource["failureCondition"]: Phase.FAILED}
    for condition, phase in conditions.items():
        field, _, value = condition.partition(" == ")
        assert (field, value) == ("status.phase", phase.value)
    job = yaml.safe_load(resource["manifest"])
    assert (job["apiVersion"], job["kind"]) == (f"{FACEBLURJOB_CRD['spec']['group']}/v1alpha1", "FaceBlurJob")
    faceblurjob_validator().validate(job)
