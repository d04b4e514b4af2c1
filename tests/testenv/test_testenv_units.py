"""The pod runner's pure decisions: environment, command line, paths, status, records; and the PKI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from faceblur_testenv import pki
from faceblur_testenv.nodes import NodeSpec, parse_node_list
from faceblur_testenv.podrecords import PodRun, peak_concurrency
from faceblur_testenv.podspec import (
    DEFAULT_ENTRYPOINTS,
    ContainerConfigError,
    command_line,
    container_env,
    expand,
    image_repository,
    map_paths,
    parse_quantity,
    plan_container,
    resource_value,
)
from faceblur_testenv.podstatus import ContainerView, Terminated, pod_status_patch, termination_message

POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "annotations": {"batch.kubernetes.io/job-completion-index": "3"},
    },
    "spec": {"nodeName": "n0"},
}
STORE = {("secrets", "ns", "s3"): {"accessKey": "AK"}, ("configmaps", "ns", "cfg"): {"A": "1", "B": "2"}}


def lookup(kind: str, namespace: str, name: str) -> dict[str, str] | None:
    return STORE.get((kind, namespace, name))


@pytest.mark.parametrize(
    ("template", "expected"),
    [("$(X)-$(Y)", "x-$(Y)"), ("$$(X)", "$(X)"), ("a$$b", "a$b"), ("$X", "$X"), ("$(X", "$(X")],
)
def test_expand_follows_kubernetes_rules(template: str, expected: str) -> None:
    assert expand(template, {"X": "x"}) == expected


def test_env_sources_and_precedence() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "CFG_A", "value": "override-$(CFG_B)"},
            {
                "name": "INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    }
                },
            },
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "accessKey"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
        ],
        "resources": {"limits": {"cpu": "1500m"}},
    }
    env = container_env(POD, container, lookup, {"PATH": "/bin"}, {"cpu": "8"})
    assert env == {
        "PATH": "/bin",
        "CFG_A": "override-2",
        "CFG_B": "2",
        "INDEX": "3",
        "KEY": "AK",
        "CPU": "1500",
    }


def test_missing_secret_key_is_a_config_error() -> None:
    container = {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secretKey"}}}]}
    with pytest.raises(ContainerConfigError, match="couldn't find key secretKey in secret ns/s3"):
        container_env(POD, container, lookup, {}, {})


def test_unset_limit_is_the_node_allocatable() -> None:
    assert resource_value({}, "limits.memory", "1Mi", {"memory": "16Gi"}) == "16384"
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("250m") == parse_quantity("0.25")


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("faceblur/worker:0.1.0", "faceblur/worker"),
        ("registry.local:5000/faceblur/worker-gpu@sha256:abc", "faceblur/worker-gpu"),
        ("localhost/faceblur/worker", "faceblur/worker"),
        ("docker.io/library/busybox:1", "busybox"),
        ("busybox", "busybox"),
    ],
)
def test_image_repository(image: str, repository: str) -> None:
    assert image_repository(image) == repository


def test_command_line_uses_the_image_entry_point_only_without_command() -> None:
    worker = {"name": "w", "image": "ghcr.io/x/faceblur/worker:1", "args": ["process", "--index", "$(I)"]}
    assert command_line(worker, {"I": "2"}, DEFAULT_ENTRYPOINTS) == ["faceblur", "process", "--index", "2"]
    explicit = {**worker, "command": ["faceblur-operator"]}
    assert command_line(explicit, {}, DEFAULT_ENTRYPOINTS)[0] == "faceblur-operator"
    with pytest.raises(ContainerConfigError, match="no entry point for image 'busybox'"):
        command_line({"name": "b", "image": "busybox"}, {}, DEFAULT_ENTRYPOINTS)


def test_paths_under_mounts_are_rewritten(tmp_path: Path) -> None:
    mounts = {"/scratch": tmp_path / "v", "/scratch/deep": tmp_path / "d"}
    assert map_paths("/scratch/a.mkv", mounts) == f"{tmp_path}/v/a.mkv"
    assert map_paths("--out=/scratch/deep/x", mounts) == f"--out={tmp_path}/d/x"
    assert map_paths("/scratchy", mounts) == "/scratchy"
    assert map_paths("s3://b/scratch", mounts) == "s3://b/scratch"


def test_plan_gives_each_container_its_termination_log(tmp_path: Path) -> None:
    pod = {**POD, "spec": {"nodeName": "n0", "volumes": [{"name": "work", "emptyDir": {}}]}}
    container = {
        "name": "main",
        "image": "faceblur/worker",
        "args": ["split", "--workdir", "/work"],
        "env": [{"name": "FACEBLUR_TERMINATION_LOG", "value": "/dev/termination-log"}],
        "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        "workingDir": "/work",
    }
    plan = plan_container(pod, container, lookup, {}, {}, DEFAULT_ENTRYPOINTS, tmp_path)
    assert plan.termination_log == tmp_path / "main.termination-log"
    assert plan.env["FACEBLUR_TERMINATION_LOG"] == str(plan.termination_log)
    assert plan.argv == ("faceblur", "split", "--workdir", str(tmp_path / "volumes" / "work"))
    assert plan.cwd == tmp_path / "volumes" / "work"


def test_host_paths_of_the_runner_are_not_rewritten_under_a_tmp_mount(tmp_path: Path) -> None:
    # A checkout under /tmp (as a CI clone may be) must keep its venv on PATH when a pod mounts /tmp.
    pod = {**POD, "spec": {"nodeName": "n0", "volumes": [{"name": "scratch", "emptyDir": {}}]}}
    container = {
        "name": "main",
        "image": "faceblur/worker",
        "command": ["faceblur", "split", "--out", "/tmp/x"],
        "env": [{"name": "TMPDIR", "value": "/tmp"}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
    }
    base = {"PATH": "/tmp/clone/.venv/bin:/usr/bin", "TMPDIR": str(tmp_path / "tmp")}
    plan = plan_container(pod, container, lookup, base, {}, DEFAULT_ENTRYPOINTS, tmp_path)
    scratch = tmp_path / "volumes" / "scratch"
    assert plan.env["PATH"] == "/tmp/clone/.venv/bin:/usr/bin"
    assert plan.env["TMPDIR"] == str(scratch)  # the pod's own value is a container path
    assert plan.argv[-1] == str(scratch / "x")


@pytest.mark.parametrize(
    ("file_text", "fallback", "exit_code", "expected"),
    [
        ('{"stage":"split"}', True, 1, '{"stage":"split"}'),
        ("", True, 1, "b\nc"),
        ("", True, 0, ""),
        ("", False, 1, ""),
    ],
)
def test_termination_message(file_text: str, fallback: bool, exit_code: int, expected: str) -> None:
    assert termination_message(file_text, "a\nb\nc\n", fallback, exit_code).endswith(expected)
    assert len(termination_message("x" * 10_000, "", False, 0)) == 4096


def test_terminal_status_is_not_ready_and_carries_the_exit() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    done = Terminated(2, "Error", "bad", t0, t0 + dt.timedelta(seconds=3), "id")
    patch = pod_status_patch("u-1", "Failed", t0, t0, [], [ContainerView("main", "img", terminated=done)])
    assert patch["metadata"] == {"uid": "u-1"}
    status = patch["status"]
    assert status["phase"] == "Failed"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated == {
        "exitCode": 2,
        "reason": "Error",
        "message": "bad",
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:03Z",
        "containerID": "id",
    }


def test_peak_concurrency() -> None:
    def run(start: float, end: float | None) -> PodRun:
        return PodRun("ns", f"p{start}", f"u{start}", "n", start, finished=end)

    assert peak_concurrency([]) == 0
    assert peak_concurrency([run(0, 2), run(1, 3), run(2, 4)]) == 2  # an end and a start at 2 do not overlap
    assert peak_concurrency([run(0, 10), run(1, 2), run(3, None)], now=5) == 2
    assert peak_concurrency([run(0, None), run(1, None)]) == 2


def test_node_list_parsing() -> None:
    assert parse_node_list("a:1, b:0:4:8Gi") == (
        NodeSpec("a", gpus=1),
        NodeSpec("b", gpus=0, cpu="4", memory="8Gi"),
    )
    with pytest.raises(ValueError, match="expected name:gpus"):
        parse_node_list("a:1:2:3:4")
    assert NodeSpec.from_json(NodeSpec("x", gpus=2).to_json()) == NodeSpec("x", gpus=2)


def test_client_certificate_names_user_and_groups() -> None:
    ca = pki.CertificateAuthority()
    pair = ca.client(pki.ClientIdentity("alice", ("system:masters",)))
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.pair.cert_pem))
