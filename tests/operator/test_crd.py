"""The generated CRD: up to date, structural, documented, and agreeing with the models and examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faceblur_contract.enums import DetectorName, ReplaceWith
from faceblur_contract.options import BY_SPEC
from faceblur_operator import crd
from faceblur_operator.api import FaceBlurJobSpec
from faceblur_operator.chartschema import VALUES, VALUES_SCHEMA, values_yaml
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").rglob("*.yaml"))


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    version = crd.build_crd()["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_generated_files_are_up_to_date() -> None:
    stale = crd.stale_files(ROOT)
    assert not stale, f"regenerate with `python -m faceblur_operator.crd`: {stale}"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    assert crd.main(["--root", str(tmp_path), "--check"]) == 1
    assert crd.main(["--root", str(tmp_path)]) == 0
    assert crd.main(["--root", str(tmp_path), "--check"]) == 0
    (tmp_path / crd.OUTPUTS[1]).write_text("edited by hand\n")
    assert crd.main(["--root", str(tmp_path), "--check"]) == 1


def test_the_charts_detector_values_follow_the_catalogue(tmp_path: Path) -> None:
    """The chart's defaults.detector is read as a spec's detector section: an option added to the
    catalogue, or a bound moved, makes the values schema stale until it is regenerated."""
    schema_path = tmp_path / VALUES_SCHEMA
    schema_path.parent.mkdir(parents=True)
    schema = json.loads((ROOT / VALUES_SCHEMA).read_text())
    detector = schema["properties"]["defaults"]["properties"]["detector"]["properties"]
    assert set(detector) == {p.removeprefix("detector.") for p in BY_SPEC if p.startswith("detector.")}
    assert detector["batchSize"]["maximum"] == BY_SPEC["detector.batchSize"].bounds.le
    detector["batchSize"]["maximum"] = 512
    schema_path.write_text(json.dumps(schema, indent=2) + "\n")
    crd.main(["--root", str(tmp_path)])
    assert crd.main(["--root", str(tmp_path), "--check"]) == 0
    regenerated = json.loads(schema_path.read_text())["properties"]["defaults"]["properties"]
    assert regenerated["gpuDetector"]["properties"]["batchSize"]["maximum"] == 256
    assert regenerated["images"] == schema["properties"]["defaults"]["properties"]["images"]  # by hand


def test_the_charts_detector_docs_are_the_catalogues_help() -> None:
    """values.yaml's `# --` lines above defaults.detector's keys are the catalogue's help; a comment
    edited by hand is written back, and nothing else in the file moves."""
    current = (ROOT / VALUES).read_text()
    edited = current.replace("    batchSize: null", "    # -- Edited by hand.\n    batchSize: null", 1)
    assert edited != current
    assert values_yaml(edited) == current
    assert f"    # -- {BY_SPEC['detector.threshold'].description}\n    threshold: null" in current
    gpu = current.split("  gpuDetector:")[1]
    assert "    # -- Detection threshold of GPU jobs" in gpu  # gpuDetector's comments stay by hand


def test_reference_lists_every_spec_field_with_its_rules(schema: dict[str, Any]) -> None:
    text = crd.generated_files(ROOT)[crd.REFERENCE]
    fields = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    detector = schema["properties"]["spec"]["properties"]["detector"]["properties"]
    assert {f"spec.detector.{name}" for name in detector} <= fields
    for name in schema["properties"]["spec"]["properties"]:
        assert f"spec.{name}" in fields
    assert "input needs either url, or both bucket and key" in text  # CEL messages shown
    assert '| `spec.storage.credentialsSecret.accessKeyKey` | string |  | `"accessKey"` |' in text


def test_names_scope_and_subresources() -> None:
    spec = crd.build_crd()["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "faceblur.dev",
        "Namespaced",
        "FaceBlurJob",
    )
    assert spec["names"]["shortNames"] == ["fbj"]
    assert spec["names"]["plural"] == "faceblurjobs"
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Progress"] == ".status.progress.chunks"
    assert columns["Faces"] == ".status.progress.facesFound"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    for path, node in walk(schema):
        assert not {"$ref", "$defs", "title"} & node.keys(), path
        assert node.get("additionalProperties") is not False, path
        assert node.get("type") != "null", path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
    spec = schema["properties"]["spec"]
    assert "x-kubernetes-preserve-unknown-fields" not in spec
    assert schema["required"] == ["spec"]
    assert spec["required"] == ["input"]


def test_every_spec_field_is_described_and_strings_are_bounded(schema: dict[str, Any]) -> None:
    for path, node in walk(schema["properties"]["spec"]):
        for name, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{path}.{name} has no description"
        if (node.get("type") == "string" and "enum" not in node and "anyOf" not in path) or node.get(
            "x-kubernetes-int-or-string"
        ):
            assert "maxLength" in node, f"{path} is unbounded (CEL cost)"
        if node.get("type") == "array":
            assert "maxItems" in node, path


YAML_1_1_BOOLEANS = {"y", "n", "yes", "no", "on", "off", "true", "false"}


def test_no_field_name_reads_as_a_boolean_in_kubectl_s_yaml(schema: dict[str, Any]) -> None:
    """kubectl reads YAML 1.1, where a bare `y` is true: a field named so cannot be written in YAML
    (a region's `y` made the API server refuse the CRD itself: `required` held a boolean)."""
    for path, node in walk(schema):
        for name in node.get("properties", {}):
            assert name.lower() not in YAML_1_1_BOOLEANS, f"{path}.{name}"


def test_enums_come_from_the_worker(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert spec["detector"]["properties"]["name"]["enum"] == [d.value for d in DetectorName]
    assert spec["anonymization"]["properties"]["method"]["enum"] == [r.value for r in ReplaceWith]
    assert spec["anonymization"]["properties"]["method"]["default"] == "blur"


def test_cel_rules(schema: dict[str, Any]) -> None:
    rules = [r["rule"] for _, node in walk(schema) for r in node.get("x-kubernetes-validations", [])]
    assert "self.spec == oldSelf.spec" in rules
    assert any("has(self.url)" in r for r in rules)
    assert any("framesPerChunk" in r for r in rules)


def test_conditions_are_a_map_list(schema: dict[str, Any]) -> None:
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid_jobs(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("faceblur.dev/v1alpha1", "FaceBlurJob")
    FaceBlurJobSpec.model_validate(doc["spec"])


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"cpu.yaml", "gpu.yaml", "debug.yaml"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"input": {"bucket": "b"}}, "input needs either url"),
        ({"input": {"url": "https://x", "bucket": "b", "key": "k"}}, "input needs either url"),
        ({"input": {"bucket": "b", "key": "k"}, "detector": {"threshold": 1.5}}, "less than or equal to 1"),
        ({"input": {"bucket": "b", "key": "k"}, "detector": {"scale": "big"}}, "pattern"),
        ({"input": {"bucket": "b", "key": "k"}, "resources": {"limits": {"memory": "lots"}}}, "quantity"),
        (
            {"input": {"bucket": "b", "key": "k"}, "chunking": {"chunks": 2, "framesPerChunk": 5}},
            "at most one",
        ),
        ({"input": {"bucket": "b", "key": "k"}, "anonymization": {"method": "pixelate"}}, "blur"),
        ({"input": {"bucket": "b", "key": "k"}, "secretKey": "x"}, "Extra inputs"),
        (
            {
                "input": {"bucket": "b", "key": "k"},
                "resources": {"gpus": 1},
                "detector": {"executionProvider": "openvino"},
            },
            "GPU image, which has no OpenVINO",
        ),
    ],
)
def test_model_refuses_what_the_schema_refuses(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FaceBlurJobSpec.model_validate(spec)
