"""Shared tools of the packaging tests: helm, chart rendering, Kubernetes schema validation.

helm is the one the suite uses everywhere: FACEBLUR_HELM if set, else the test environment's
(faceblur_testenv.binaries, which runs scripts/build-k8s.sh and caches the binaries).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml
from kubernetes_validate.utils import all_versions, major_minor

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "faceblur"
MANIFESTS = REPO / "manifests"
RELEASE = "faceblur"
NAMESPACE = "faceblur-system"
# The chart's kubeVersion is >=1.30: every minor from there to the newest schema kubernetes-validate has.
MIN_KUBERNETES = (1, 30)


def _minor(version: str) -> tuple[int, int]:
    major, minor = major_minor(version).split(".")
    return int(major), int(minor)


SUPPORTED_VERSIONS = tuple(
    sorted({major_minor(v) for v in all_versions() if _minor(v) >= MIN_KUBERNETES}, key=_minor)
)
# Kinds whose schema is not part of Kubernetes itself (their CRDs come from other projects).
FOREIGN_KINDS = frozenset({"ServiceMonitor"})

Manifest = dict[str, Any]


class HelmError(Exception):
    """helm exited non-zero; the message is its stderr."""


def find_tool(name: str) -> str:
    """helm or kubectl: FACEBLUR_HELM / FACEBLUR_KUBECTL if set, else the test environment's binaries."""
    if explicit := os.environ.get(f"FACEBLUR_{name.upper()}"):
        return explicit
    from faceblur_testenv.binaries import ensure_binaries

    return str(ensure_binaries() / name)


def find_helm() -> str:
    return find_tool("helm")


def kustomize(folder: Path) -> list[Manifest]:
    """What `kubectl apply -k folder` would apply."""
    done = subprocess.run(
        [find_tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return load_documents(done.stdout)


@dataclass(frozen=True)
class Helm:
    binary: str

    def run(self, *args: str, chart: Path = CHART) -> str:
        done = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, check=False, cwd=chart.parent
        )
        if done.returncode != 0:
            raise HelmError(done.stderr.strip())
        return done.stdout

    def template(
        self,
        *sets: str,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
        values: Mapping[str, Any] | None = None,
        chart: Path = CHART,
        extra: Iterable[str] = (),
    ) -> list[Manifest]:
        """The objects the chart renders with these --set values (and an optional values document)."""
        args = ["template", release, str(chart), "--namespace", namespace, *extra]
        for value in sets:
            args += ["--set", value]
        if values is not None:
            args += ["--values", "-"]
            done = subprocess.run(
                [self.binary, *args], input=json.dumps(values), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise HelmError(done.stderr.strip())
            return load_documents(done.stdout)
        return load_documents(self.run(*args, chart=chart))


def render_notes(helm: Helm, sets: Iterable[str], work: Path) -> str:
    """NOTES.txt as `helm install` prints it with these --set values. helm 3 renders NOTES only when it
    installs or upgrades, and even `helm install --dry-run=client` asks the cluster first; so this renders
    them with `helm template` from a copy of the chart (in `work`) in which NOTES.txt is the body of a
    named template that a one-line manifest includes: the same template text, engine, values and helpers.
    """
    chart = work / CHART.name
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    text = notes.read_text()
    notes.unlink()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "notes-under-test" -}}\n' + text + "{{ end }}\n"
    )
    (chart / "templates" / "notes-under-test.yaml").write_text(
        'notes: {{ include "notes-under-test" . | toJson }}\n'
    )
    (rendered,) = helm.template(*sets, chart=chart, extra=["--show-only", "templates/notes-under-test.yaml"])
    notes_text: str = rendered["notes"]
    return notes_text


def load_documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def defaults_text(objects: Iterable[Manifest]) -> str:
    """The operator's defaults file (FACEBLUR_DEFAULTS) as the chart's one ConfigMap holding it."""
    (found,) = [o for o in find(objects, "ConfigMap") if "defaults.yaml" in o.get("data", {})]
    text: str = found["data"]["defaults.yaml"]
    return text


def defaults_file(objects: Iterable[Manifest]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(defaults_text(objects))
    return loaded


# ------------------------------------------------------------------------------ Kubernetes schemas


@functools.cache
def _schema_file(version: str, name: str) -> Any:
    from importlib import resources

    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}.0-local-strict"
    path = folder / name
    return json.loads(path.read_text())


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    group, _, api = api_version.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    schema = _schema_file(version, f"{kind.lower()}-{prefix}{api}.json")
    definitions = referencing.Resource.from_contents(_schema_file(version, "_definitions.json"))
    registry: referencing.Registry[Any] = definitions @ referencing.Registry()  # keyed by its own $id
    return jsonschema.Draft202012Validator(schema, registry=registry)


def kubernetes_errors(obj: Manifest, version: str) -> list[str]:
    """Schema errors of obj for one Kubernetes minor version (strict: unknown fields are errors)."""
    validator = _validator(version, obj["kind"], obj["apiVersion"])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


# ------------------------------------------------------------------------------ Pod Security


def restricted_violations(pod_spec: Mapping[str, Any]) -> list[str]:
    """Where a pod spec breaks the "restricted" Pod Security Standard (the checks it can fail here)."""
    problems: list[str] = []
    pod_context = pod_spec.get("securityContext", {})
    pod_seccomp = pod_context.get("seccompProfile", {}).get("type")
    for container in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        context = container.get("securityContext", {})
        name = container["name"]
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as uid 0")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities do not drop ALL")
        if context.get("capabilities", {}).get("add"):
            problems.append(f"{name}: adds capabilities")
        if context.get("seccompProfile", {}).get("type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
    return problems


def pod_spec_of(obj: Manifest) -> Mapping[str, Any] | None:
    """The pod template spec of a Deployment or Job, else None."""
    if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        spec: Mapping[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


# ------------------------------------------------------------------------------ FaceBlurJob schema

FACEBLURJOB_CRD: Manifest = yaml.safe_load((MANIFESTS / "crd" / "faceblurjobs.yaml").read_text())


def closed(schema: Any) -> Any:
    """A copy of an OpenAPI schema in which objects with declared properties allow no others."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@functools.cache
def faceblurjob_validator() -> jsonschema.Draft4Validator:
    """CRD schemas are OpenAPI v3.0: `exclusiveMinimum: true` beside `minimum`, as draft 4 reads it."""
    (version,) = [v for v in FACEBLURJOB_CRD["spec"]["versions"] if v["storage"]]
    return jsonschema.Draft4Validator(closed(version["schema"]["openAPIV3Schema"]))
