"""The example FaceBlurJobs (manifests/examples/) are valid against the CRD's openAPIV3Schema.

The API server refuses unknown fields (kubectl's strict field validation), so every object schema
without additionalProperties or x-kubernetes-preserve-unknown-fields is treated as closed here too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging_support import MANIFESTS

CRD = yaml.safe_load((MANIFESTS / "crd" / "faceblurjobs.yaml").read_text())
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))


def closed(schema: Any) -> Any:
    """A copy of an OpenAPI schema in which objects with declared properties allow no others."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def validator() -> jsonschema.Draft4Validator:
    """CRD schemas are OpenAPI v3.0: `exclusiveMinimum: true` beside `minimum`, as draft 4 reads it."""
    (version,) = [v for v in CRD["spec"]["versions"] if v["storage"]]
    return jsonschema.Draft4Validator(closed(version["schema"]["openAPIV3Schema"]))


def test_there_are_cpu_gpu_and_debug_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"cpu", "gpu", "debug"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_satisfies_the_crd_schema(path: Path) -> None:
    for job in yaml.safe_load_all(path.read_text()):
        assert job["apiVersion"] == f"{CRD['spec']['group']}/{CRD['spec']['versions'][0]['name']}"
        assert job["kind"] == CRD["spec"]["names"]["kind"]
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(job)]
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
    assert list(validator().iter_errors(job))
