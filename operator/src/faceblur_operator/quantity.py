"""Kubernetes quantities (500m, 2, 1.5Gi, 1e3) as exact numbers, to compare a request with its limit."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIXES = {
    **{s: Decimal(1024) ** (n + 1) for n, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)},
    **{s: Decimal(1000) ** (n + 1) for n, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}
_FORM = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")


def quantity_value(quantity: int | str) -> Decimal:
    """The quantity's value in base units (bytes, cores); ValueError if it is not one."""
    if isinstance(quantity, int):
        return Decimal(quantity)
    found = _FORM.match(quantity.strip())
    if found is None:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    number, suffix = found.group(1), found.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * _SUFFIXES[suffix]
