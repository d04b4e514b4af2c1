"""Fixtures of the packaging tests: the suite's helm, and the chart rendered with its default values."""

from __future__ import annotations

import pytest
from packaging_support import Helm, Manifest, find_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(find_helm())


@pytest.fixture(scope="session")
def default_objects(helm: Helm) -> list[Manifest]:
    return helm.template()
