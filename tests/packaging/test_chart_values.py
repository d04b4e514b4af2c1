"""values.yaml, values.schema.json and the documentation of each value stay in step."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml
from packaging_support import CHART, Helm, HelmError

VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def test_default_values_satisfy_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


def _value_paths(node: Any, prefix: str = "") -> set[str]:
    """Dotted paths of the values that are maps the chart defines key by key (not free-form maps)."""
    paths: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            paths.add(prefix + key)
            if isinstance(value, dict) and value:
                paths |= _value_paths(value, f"{prefix}{key}.")
    return paths


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str]]:
    """(every property path, the paths of closed objects: additionalProperties false, "" for the root)."""
    paths: set[str] = set()
    closed = {prefix.rstrip(".")} if schema.get("additionalProperties") is False else set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(prefix + key)
        sub_paths, sub_closed = _schema_paths(sub, f"{prefix}{key}.")
        paths |= sub_paths
        closed |= sub_closed
    return paths, closed


def test_schema_and_values_name_the_same_settings() -> None:
    schema_paths, closed = _schema_paths(SCHEMA)
    schema_paths.discard("global")
    value_paths = _value_paths(VALUES)
    # Keys inside free-form maps (resources, securityContext, ...) are Kubernetes fields, not settings.
    settings = {p for p in value_paths if (p.rsplit(".", 1)[0] if "." in p else "") in closed}
    assert settings - schema_paths == set(), "values missing from values.schema.json"
    assert schema_paths - value_paths == set(), "schema properties with no default in values.yaml"


def _undocumented(text: str) -> list[str]:
    """Leaf values with no `# --` comment above them or above a parent (helm-docs' convention)."""
    lines = text.splitlines()
    missing: list[str] = []
    documented_parents: list[tuple[int, bool]] = []  # (indent, documented) of the open parents
    comment_block: list[str] = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#"):
            comment_block.append(stripped)
            continue
        match = re.match(r"^( *)([A-Za-z][\w.-]*):(.*)$", line)
        if not match:
            if stripped:
                comment_block = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while documented_parents and documented_parents[-1][0] >= indent:
            documented_parents.pop()
        documented = any(c.startswith("# --") for c in comment_block)
        covered = documented or any(d for _, d in documented_parents)
        following = next((n for n in lines[number + 1 :] if n.strip() and not n.strip().startswith("#")), "")
        has_children = not rest and len(following) - len(following.lstrip()) > indent
        if not has_children and not covered:
            missing.append(f"line {number + 1}: {key}")
        documented_parents.append((indent, documented))
        comment_block = []
    return missing


def test_every_value_is_documented() -> None:
    assert _undocumented(VALUES_TEXT) == []


def test_documentation_check_notices_a_bare_value() -> None:
    text = "a:\n  # -- documented\n  b: 1\n  c: 2\n# -- whole map\nd:\n  e: 1\n"
    assert _undocumented(text) == ["line 4: c"]


BAD_VALUES = [
    ("defaults.parallelism=0", "defaults.parallelism"),
    ("defaults.detector.name=yolo", "defaults.detector.name"),
    ("defaults.detector.threshold=1.5", "defaults.detector.threshold"),
    ("defaults.detector.scale=640", "defaults.detector.scale"),
    ("defaults.storage.endpoint=s3://bucket", "defaults.storage.endpoint"),
    ("defaults.gpuDetector.executionProvider=gpu", "defaults.gpuDetector.executionProvider"),
    ("defaults.gpuPlacement.runtimeClassName=Not_A_Name", "defaults.gpuPlacement.runtimeClassName"),
    ("defaults.resources.gpus=-1", "defaults.resources.gpus"),
    ("operator.logLevel=verbose", "operator.logLevel"),
    ("operator.watchNamespaces={Team}", "operator.watchNamespaces"),
    ("image.digest=latest", "image.digest"),
    ("image.repository=", "image.repository"),
    ("minio.auth.secretKey=short", "minio.auth.secretKey"),
    ("minio.auth.accessKey=ab", "minio.auth.accessKey"),
    ("minio.bucket=Bad_Bucket", "minio.bucket"),
    ("minio.service.nodePort=80", "minio.service.nodePort"),
    ("metrics.port=70000", "metrics.port"),
    ("defaults.resources.requests.cpu=lots", "defaults.resources.requests"),
    ("defaults.placement.tolerations[0].operator=Maybe", "defaults.placement.tolerations"),
    ("unknownSetting=1", "unknownSetting"),
]


@pytest.mark.parametrize(("value", "path"), BAD_VALUES, ids=[v for v, _ in BAD_VALUES])
def test_schema_rejects_bad_values(helm: Helm, value: str, path: str) -> None:
    with pytest.raises(HelmError, match="schema") as failure:
        helm.template(value)
    assert path.split(".")[-1] in str(failure.value)


@pytest.mark.parametrize("section", ["detector", "gpuDetector"])
def test_detector_defaults_have_the_bounds_of_the_faceblurjob_schema(section: str) -> None:
    """The chart's detector defaults become every job's detector fields, so helm refuses what the API
    server would (the CRD's bounds are the contract's: faceblur_contract.defaults)."""
    from faceblur_operator import crd

    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    api = spec["properties"]["detector"]["properties"]
    chart = SCHEMA["properties"]["defaults"]["properties"][section]["properties"]
    for name in ("threshold", "batchSize"):
        low = "exclusiveMinimum" if api[name].get("exclusiveMinimum") else "minimum"
        assert (chart[name].get(low), chart[name].get("maximum")) == (
            api[name]["minimum"],
            api[name]["maximum"],
        )
    assert chart["scale"]["pattern"] == f"^$|{api['scale']['pattern']}"
    assert set(chart["name"]["enum"]) - {""} == set(api["name"]["enum"])
    assert set(chart["executionProvider"]["enum"]) - {""} == set(api["executionProvider"]["enum"])
