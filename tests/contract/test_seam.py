"""The seam between the operator and the worker: every spec the CRD schema admits, rendered by the
operator into a pod's command line, is parsed by the worker's real typer app into the same options.

The edges come from the generated CRD schema itself (each bound, each enum value), so a bound that
moves in the schema without moving in the worker fails here; so does a new processing field
without a reader below.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from faceblur import cli
from faceblur_contract.argv import process_argv
from faceblur_contract.defaults import REGIONS_MAX
from faceblur_contract.options import BY_SPEC, Codec, ProcessOptions, UsageError
from faceblur_contract.regions import Region
from faceblur_operator import crd
from faceblur_operator.api import Detector, FaceBlurJobSpec
from faceblur_operator.plan import JobPlan, Owner, gpu_runtime, process_options, resolve
from faceblur_operator.settings import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").rglob("*.yaml"))
OWNER = Owner(name="seam", namespace="ns", uid="0123456789abcdef")
BASE: dict[str, Any] = {"input": {"bucket": "in", "key": "videos/a.mp4"}, "storage": {"endpoint": "s3:9000"}}

# The sections of the spec that reach the worker's command line.
PROCESS_SECTIONS = (
    "detector", "anonymization", "smoothing", "encoding", "regions", "failSecure", "verification",
)  # fmt: skip
SPLIT_SECTION = "chunking"


def region_docs(regions: tuple[Region, ...]) -> list[dict[str, float]]:
    """Regions as the spec writes them (unset times left out)."""
    names = ("left", "top", "width", "height", "start", "end")
    return [{n: getattr(r, n) for n in names if getattr(r, n) is not None} for r in regions]


def read(options: ProcessOptions, path: str) -> Any:
    """The value the worker holds for a spec field, written as the spec writes it."""
    item = BY_SPEC[path]
    value: Any = options.detectors[0] if item.per_detector else options
    for name in item.path[1:] if item.per_detector else item.path:
        value = getattr(value, name)
    if item.codec is Codec.REGIONS:
        return region_docs(value)
    if item.codec is Codec.SCALE:
        return "x".join(map(str, value or ()))
    return value.value if isinstance(value, StrEnum) else value


SPLIT_PARAMS = {
    "chunking.chunks": "chunks",
    "chunking.framesPerChunk": "chunk_frames",
    "chunking.mode": "split_mode",
}
# String fields have no numeric edges: the shortest and the longest value the pattern admits.
STRING_EDGES = {"detector.model": ["/models/m.onnx", "https://models.example/scrfd.onnx"],
                "detector.scale": ["1x1", "99999x99999"]}  # fmt: skip


def spec_schema() -> dict[str, Any]:
    root = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root["properties"]["spec"]  # type: ignore[no-any-return]


def leaves() -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path, schema) of every field of the sections that reach the worker."""
    properties = spec_schema()["properties"]
    for section in (*PROCESS_SECTIONS, SPLIT_SECTION):
        for name, node in properties[section]["properties"].items():
            yield f"{section}.{name}", node
    yield "debug", properties["debug"]


def edges(node: dict[str, Any]) -> list[Any]:
    """Every value at an edge of what the schema admits for one field."""
    if "enum" in node:
        return list(node["enum"])
    kind = node.get("type")
    if kind == "boolean":
        return [False, True]
    values: list[Any] = []
    if kind in ("integer", "number"):
        step: Callable[[float, float], float] = (
            (lambda v, toward: v + (1 if toward > v else -1))
            if kind == "integer"
            else math.nextafter  # the nearest float inside an exclusive bound
        )
        if "minimum" in node:
            low = node["minimum"]
            values.append(step(low, math.inf) if node.get("exclusiveMinimum") else low)
        if "maximum" in node:
            high = node["maximum"]
            values.append(step(high, -math.inf) if node.get("exclusiveMaximum") else high)
    return values


def with_field(path: str, value: Any) -> dict[str, Any]:
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, name = path.split(".")
    node = spec
    for parent in parents:
        node = node.setdefault(parent, {})
    node[name] = value
    return spec


def region_edges(item: dict[str, Any]) -> list[list[dict[str, float]]]:
    """Region lists at every edge of a region field, the other fields chosen so that the CEL rules
    (x + width <= 1, y + height <= 1, start < end) hold; and the most regions the schema admits."""
    props = item["properties"]
    time_max = props["end"]["maximum"]
    cases: list[list[dict[str, float]]] = []
    for name, node in props.items():
        for value in edges(node):
            region = {"left": 0.0, "top": 0.0, "width": 1.0, "height": 1.0, name: value}
            if name in ("left", "top"):
                region["width" if name == "left" else "height"] = 1.0 - value
            elif name == "start":
                region["end"] = time_max
            elif name == "end":
                region["start"] = 0.0
            cases.append([region])
    many = {"left": 0.25, "top": 0.5, "width": 0.5, "height": 0.125, "start": 1.5, "end": 2.0}
    return [*cases, [many] * REGIONS_MAX]


def edge_cases() -> list[tuple[str, Any]]:
    properties = spec_schema()["properties"]
    cases = []
    for path, node in leaves():
        if node.get("type") == "array":
            cases += [(path, value) for value in region_edges(node["items"])]
        else:
            cases += [(path, value) for value in STRING_EDGES.get(path) or edges(node)]
    assert {p for p, _ in cases} >= {f"regions.{kind}" for kind in properties["regions"]["properties"]}
    return cases


def parse(command: str, args: tuple[str, ...]) -> dict[str, Any]:
    """The worker's real typer app parses a pod's arguments: the values its command receives."""
    group = typer.main.get_command(cli.app)
    context = group.commands[command].make_context(command, list(args))  # type: ignore[attr-defined]
    return dict(context.params)


def plan_of(raw: dict[str, Any]) -> tuple[FaceBlurJobSpec, JobPlan]:
    spec = FaceBlurJobSpec.model_validate(raw)
    return spec, resolve(spec, OWNER, load_config({}))


@pytest.fixture(autouse=True)
def _no_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod's options come from its argv only: no FACEBLUR_* variable of this shell leaks in."""
    for name in list(os.environ):
        if name.startswith("FACEBLUR_") or name == "JOB_COMPLETION_INDEX":
            monkeypatch.delenv(name)


def test_every_processing_field_is_a_catalogue_option() -> None:
    paths = {path for path, _ in leaves()}
    assert paths == set(BY_SPEC) | set(SPLIT_PARAMS)


def test_edges_cover_every_bound_and_enum_value() -> None:
    cases = edge_cases()
    assert ("detector.threshold", math.nextafter(0.0, 1.0)) in cases  # exclusive: 0 itself is refused
    assert ("detector.threshold", 1.0) in cases
    assert ("anonymization.maskScale", 1.0) in cases
    assert {v for p, v in cases if p == "encoding.preset"} >= {"ultrafast", "veryslow"}
    assert len(cases) > 40


@pytest.mark.parametrize(("path", "value"), edge_cases(), ids=lambda v: str(v))
def test_a_schema_edge_reaches_the_worker_unchanged(path: str, value: Any) -> None:
    spec, plan = plan_of(with_field(path, value))
    if path in SPLIT_PARAMS:
        params = parse("split", plan.split_args)
        parsed = params[SPLIT_PARAMS[path]]
        assert parsed == value, f"{path}={value!r} rendered as {plan.split_args} parsed as {parsed!r}"
        return
    options = cli.processing_options(parse("process", plan.process_args))
    parsed = read(options, path)
    assert parsed == value, f"{path}={value!r} rendered as {plan.process_args} parsed as {parsed!r}"
    assert options == process_options(spec, spec.detector or Detector())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_parses_to_the_options_it_asks_for(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())["spec"]
    spec, plan = plan_of({**raw, "storage": {**(raw.get("storage") or {}), "endpoint": "s3:9000"}})
    options = cli.processing_options(parse("process", plan.process_args))
    asked = process_options(spec, spec.detector or Detector())
    if spec.resources and spec.resources.gpus:  # a GPU job's pods need their GPU, or fail
        runtime = gpu_runtime(asked.execution_provider, spec.resources.allow_cpu_fallback)
        asked = dataclasses.replace(asked, execution_provider=runtime)
    assert options == asked
    split = parse("split", plan.split_args)
    assert (split["chunks"], split["chunk_frames"], split["split_mode"]) == (
        spec.chunking.chunks,
        spec.chunking.frames_per_chunk,
        spec.chunking.mode.value,
    )
    compose = parse("compose", plan.compose_args)
    assert (compose["output"], compose["debug"]) == (plan.output_url, spec.debug)


def test_region_edges_include_the_tightest_regions() -> None:
    keep = [v for p, v in edge_cases() if p == "regions.keep"]
    assert [
        {"left": math.nextafter(1.0, 0.0), "top": 0.0, "width": 1.0 - math.nextafter(1.0, 0.0), "height": 1.0}
    ] in keep
    assert any(v[0].get("end") == math.nextafter(0.0, 1.0) for v in keep)  # exclusive: 0 is refused
    assert any(len(v) == REGIONS_MAX for v in keep)


def test_regions_and_fail_secure_round_trip_through_the_workers_parser() -> None:
    options = ProcessOptions(
        keep_regions=(Region(0.7, 0.6, 0.3, 0.4), Region(0, 0, 0.5, 1, start=10, end=20.5)),
        blur_regions=(Region(0.1, 0.2, 1e-05, 0.3, start=1e-05), Region(0.5, 0.5, 0.5, 0.5, end=2.5)),
        fail_secure=True,
        fail_secure_hold=300,
    )
    args = process_argv("s3://b/job", options)
    assert cli.processing_options(parse("process", args)) == options
    assert "0,0,0.5,1@10-20.5" in args
    assert "0.1,0.2,1e-05,0.3@0.00001-" in args  # no exponent in a time: its '-' is the range's


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.5,0,0.6,1", "left \\+ width must be <= 1"),
        ("0,0,1,1@5-5", "start must be before end"),
        ("0,0,0,1", "width must be a number > 0"),
        ("0,0,1", "LEFT,TOP,WIDTH,HEIGHT"),
        ("0,0,1,1@soon", "time range"),
    ],
)
def test_the_worker_refuses_a_region_the_crd_refuses(value: str, message: str) -> None:
    args = ("--job", "s3://b/job", "--blur-region", value)
    with pytest.raises(UsageError, match=message):
        cli.processing_options(parse("process", args))


def test_defaults_agree_on_both_sides() -> None:
    """A spec that sets nothing gives the worker its own defaults."""
    _, plan = plan_of(BASE)
    assert cli.processing_options(parse("process", plan.process_args)) == ProcessOptions()
