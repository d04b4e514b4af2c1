"""The ways tests reach the cluster: the official Python client, kubectl, helm, the environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from faceblur_testenv.cluster import REAL_NODE_NAME, TestCluster
from kube_support import get
from kubernetes import client

pytestmark = pytest.mark.cluster


def test_official_client_kubectl_and_env_reach_the_same_server(test_cluster: TestCluster) -> None:
    listed = client.CoreV1Api(test_cluster.api_client()).list_namespace().items
    names = {ns.metadata.name for ns in listed if ns.metadata}
    assert {"default", "kube-system", "kube-node-lease"} <= names
    version = test_cluster.kubectl("version", "-o", "json").stdout
    assert '"gitVersion": "v1.34.4"' in version
    plain = subprocess.run(
        ["kubectl", "get", "nodes", "-o", "name"],
        env={**os.environ, **test_cluster.env()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert plain.stdout.split() == [f"node/{REAL_NODE_NAME}"]


def test_helm_installs_a_chart(test_cluster: TestCluster, namespace: str, tmp_path: Path) -> None:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )

    test_cluster.helm("install", "demo", str(chart), "-n", namespace, "--set", "greeting=hi", "--wait")

    config_map = get(test_cluster, f"/api/v1/namespaces/{namespace}/configmaps/demo-cm")
    assert config_map is not None
    assert config_map["data"] == {"greeting": "hi"}
    assert "demo" in test_cluster.helm("list", "-n", namespace, "-q").stdout.split()
