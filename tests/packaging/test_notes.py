"""The chart's NOTES.txt as `helm install` prints it: every shell snippet in it pastes into bash as it
is, the FaceBlurJob it applies is valid, and its upload command creates the bucket and uploads the video;
the README's upload command is the same for the README's install and the examples' input.

The NOTES are rendered by packaging_support.render_notes (`helm template` on a copy of the chart: helm
prints NOTES only when it installs, and even `helm install --dry-run=client` needs a cluster).

A snippet is what a reader copies from the terminal: from a line indented as a command (five spaces,
after a blank line) to the next blank line, here-document and script lines at the margin included, and
the leading spaces kept, since pasting keeps them too.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from faceblur_testenv.s3 import S3Server
from packaging_support import (
    FACEBLURJOB_CRD,
    MANIFESTS,
    NAMESPACE,
    REPO,
    Helm,
    faceblurjob_validator,
    one,
    render_notes,
    restricted_violations,
)

COMMAND_INDENT = " " * 5
EXTERNAL_STORE = (
    "defaults.storage.endpoint=s3.example.com:443",
    "defaults.storage.secure=true",
    "defaults.storage.region=eu-west-1",
    "defaults.storage.credentialsSecret.name=faceblur-s3",
    "defaults.storage.credentialsSecret.accessKeyKey=id",
    "imagePullSecrets[0].name=registry-keys",
)
VALUES = {
    "defaults": (),
    "minio": ("minio.enabled=true",),
    "external-store": EXTERNAL_STORE,
}
WITH_STORE = ("minio", "external-store")
# The README's `helm install` with an existing store.
README_VALUES = (
    "defaults.storage.endpoint=https://s3.example.com",
    "defaults.storage.credentialsSecret.name=faceblur-s3",
)
# The old NOTES' job: its terminator indented like the command, so bash keeps reading.
INDENTED_TERMINATOR = (
    f"{COMMAND_INDENT}cat <<YAML | kubectl apply -f -\n{COMMAND_INDENT}kind: X\n{COMMAND_INDENT}YAML\n"
)


@pytest.fixture(scope="module", params=list(VALUES))
def notes(
    request: pytest.FixtureRequest, helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    name: str = request.param
    return name, render_notes(helm, VALUES[name], tmp_path_factory.mktemp(f"notes-{name}"))


def snippets(text: str) -> list[str]:
    """The snippets of rendered NOTES, as the module's docstring defines them."""
    found: list[str] = []
    current: list[str] = []
    previous = ""
    for line in [*text.splitlines(), ""]:
        if current and line.strip():
            current.append(line)
        elif current:  # a blank line ends the snippet
            found.append("\n".join(current) + "\n")
            current = []
        elif not previous.strip() and line.startswith(COMMAND_INDENT) and line.strip():
            current = [line]
        previous = line
    return found


def syntax_problems(snippet: str) -> str:
    """What `bash -n` says about a snippet: its errors and warnings (an unterminated here-document is
    only a warning, with exit status 0), empty when bash reads it as written."""
    done = subprocess.run(["bash", "-n"], input=snippet, capture_output=True, text=True, check=False)
    return f"exit {done.returncode}: {done.stderr}" if done.returncode or done.stderr else ""


def here_document(snippet: str) -> str:
    match = re.search(r"<<'?(\w+)'?\n(.*?)^\1$", snippet, re.MULTILINE | re.DOTALL)
    assert match, snippet
    return match.group(2)


def words(snippet: str) -> list[str]:
    """The snippet's words as bash splits them (line continuations joined, quotes removed)."""
    return shlex.split(snippet.replace("\\\n", " "))


def upload_command(text: str) -> list[str]:
    (upload,) = [s for s in snippets(text) if " run faceblur-upload " in s]
    return words(upload)


def option(command: list[str], name: str) -> str:
    (value,) = [w.split("=", 1)[1] for w in command if w.startswith(f"--{name}=")]
    return value


def test_snippet_check_catches_an_indented_terminator() -> None:
    """The check is live: the old NOTES' indented here-document terminator leaves bash waiting."""
    assert snippets(f"3. Apply:\n\n{INDENTED_TERMINATOR}\n4. Follow\n") == [INDENTED_TERMINATOR]
    assert "here-document" in syntax_problems(INDENTED_TERMINATOR)


def test_every_snippet_pastes_into_bash(notes: tuple[str, str]) -> None:
    name, text = notes
    found = snippets(text)
    problems = {snippet: syntax_problems(snippet) for snippet in found}
    assert {snippet: said for snippet, said in problems.items() if said} == {}
    # operator, upload, job, follow, and the port-forward to the chart's MinIO
    assert len(found) == {"defaults": 3, "minio": 5, "external-store": 4}[name], text


def test_the_job_it_applies_is_a_valid_faceblurjob(notes: tuple[str, str]) -> None:
    _, text = notes
    (apply,) = [s for s in snippets(text) if "apply -f -" in s]
    assert words(apply)[:4] == ["kubectl", "-n", NAMESPACE, "apply"]
    job = yaml.safe_load(here_document(apply))
    assert job["apiVersion"] == f"{FACEBLURJOB_CRD['spec']['group']}/v1alpha1"
    assert job["kind"] == FACEBLURJOB_CRD["spec"]["names"]["kind"]
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in faceblurjob_validator().iter_errors(job)
    ]
    assert errors == []


def test_without_a_default_store_the_notes_say_so_and_the_job_names_one(notes: tuple[str, str]) -> None:
    name, text = notes
    (apply,) = [s for s in snippets(text) if "apply -f -" in s]
    job = yaml.safe_load(here_document(apply))
    if name in WITH_STORE:
        assert "storage" not in job["spec"]
        assert "faceblur-upload" in text
    else:
        assert "No default object store is set" in text
        assert job["spec"]["storage"]["credentialsSecret"]["name"]
        assert "faceblur-upload" not in text


@pytest.mark.parametrize("name", WITH_STORE)
def test_upload_pod_runs_the_worker_image_with_the_jobs_store_and_keys(
    name: str, helm: Helm, tmp_path: Path
) -> None:
    """The pod is what the operator's jobs get by default: the worker image, the endpoint as the workers
    read it, the default Secret's keys; and it passes the restricted Pod Security Standard."""
    text = render_notes(helm, VALUES[name], tmp_path)
    command = upload_command(text)
    assert command[:6] == ["kubectl", "-n", NAMESPACE, "run", "faceblur-upload", "-i"]
    objects = helm.template(*VALUES[name])
    operator = one(objects, "Deployment", "faceblur-operator")["spec"]["template"]["spec"]
    operator_env = {e["name"]: e.get("value") for e in operator["containers"][0]["env"]}
    assert option(command, "image") == operator_env["FACEBLUR_WORKER_IMAGE"]
    (defaults_file,) = one(objects, "ConfigMap", "faceblur-defaults")["data"].values()
    defaults = yaml.safe_load(defaults_file)
    assert option(command, "override-type") == "strategic"
    pod: dict[str, Any] = json.loads(option(command, "overrides"))["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "faceblur-upload"  # kubectl run's container, merged by name
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    secret = defaults["storage"]["credentialsSecret"]
    assert env["S3_ACCESS_KEY"] == {"secretKeyRef": {"name": secret["name"], "key": secret["accessKeyKey"]}}
    assert env["S3_SECRET_KEY"] == {"secretKeyRef": {"name": secret["name"], "key": secret["secretKeyKey"]}}
    expected = {
        "minio": ("http://faceblur-minio.faceblur-system.svc:9000", ""),
        "external-store": ("https://s3.example.com:443", "eu-west-1"),
    }[name]
    assert (env["S3_ENDPOINT"], env["S3_REGION"]) == expected
    assert pod.get("imagePullSecrets") == operator.get("imagePullSecrets")
    assert restricted_violations(pod) == []
    assert command[-2:] == ["<", "my-video.mp4"]


def test_upload_script_creates_the_bucket_and_uploads_stdin(
    helm: Helm, s3_server: S3Server, tmp_path: Path
) -> None:
    """The script of the upload command, run here against a real S3 server: a bucket that does not exist
    yet is created, the video is read from stdin in several parts, and a second upload finds the bucket."""
    command = upload_command(render_notes(helm, VALUES["minio"], tmp_path))
    python = command[command.index("--") + 1 :]
    assert python[:2] == ["python", "-c"]
    script, bucket, key = python[2:5]
    assert (bucket, key) == ("faceblur", "input.mp4")
    video = tmp_path / "my-video.mp4"
    video.write_bytes(bytes(range(256)) * (80 * 1024 + 3))  # 20 MiB and a bit: two parts of 16 MiB
    env = {
        "PATH": "/usr/bin:/bin",
        "S3_ENDPOINT": s3_server.url,
        "S3_REGION": "",
        "S3_ACCESS_KEY": s3_server.access_key,
        "S3_SECRET_KEY": s3_server.secret_key,
    }
    bucket = "notes-upload"
    for key in ("input.mp4", "samples/people.mp4"):
        with video.open("rb") as stdin:
            done = subprocess.run(
                [sys.executable, "-c", script, bucket, key],
                stdin=stdin,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"uploaded s3://{bucket}/{key}\n"
        stored = s3_server.client().get_object(bucket, key)
        try:
            assert stored.read() == video.read_bytes()
            assert stored.headers["Content-Type"] == "video/mp4"
        finally:
            stored.close()
            stored.release_conn()


def readme_upload() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```$", (REPO / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if " run faceblur-upload " in b]
    return str(block)


def test_readme_upload_is_the_notes_one_for_the_readme_install(helm: Helm, tmp_path: Path) -> None:
    """The README's upload pastes into bash, uploads the examples' input, and is what the NOTES print for
    the README's own `helm install`, but for the image: the README reads it from the operator's
    Deployment, so that it also serves `kubectl apply -k manifests/`."""
    block = readme_upload()
    assert syntax_problems(block) == ""
    assert "get deployment faceblur-operator" in block
    assert '.env[?(@.name=="FACEBLUR_WORKER_IMAGE")].value' in block

    def comparable(command: list[str]) -> list[Any]:
        return [
            json.loads(w.split("=", 1)[1]) if w.startswith("--overrides=") else w
            for w in command
            if not w.startswith("--image=")
        ]

    readme = comparable(words(block))
    notes = comparable(upload_command(render_notes(helm, README_VALUES, tmp_path)))
    example = yaml.safe_load((MANIFESTS / "examples" / "cpu.yaml").read_text())["spec"]["input"]
    at = readme.index(example["key"])
    assert readme[at - 1] == example["bucket"]
    assert notes[at] == "input.mp4"
    notes[at] = example["key"]
    assert readme == notes
