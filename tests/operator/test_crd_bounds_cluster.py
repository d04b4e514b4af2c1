"""A spec the worker cannot run never reaches it: the real API server refuses every value just
outside a processing option's bounds, with a message that names the field.

The values come from the generated schema, whose bounds come from the contract the worker's CLI
declares its options from (tests/contract/test_seam.py proves the inside edges parse)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from faceblur_operator import crd
from faceblur_testenv.cluster import TestCluster
from kube_support import job_doc

pytestmark = pytest.mark.cluster

SECTIONS = ("detector", "anonymization", "smoothing", "encoding", "chunking", "failSecure")
BASE: dict[str, Any] = {"input": {"bucket": "in", "key": "a.mp4"}}


def outside_values() -> Iterator[tuple[str, Any]]:
    """(camelCase path under spec, the nearest value outside a bound) for every numeric bound."""
    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for section in SECTIONS:
        for name, node in spec["properties"][section]["properties"].items():
            integer = node.get("type") == "integer"
            if "minimum" in node:
                low = node["minimum"]
                yield (
                    f"{section}.{name}",
                    low
                    if node.get("exclusiveMinimum")
                    else (low - 1 if integer else math.nextafter(low, -math.inf)),
                )
            if "maximum" in node:
                high = node["maximum"]
                yield (
                    f"{section}.{name}",
                    high
                    if node.get("exclusiveMaximum")
                    else (high + 1 if integer else math.nextafter(high, math.inf)),
                )


CASES = list(outside_values())


def test_the_threshold_that_made_every_chunk_fail_is_among_them() -> None:
    assert ("detector.threshold", 0.0) in CASES
    assert ("anonymization.maskScale", math.nextafter(1.0, -math.inf)) in CASES


@pytest.mark.parametrize(("path", "value"), CASES, ids=[f"{p}={v}" for p, v in CASES])
def test_the_api_server_refuses_a_value_outside_the_workers_bounds(
    test_cluster: TestCluster, crd: None, path: str, value: Any
) -> None:
    section, name = path.split(".")
    spec = {**BASE, section: {name: value}}
    done = test_cluster.kubectl(
        "create", "--dry-run=server", "-n", "default", "-f", "-",
        input=json.dumps(job_doc("bounds", spec)), check=False,
    )  # fmt: skip
    assert done.returncode != 0, f"{path}={value} was admitted"
    assert f"spec.{path}" in done.stderr, done.stderr
    assert "should be" in done.stderr, done.stderr


INSIDE = {"left": 0, "top": 0, "width": 1, "height": 1}  # integers: CEL must compare them as numbers
REGION_CASES = [
    ({**INSIDE, "left": 0.5, "width": 0.6}, "left + width must be <= 1"),
    ({**INSIDE, "top": 0.25, "height": 0.8}, "top + height must be <= 1"),
    ({**INSIDE, "start": 5, "end": 5}, "start must be before end"),
    ({**INSIDE, "left": 1, "width": 0.5}, "should be less than 1"),
    ({**INSIDE, "width": 0}, "should be greater than 0"),
    ({**INSIDE, "start": -1}, "should be greater than or equal to 0"),
]


def _dry_run(test_cluster: TestCluster, spec: dict[str, Any]) -> Any:
    return test_cluster.kubectl(
        "create", "--dry-run=server", "-n", "default", "-f", "-",
        input=json.dumps(job_doc("regions", spec)), check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("region", "message"), REGION_CASES, ids=[m for _, m in REGION_CASES])
def test_the_api_server_refuses_a_region_the_worker_refuses(
    test_cluster: TestCluster, crd: None, region: dict[str, Any], message: str
) -> None:
    done = _dry_run(test_cluster, {**BASE, "regions": {"blur": [region]}})
    assert done.returncode != 0, f"{region} was admitted"
    assert "spec.regions.blur[0]" in done.stderr, done.stderr
    assert message in done.stderr, done.stderr


def test_the_api_server_admits_regions_at_their_edges(test_cluster: TestCluster, crd: None) -> None:
    keep = [INSIDE, {"left": 0.75, "top": 0.5, "width": 0.25, "height": 0.5, "start": 0, "end": 1000000}]
    blur = [{**INSIDE, "start": 10}, {**INSIDE, "end": 0.04}] * 16  # the most the schema admits
    done = _dry_run(
        test_cluster, {**BASE, "regions": {"keep": keep, "blur": blur}, "failSecure": {"enabled": True}}
    )
    assert done.returncode == 0, done.stderr


def test_the_api_server_refuses_openvino_on_a_gpu_worker(test_cluster: TestCluster, crd: None) -> None:
    """The GPU image has no OpenVINO: such a job could only fail in its first worker pod."""
    gpu = {**BASE, "resources": {"gpus": 1}}
    done = _dry_run(test_cluster, {**gpu, "detector": {"executionProvider": "openvino"}})
    assert done.returncode != 0, "openvino on a GPU worker was admitted"
    assert "GPU image, which has no OpenVINO" in done.stderr, done.stderr
    for admitted in (
        {**gpu, "detector": {"executionProvider": "cuda"}},
        {**BASE, "detector": {"executionProvider": "openvino"}},
    ):
        done = _dry_run(test_cluster, admitted)
        assert done.returncode == 0, done.stderr


def test_the_api_server_refuses_an_output_that_is_the_input(test_cluster: TestCluster, crd: None) -> None:
    """The input is never overwritten: a spec whose output is its input cannot be created."""
    for output in ({"key": "a.mp4"}, {"bucket": "in", "key": "a.mp4"}):
        done = _dry_run(test_cluster, {**BASE, "output": output})
        assert done.returncode != 0, f"output {output} was admitted"
        assert "output is the input (the same bucket and key)" in done.stderr, done.stderr
    for output in ({"bucket": "out", "key": "a.mp4"}, {"key": "a.blurred.mp4"}, {}):
        done = _dry_run(test_cluster, {**BASE, "output": output})
        assert done.returncode == 0, done.stderr
