"""One notation for chunk index lists on both sides: strict for what a user types, tolerant for what
Kubernetes reports, and formatting as the inverse of parsing."""

from __future__ import annotations

import pytest
from faceblur_contract.indexes import format_indexes, parse_indexes


@pytest.mark.parametrize(
    ("text", "indexes"),
    [
        ("", []),
        ("3", [3]),
        ("0,2,5-7", [0, 2, 5, 6, 7]),
        ("7-8, 0,2", [0, 2, 7, 8]),
        ("1-3,2-4", [1, 2, 3, 4]),
    ],
)
def test_parse_and_format_round_trip(text: str, indexes: list[int]) -> None:
    assert parse_indexes(text) == indexes
    assert parse_indexes(format_indexes(indexes)) == indexes


@pytest.mark.parametrize("text", ["x", "3,", "-1", "5-3", "1-2-3", "2-x"])
def test_strict_parsing_names_the_bad_part(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the CLI turns it into its own usage message
        parse_indexes(text)


def test_tolerant_parsing_skips_what_it_cannot_read() -> None:
    assert parse_indexes("x,2,5-3,4-5", tolerant=True) == [2, 4, 5]


def test_format_collapses_runs_with_the_separator_asked_for() -> None:
    assert format_indexes([5, 0, 1, 2, 2]) == "0-2,5"
    assert format_indexes([1, 3], ", ") == "1, 3"
    assert format_indexes([]) == ""
