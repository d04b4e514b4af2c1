"""`faceblur-testenv up`'s instructions: the README's install steps, filled in with the cluster's values."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from faceblur_testenv.devcluster import NAMESPACE, SECRET, chart_settings, guide
from faceblur_testenv.images import REPO_ROOT
from faceblur_testenv.s3 import S3Server


def readme_helm_settings() -> list[str]:
    """The keys the README's `helm install` sets, in order."""
    text = (REPO_ROOT / "README.md").read_text()
    block = text[text.index("helm install faceblur charts/faceblur") :].split("```", 1)[0]
    return re.findall(r"--set ([\w.]+)=", block)


def test_the_guide_runs_the_readmes_steps_with_this_clusters_store(tmp_path: Path) -> None:
    server = S3Server(tmp_path, access_key="ak", secret_key="s k")
    server.endpoint, server.url = "10.213.0.1:9000", "http://10.213.0.1:9000"
    text = guide(tmp_path / "kubeconfig", tmp_path / "bin", server)
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()]
    assert f"export KUBECONFIG={tmp_path / 'kubeconfig'} PATH={tmp_path / 'bin'}:$PATH" in lines
    assert f"kubectl create namespace {NAMESPACE}" in lines
    secret = next(shlex.split(line) for line in lines if " create secret " in line)
    assert secret[-2:] == ["--from-literal=accessKey=ak", "--from-literal=secretKey=s k"]
    assert secret[:6] == ["kubectl", "-n", NAMESPACE, "create", "secret", "generic"]
    assert secret[6] == SECRET
    helm = shlex.split(next(line for line in lines if line.startswith("helm install")))
    assert helm[:5] == ["helm", "install", "faceblur", str(REPO_ROOT / "charts" / "faceblur"), "-n"]
    assert helm[6::2] == ["--set"] * len(chart_settings(server.url))
    assert helm[7::2] == chart_settings(server.url)
    assert [s.split("=", 1)[0] for s in chart_settings(server.url)][:2] == readme_helm_settings()
    assert chart_settings(server.url)[0] == "defaults.storage.endpoint=http://10.213.0.1:9000"
    assert any(line.startswith(f"kubectl -n {NAMESPACE} apply -f ") and "cpu.yaml" in line for line in lines)
