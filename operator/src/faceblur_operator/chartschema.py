"""The chart's schema and docs of the detector defaults (`defaults.detector`, `defaults.gpuDetector`
in values.yaml), derived from the option catalogue: the operator reads those values as a spec's
detector section, so their names, enums, bounds and meanings are the catalogue's. The chart writes
unset as "" for text and choices and null for numbers, which the operator reads as unset.

The rest of values.schema.json and values.yaml is written by hand; `crd.py` regenerates these
sections in place (and `defaults.detector`'s `# --` comments), and its check fails when they are
stale. `defaults.gpuDetector`'s comments stay by hand: they say how GPU jobs differ.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from faceblur_contract import defaults as d
from faceblur_contract.options import BY_SPEC, Codec, Option

VALUES_SCHEMA = Path("charts/faceblur/values.schema.json")
VALUES = Path("charts/faceblur/values.yaml")
DETECTOR_VALUES = ("detector", "gpuDetector")


def detector_schema() -> dict[str, Any]:
    properties = {
        path.removeprefix("detector."): _value_schema(item)
        for path, item in BY_SPEC.items()
        if path.startswith("detector.")
    }
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _value_schema(item: Option) -> dict[str, Any]:
    described = {"description": item.description}
    if item.codec is Codec.CHOICE:
        return {"enum": ["", *(choice.value for choice in item.base)], **described}
    if item.codec is Codec.SCALE:
        return {"type": "string", "pattern": f"^$|{d.SCALE_PATTERN}", **described}
    if item.codec is Codec.NUMBER:
        bounds = {
            key: value
            for key, value in (
                ("minimum", item.bounds.ge),
                ("exclusiveMinimum", item.bounds.gt),
                ("maximum", item.bounds.le),
                ("exclusiveMaximum", item.bounds.lt),
            )
            if value is not None
        }
        return {"type": ["integer" if item.base is int else "number", "null"], **bounds, **described}
    return {"type": "string", **described}


def values_schema(current: str) -> str:
    """values.schema.json with its detector sections derived anew (its formatting kept)."""
    schema = json.loads(current)
    sections = schema["properties"]["defaults"]["properties"]
    for name in DETECTOR_VALUES:
        sections[name] = detector_schema()
    return json.dumps(schema, indent=2) + "\n"


def values_yaml(current: str) -> str:
    """values.yaml with the `# --` comment above each key of `defaults.detector` written anew from the
    catalogue (keys, values and every other line kept)."""
    descriptions = {key: value["description"] for key, value in detector_schema()["properties"].items()}
    out: list[str] = []
    top = section = ""
    for line in current.splitlines():
        if re.match(r"^\S", line):
            top = line
        elif re.match(r"^  \S", line):
            section = top + line.strip()
        key = re.match(r"^    (\w+):", line)
        if section == "defaults:detector:" and key and key.group(1) in descriptions:
            while out and out[-1].startswith("    #"):
                out.pop()
            text = "-- " + descriptions[key.group(1)]
            out += textwrap.wrap(text, width=110, initial_indent="    # ", subsequent_indent="    # ")
        out.append(line)
    return "\n".join(out) + "\n"
