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
from cluster_support import job_doc
from faceblur_operator import crd
from faceblur_testenv.cluster import TestCluster

pytestmark = pytest.mark.cluster

SECTIONS = ("detector", "anonymization", "smoothing", "encoding", "chunking")
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
