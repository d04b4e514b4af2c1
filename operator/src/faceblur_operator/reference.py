"""The FaceBlurJob field reference in Markdown, rendered from the same schema as the CRD.

One row per field, so `docs/faceblurjob-reference.md` can never drift from what the API
server validates: `python -m faceblur_operator.crd` writes both, `--check` checks both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_CONSTRAINTS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("minItems", "items >= {}"),
    ("maxItems", "items <= {}"),
    ("pattern", "matches `{}`"),
)


def _type(schema: dict[str, Any]) -> str:
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"[]{_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map[string]{_type(schema['additionalProperties'])}"
    return kind


def _rules(schema: dict[str, Any]) -> str:
    shown = dict(schema)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if shown.get(exclusive) is True:  # OpenAPI 3.0: a flag on the bound, not a bound of its own
            shown[exclusive] = shown.pop(bound)
    rules = [text.format(shown[name]) for name, text in _CONSTRAINTS if name in shown]
    if "enum" in schema:
        rules.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    rules += [str(rule["message"]) for rule in schema.get("x-kubernetes-validations", [])]
    return "; ".join(rules)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(schema: dict[str, Any], path: str, required: bool) -> Iterator[str]:
    default = f"`{json.dumps(schema['default'])}`" if "default" in schema else ""
    yield (
        f"| `{path}` | {_type(schema)} | {'yes' if required else ''} | {_cell(default)} "
        f"| {_cell(_rules(schema))} | {_cell(str(schema.get('description', '')))} |"
    )
    children = schema.get("properties") or schema.get("items", {}).get("properties") or {}
    needed = set(schema.get("required") or schema.get("items", {}).get("required") or [])
    suffix = "[]" if schema.get("type") == "array" else ""
    for name, child in children.items():
        yield from _rows(child, f"{path}{suffix}.{name}", name in needed)


def render_reference(root: dict[str, Any], header: str) -> str:
    lines = [
        header.replace("# ", "<!-- ", 1).rstrip("\n").replace("\n# ", " ") + " -->",
        "",
        "# FaceBlurJob reference (`faceblur.dev/v1alpha1`)",
        "",
        str(root.get("description", "")),
        "",
    ]
    for section in ("spec", "status"):
        schema = root["properties"][section]
        lines += [
            f"## {section}",
            "",
            "| field | type | required | default | validation | description |",
            "| --- | --- | --- | --- | --- | --- |",
            *_rows(schema, section, section in root.get("required", [])),
            "",
        ]
    return "\n".join(lines)
