"""Pydantic JSON Schema to a Kubernetes structural OpenAPI v3 schema.

A CRD schema has no `$ref`, no `null` type, no `title`, and OpenAPI 3.0's boolean
`exclusiveMinimum`; pydantic emits JSON Schema 2020-12 with `$defs`. This module inlines
every `$ref`, drops the `null` branch of optional fields (absent means unset), and keeps
descriptions, enums, ranges, patterns, defaults and `x-kubernetes-*` extensions.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_DROPPED = {"title", "$defs"}
_ORDER = ("description", "type", "format", "enum", "default", "minimum", "maximum", "minLength", "maxLength")


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs: dict[str, Any] = raw.get("$defs", {})
    converted: dict[str, Any] = _convert(raw, defs)
    return converted


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Replace a `$ref` by its definition; the referring node's own keys (description) win."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    merged = dict(defs[name])
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return _resolve(merged, defs)


def _drop_null(node: dict[str, Any]) -> dict[str, Any]:
    """`X | None` is `anyOf: [X, {type: null}]`: keep X with the outer keys (description)."""
    alternatives = node.get("anyOf")
    if not alternatives:
        return node
    rest = [a for a in alternatives if a != {"type": "null"}]
    if len(rest) == len(alternatives) or len(rest) != 1:
        return node
    outer = {k: v for k, v in node.items() if k != "anyOf"}
    if outer.get("default", 0) is None:
        del outer["default"]
    return {**rest[0], **outer}


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _drop_null(_resolve(node, defs))
    node = _resolve(node, defs)  # the kept branch of an optional may itself be a $ref
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "additionalProperties" and value is False):
            continue  # CRDs forbid `additionalProperties: false`: the API server prunes unknown fields
        if key in ("properties", "patternProperties"):
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"):
            out[key] = _convert(value, defs)
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return _ordered(out)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Description and type first, nested structure last: the generated YAML reads top-down."""
    first = [k for k in _ORDER if k in node]
    return {k: node[k] for k in [*first, *sorted(k for k in node if k not in _ORDER)]}
