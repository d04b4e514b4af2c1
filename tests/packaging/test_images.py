"""The container images, checked without a Docker engine: hadolint, and the facts the code relies on
(model path, entry points, user, environment, pinned packages, build context)."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging_support import CHART, REPO

DOCKERFILES = ("Dockerfile.worker", "Dockerfile.gpu")
LOCK = REPO / "docker" / "requirements.lock"
HADOLINT = Path(sys.executable).parent / "hadolint"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(dockerfile: str) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in (REPO / dockerfile).read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            joined.append(pending)
            pending = ""
    return [Instruction(*[*text.split(None, 1), ""][:2]) for text in joined]


def final_stage(dockerfile: str) -> list[Instruction]:
    found = instructions(dockerfile)
    last_from = max(i for i, ins in enumerate(found) if ins.keyword == "FROM")
    return found[last_from:]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for pair in shlex.split(ins.arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    done = subprocess.run(
        [str(HADOLINT), "--no-color", dockerfile], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_report_problems(tmp_path: Path) -> None:
    """The lint is live: an unpinned apt install and a root user are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm\nRUN apt-get update && apt-get install -y ffmpeg\n")
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "DL3008" in done.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_apt_packages_follow_the_release_of_the_base_image(dockerfile: str) -> None:
    """No exact Debian or Ubuntu versions (`ffmpeg=7:5.1.9-0+deb12u1`): their archives keep only the
    latest patch of each package in a release, so a pin breaks the build at the next security update
    without making it reproducible. The base image tag fixes the release; a rebuild takes its updates."""
    installs = [
        re.search(r"apt-get install ([^&;|]+)", ins.arguments)
        for ins in instructions(dockerfile)
        if ins.keyword == "RUN" and "apt-get install" in ins.arguments
    ]
    assert installs
    for match in installs:
        assert match
        packages = [word for word in match.group(1).split() if not word.startswith("-")]
        assert packages
        assert [package for package in packages if "=" in package] == []


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_runs_as_the_non_root_user_the_chart_expects(dockerfile: str) -> None:
    users = [ins.arguments for ins in final_stage(dockerfile) if ins.keyword == "USER"]
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert int(uid) != 0
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pod = values["operator"]["podSecurityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_entry_points_the_pods_run_are_console_scripts(dockerfile: str) -> None:
    scripts: dict[str, str] = {}
    for project in ("worker", "operator"):
        data = tomllib.loads((REPO / project / "pyproject.toml").read_text())
        scripts |= data["project"]["scripts"]
    assert {"faceblur", "faceblur-operator"} <= set(scripts)
    for target in scripts.values():
        module, _, function = target.partition(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{target}: module {module} not found"
        assert f"def {function}(" in Path(str(spec.origin)).read_text(), f"{target}: no function {function}"
    copies = [ins.arguments for ins in instructions(dockerfile) if ins.keyword == "COPY"]
    assert any(c.startswith("contract/ ") for c in copies)
    assert any(c.startswith("worker/ ") for c in copies)
    assert any(c.startswith("operator/ ") for c in copies)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_modules_the_build_imports_exist(dockerfile: str) -> None:
    """The build's import check names real modules (a rename would otherwise surface in CI of the image)."""
    text = " ".join(ins.arguments for ins in instructions(dockerfile))
    match = re.search(r'python -c "import ([^"]+)"', text)
    assert match
    for module in (m.strip() for m in match.group(1).split(",")):
        assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_model_cache_is_baked_at_the_path_the_worker_reads(dockerfile: str) -> None:
    from faceblur.detectors.models import MODEL_CACHE_ENV

    stage = final_stage(dockerfile)
    env = env_of(stage)
    assert env[MODEL_CACHE_ENV] == "/opt/faceblur/models"
    runs = " ".join(ins.arguments for ins in stage if ins.keyword == "RUN")
    assert "prepare_models.py" in runs
    assert "chmod -R a+rX /opt/faceblur/models" in runs, "the build runs as root; the pods do not"
    # The preparation must come after the ENV that names the cache, so it writes where pods read.
    keywords = [(ins.keyword, ins.arguments) for ins in stage]
    env_at = next(i for i, (k, a) in enumerate(keywords) if k == "ENV" and MODEL_CACHE_ENV in a)
    run_at = next(i for i, (k, a) in enumerate(keywords) if k == "RUN" and "prepare_models.py" in a)
    assert env_at < run_at


def test_prepared_model_is_found_on_a_read_only_filesystem(tmp_path: Path) -> None:
    """What the image build does, then what a pod does: the pod finds the baked copy and writes nothing."""
    cache = tmp_path / "models"
    env = {**os.environ, "FACEBLUR_MODEL_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, str(REPO / "docker" / "prepare_models.py")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    baked = sorted(cache.iterdir())
    assert len(baked) == 1
    assert baked[0].name.startswith("centerface-dynamic-")
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR)  # what a read-only root filesystem looks like to the worker
    try:
        lookup = (
            "from faceblur.detectors.models import dynamic_centerface_path; print(dynamic_centerface_path())"
        )
        found = subprocess.run(
            [sys.executable, "-c", lookup], env=env, capture_output=True, text=True, check=False
        )
    finally:
        cache.chmod(stat.S_IRWXU)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == baked[0]


def test_gpu_image_has_cuda_cudnn_and_the_driver_capabilities() -> None:
    found = instructions("Dockerfile.gpu")
    args = {
        ins.arguments.split("=", 1)[0]: ins.arguments.split("=", 1)[-1]
        for ins in found
        if ins.keyword == "ARG"
    }
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", args["CUDA_IMAGE"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["ONNXRUNTIME_GPU_VERSION"])
    assert "SCRFD_MODEL_URL" in args
    env = env_of(final_stage("Dockerfile.gpu"))
    assert set(env["NVIDIA_DRIVER_CAPABILITIES"].split(",")) == {"compute", "utility", "video"}
    runs = " ".join(i.arguments for i in found if i.keyword == "RUN")
    (pattern,) = re.findall(r"grep -v -E '([^']+)' /tmp/requirements.lock", runs)
    kept = [line for line in _lock() if not re.search(pattern, f"{line}==")]
    assert "onnxruntime" not in kept, "the CPU onnxruntime must not shadow onnxruntime-gpu"
    assert not [name for name in kept if name.startswith("openvino")], "OpenVINO is a CPU runtime"
    assert {"av", "numpy", "insightface"} <= set(kept)
    assert '"onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}"' in runs


def test_worker_image_uses_the_python_the_worker_needs() -> None:
    (python_arg,) = [
        i.arguments for i in instructions("Dockerfile.worker") if i.arguments.startswith("PYTHON_IMAGE=")
    ]
    match = re.fullmatch(r"PYTHON_IMAGE=python:(\d+)\.(\d+)\.\d+-slim-bookworm", python_arg)
    assert match
    requires = tomllib.loads((REPO / "worker" / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Requirement(f"python{requires}").specifier.contains(f"{match.group(1)}.{match.group(2)}")


def _lock() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{line!r} is not pinned with =="
        assert canonicalize_name(name) not in pinned, f"{name} twice"
        pinned[canonicalize_name(name)] = version
    return pinned


def test_lock_pins_every_direct_dependency_within_its_range() -> None:
    pinned = _lock()
    for project in ("contract", "worker", "operator"):
        for text in tomllib.loads((REPO / project / "pyproject.toml").read_text())["project"]["dependencies"]:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name in ("faceblur-anonymizer-contract", "faceblur-anonymizer", "faceblur-operator"):
                continue
            assert name in pinned, f"{project} needs {requirement}, missing from {LOCK.name}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]}"
    assert "opencv-python" not in pinned
    assert "opencv-python-headless" in pinned


def test_lock_holds_the_whole_dependency_closure() -> None:
    """Names only: the venv may be newer than the lock, but a new dependency must be added to it."""
    sys.path.insert(0, str(REPO / "hack"))
    try:
        lock_tool = importlib.import_module("lock_image_requirements")
    finally:
        sys.path.remove(str(REPO / "hack"))
    needed = set(lock_tool.closure(lock_tool.direct_requirements(lock_tool.PYPROJECTS)))
    assert needed - set(_lock()) == set(), "run hack/lock_image_requirements.py"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes (enough for this file's patterns)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_build_context_holds_what_the_images_copy_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for dockerfile in DOCKERFILES:
        for ins in instructions(dockerfile):
            if ins.keyword == "COPY" and not ins.arguments.startswith("--from"):
                source = ins.arguments.split()[0].rstrip("/")
                assert (REPO / source).exists(), f"{dockerfile} copies missing {source}"
                assert not _ignored(source, patterns), (
                    f"{dockerfile} copies {source}, excluded by .dockerignore"
                )
    for kept_out in (
        "tests/packaging/test_images.py",
        ".venv/bin/python",
        ".git/HEAD",
        "worker/src/x/__pycache__/a.pyc",
    ):
        assert _ignored(kept_out, patterns), kept_out


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_build_checks_every_command_the_pods_run_one_by_one(dockerfile: str) -> None:
    """`command -v a b c` under dash succeeds when `a` alone exists, so each name is checked on its own."""
    runs = " ".join(ins.arguments for ins in final_stage(dockerfile) if ins.keyword == "RUN")
    assert not re.search(r"command -v [^\s|;&]+ [^\s|;&>]", runs), (
        "command -v with several names checks only the first"
    )
    match = re.search(r'for c in ([^;]+); do command -v "\$c" \|\| exit 1; done', runs)
    assert match, "no per-name check of the commands"
    scripts: set[str] = set()
    for project in ("worker", "operator"):
        scripts |= set(tomllib.loads((REPO / project / "pyproject.toml").read_text())["project"]["scripts"])
    assert scripts | {"ffmpeg", "ffprobe"} <= set(match.group(1).split())
