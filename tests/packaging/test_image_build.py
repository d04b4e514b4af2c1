"""The worker image as scripts/build-images.sh really builds it: run with its own contents (buildah run on
runc), exported as the archive the node imports, and rebuilt only as far as a change reaches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from faceblur_testenv.images import ImageArchive, ensure_images
from faceblur_testenv.measure import frames_with_a_sharp_face
from faceblur_testenv.videos import VideoLibrary
from packaging_support import REPO

pytestmark = pytest.mark.images

RUNTIME = {"BUILDAH_RUNTIME": os.environ.get("BUILDAH_RUNTIME", "/usr/bin/runc")}
# What the Dockerfiles copy into their build context (the rest of the checkout is .dockerignore'd).
CONTEXT_PARTS = (
    "Dockerfile.worker",
    "Dockerfile.gpu",
    ".dockerignore",
    "docker",
    "contract",
    "worker",
    "operator",
)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the build context, so edits to the checkout while the tests run change nothing."""
    folder = tmp_path_factory.mktemp("context")
    for part in CONTEXT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, folder / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, folder / part)
    return folder


@pytest.fixture(scope="module")
def context_env(context: Path) -> dict[str, str]:
    return {**os.environ, "FACEBLUR_IMAGE_CONTEXT": str(context)}


@pytest.fixture(scope="module")
def worker(context_env: dict[str, str]) -> ImageArchive:
    (image,) = ensure_images(["worker"], env=context_env)
    return image


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, check=False, env={**os.environ, **RUNTIME}
    )
    if check:
        assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def container(worker: ImageArchive) -> Iterator[str]:
    """A working container of the image: commands run as the image says (its user, env and workdir)."""
    name = f"faceblur-test-{uuid.uuid4().hex[:8]}"
    buildah("from", "--pull=never", "--name", name, worker.reference)
    yield name
    buildah("rm", name, check=False)


def run_in(container: str, *command: str, volume: str | None = None) -> subprocess.CompletedProcess[str]:
    mount = ["--volume", volume] if volume else []
    return buildah("run", "--network", "none", *mount, container, "--", *command, check=False)


def test_worker_image_runs_as_the_chart_user_with_both_entry_points(container: str) -> None:
    ids = run_in(container, "id", "-u")
    assert ids.stdout.split() == ["10001"], ids.stderr
    done = run_in(container, "faceblur", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout, done.stdout
    # The operator has no --help: it starts, reads its settings, then looks for a cluster (in-cluster
    # configuration, then a kubeconfig) and, with none here, stops.
    done = run_in(container, "faceblur-operator")
    assert done.returncode != 0
    assert "faceblur-operator watching all namespaces" in done.stderr, done.stderr
    assert "Service host/port is not set" in done.stderr, done.stderr
    for tool in ("ffmpeg", "ffprobe"):
        done = run_in(container, tool, "-hide_banner", "-version")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{tool} version 5.1"), done.stdout


def test_worker_image_has_the_model_baked_in_where_the_worker_reads_it(container: str) -> None:
    lookup = (
        "from faceblur.detectors.models import dynamic_centerface_path as p, model_cache_dir as c;"
        " print(c(), p())"
    )
    done = run_in(container, "python", "-c", lookup)
    assert done.returncode == 0, done.stderr
    cache, model = done.stdout.split()
    assert cache == "/opt/faceblur/models"
    assert Path(model).parent == Path(cache)
    assert Path(model).name.startswith("centerface-dynamic-")
    # The pods' user cannot write there, so the baked copy is what they use.
    assert run_in(container, "touch", f"{cache}/x").returncode != 0


def test_worker_image_blurs_a_video_with_its_own_ffmpeg_and_model(container: str, tmp_path: Path) -> None:
    video = VideoLibrary(tmp_path / "videos").get(frames=25)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(video.path, data / "in.mp4")
    data.chmod(0o777)  # the image's user (10001) writes the output and its work folder here
    done = run_in(
        container, "faceblur", "blur", "/data/in.mp4", "-o", "/data/out.mp4", volume=f"{data}:/data"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert frames_with_a_sharp_face(video, data / "out.mp4", max_ratio=0.25) == []


def test_archive_is_what_containerd_imports_under_the_reference(worker: ImageArchive) -> None:
    assert worker.reference == "docker.io/faceblur/worker:test"
    with tarfile.open(worker.archive) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        (entry,) = index["manifests"]
        assert entry["annotations"]["org.opencontainers.image.ref.name"] == worker.reference
        manifest = json.load(archive.extractfile(f"blobs/sha256/{entry['digest'].split(':')[1]}"))  # type: ignore[arg-type]
        # The image id is the config's digest: what buildah built is what the node will run.
        assert manifest["config"]["digest"] == worker.image_id
        names = set(archive.getnames())
        for layer in manifest["layers"]:
            assert f"blobs/sha256/{layer['digest'].split(':')[1]}" in names


def test_second_build_without_a_change_is_a_no_op(
    worker: ImageArchive, context_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    stamp = worker.archive.stat().st_mtime_ns
    capfd.readouterr()
    started = time.monotonic()
    (again,) = ensure_images(["worker"], env=context_env)
    took = time.monotonic() - started
    assert again == worker
    assert worker.archive.stat().st_mtime_ns == stamp, "an unchanged image was exported again"
    assert "is up to date" in capfd.readouterr().err
    assert took < 90, f"a build with every layer cached took {took:.0f} s"


def _layers(reference: str) -> list[str]:
    inspected = json.loads(buildah("inspect", "--type", "image", reference).stdout)
    layers: list[str] = inspected["OCIv1"]["rootfs"]["diff_ids"]
    return layers


def test_worker_code_change_rebuilds_only_the_layers_after_it(
    worker: ImageArchive, context: Path, tmp_path: Path
) -> None:
    changed_context = tmp_path / "context"
    shutil.copytree(context, changed_context)
    # A real change of worker code, new on every run so the layer cache cannot already hold it.
    module = changed_context / "worker" / "src" / "faceblur" / "__init__.py"
    module.write_text(module.read_text() + f"\n# layer test {uuid.uuid4().hex}\n")
    tag = f"layers-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "FACEBLUR_CACHE": str(tmp_path / "cache"),
        "FACEBLUR_IMAGE_CONTEXT": str(changed_context),
        "FACEBLUR_IMAGE_TAG": tag,
        "FACEBLUR_BUILD_JOBS": "1",  # one stage at a time, so each step's "Using cache" follows it
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-images.sh"), "worker"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    changed = f"docker.io/faceblur/worker:{tag}"
    try:
        assert done.returncode == 0, done.stderr
        cached, rebuilt = _steps(done.stderr)
        assert "RUN pip install --no-deps -r /tmp/requirements.lock" in cached
        assert any(step.startswith("RUN apt-get update") for step in cached), "ffmpeg was installed again"
        assert "COPY contract/ /src/contract/" in cached
        assert "COPY worker/ /src/worker/" in rebuilt
        assert any(step.startswith("RUN pip install --no-deps /src/") for step in rebuilt)
        before, after = _layers(worker.reference), _layers(changed)
        assert len(before) == len(after)
        # base, ffmpeg, user: shared; the venv (with the worker) and what follows it: new.
        assert before[:3] == after[:3]
        assert before[3] != after[3]
    finally:
        buildah("rmi", changed, check=False)


def _steps(log: str) -> tuple[list[str], list[str]]:
    """The build's steps split into those taken from the layer cache and those that ran."""
    cached: list[str] = []
    rebuilt: list[str] = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "] STEP " not in line or ": " not in line:
            continue
        step = " ".join(line.split(": ", 1)[1].split())
        following = lines[i + 1] if i + 1 < len(lines) else ""
        (cached if following.startswith("--> Using cache") else rebuilt).append(step)
    return cached, rebuilt


@pytest.fixture(scope="module")
def gpu_container(context_env: dict[str, str]) -> Iterator[str]:
    """The GPU image on the CUDA stand-in: everything of Dockerfile.gpu but CUDA itself."""
    (image,) = ensure_images(["worker-gpu"], env=context_env)
    assert image.reference == "docker.io/faceblur/worker-gpu:test"
    name = f"faceblur-test-gpu-{uuid.uuid4().hex[:8]}"
    buildah("from", "--pull=never", "--name", name, image.reference)
    yield name
    buildah("rm", name, check=False)


def test_gpu_image_offers_cuda_and_falls_back_to_the_cpu_without_it(gpu_container: str) -> None:
    assert run_in(gpu_container, "id", "-u").stdout.split() == ["10001"]
    probe = (
        "from faceblur.detectors.models import dynamic_centerface_path\n"
        "from faceblur_contract.enums import ExecutionProvider\n"
        "from faceblur.detectors.providers import available_providers, create_session\n"
        "print('offered=' + ','.join(available_providers()))\n"
        "session = create_session(dynamic_centerface_path(), ExecutionProvider.AUTO, 1)\n"
        "print('used=' + ','.join(session.get_providers()))\n"
    )
    done = run_in(gpu_container, "python", "-c", probe)
    assert done.returncode == 0, done.stderr
    # onnxruntime prints its own fallback notice on stdout too; our lines are the prefixed ones.
    found = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if line.startswith(("offered=", "used="))
    )
    offered, used = found["offered"].split(","), found["used"].split(",")
    assert "CUDAExecutionProvider" in offered, "the image's onnxruntime is not the GPU build"
    assert used == ["CPUExecutionProvider"], "no CUDA libraries here: the session must fall back to the CPU"
    for tool in ("faceblur", "faceblur-operator", "ffmpeg", "ffprobe"):
        assert run_in(gpu_container, "sh", "-c", f"command -v {tool}").returncode == 0, tool


@pytest.fixture(scope="module")
def minio_container() -> Iterator[str]:
    (image,) = ensure_images(["minio"])
    assert image.reference == "docker.io/faceblur/minio:test"
    name = f"faceblur-test-minio-{uuid.uuid4().hex[:8]}"
    buildah("from", "--pull=never", "--name", name, image.reference)
    yield name
    buildah("rm", name, check=False)


def test_minio_image_serves_s3_and_its_mc_makes_the_chart_bucket(minio_container: str) -> None:
    """What the chart's MinIO Deployment and bucket Job do, in one container: serve, then `mc mb`."""
    script = (
        "minio server /tmp/data --address 127.0.0.1:9000 --console-address 127.0.0.1:9001"
        " >/tmp/minio.log 2>&1 &\n"
        'until mc alias set local http://127.0.0.1:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"'
        " >/dev/null 2>&1; do sleep 1; done\n"
        "mc mb --ignore-existing local/faceblur\n"
        "mc ls local\n"
    )
    done = buildah(
        "run",
        "--network",
        "none",
        "--env",
        "MINIO_ROOT_USER=faceblur",
        "--env",
        "MINIO_ROOT_PASSWORD=faceblur-secret",
        "--env",
        "MC_CONFIG_DIR=/tmp/.mc",
        minio_container,
        "--",
        "timeout",
        "120",
        "/bin/sh",
        "-ec",
        script,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "faceblur/" in done.stdout.splitlines()[-1]
    assert run_in(minio_container, "id", "-u").stdout.split() == ["1000"], "the chart runs MinIO as 1000"
