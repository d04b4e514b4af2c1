"""Custom resources on the real API server: Established, status subresource, CEL validation."""

from __future__ import annotations

import json

import pytest
from faceblur_testenv.cluster import CommandFailed, TestCluster
from kube_support import JSON, apply, get
from testenv_support import condition

pytestmark = pytest.mark.cluster

GROUP = "testenv.faceblur.dev"
CRD: JSON = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.size <= 10", "message": "size must be at most 10"}
                                ],
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


def widget(namespace: str, name: str, size: int) -> JSON:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size},
    }


@pytest.fixture(scope="module")
def widget_crd(test_cluster: TestCluster) -> JSON:
    apply(test_cluster, CRD)
    test_cluster.kubectl("wait", "--for=condition=Established", f"crd/widgets.{GROUP}", "--timeout=60s")
    crd = get(test_cluster, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}")
    assert crd is not None
    return crd


def test_crd_is_established_and_its_status_subresource_works(
    test_cluster: TestCluster, widget_crd: JSON, namespace: str
) -> None:
    assert condition(widget_crd, "Established")
    apply(test_cluster, widget(namespace, "w", 2))
    test_cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "widget",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Ready"}}),
    )
    path = f"/apis/{GROUP}/v1/namespaces/{namespace}/widgets/w"
    after_status = get(test_cluster, path)
    assert after_status is not None
    assert after_status["status"] == {"phase": "Ready"}
    assert after_status["metadata"]["generation"] == 1  # a status write is not a spec change

    # Through the main resource, status is ignored and spec changes bump the generation.
    test_cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "widget",
        "w",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"size": 3}, "status": {"phase": "Forged"}}),
    )
    after_spec = get(test_cluster, path)
    assert after_spec is not None
    assert after_spec["status"] == {"phase": "Ready"}
    assert after_spec["spec"] == {"size": 3}
    assert after_spec["metadata"]["generation"] == 2


def test_cel_rule_and_schema_refuse_invalid_objects(
    test_cluster: TestCluster, widget_crd: JSON, namespace: str
) -> None:
    with pytest.raises(CommandFailed, match="size must be at most 10"):
        apply(test_cluster, widget(namespace, "too-big", 11))
    with pytest.raises(CommandFailed, match="should be greater than or equal to 1"):
        apply(test_cluster, widget(namespace, "too-small", 0))
    assert get(test_cluster, f"/apis/{GROUP}/v1/namespaces/{namespace}/widgets/too-big") is None
