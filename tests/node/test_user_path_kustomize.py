"""The user's path without Helm: `kubectl apply -k` of an overlay of manifests/ that points the
ConfigMap faceblur-defaults at the user's S3 store (docs/deploy.md, "Plain manifests"), then the CPU
example as it is, on the real node.

The plain manifests name the image faceblur/worker:<appVersion>; a user builds and pushes that, here the
built image is tagged so in the node's containerd (the worker pods get the same name from the operator).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.images import REPO_ROOT
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import FaceVideo
from user_path_support import (
    NAMESPACE,
    SECRET,
    SMALL_REQUESTS,
    check_cpu_example,
    create_secret,
    wait_operator_available,
)

pytestmark = pytest.mark.node

MANIFESTS = REPO_ROOT / "manifests"


def containerd_ref(image: str) -> str:
    """The name containerd keeps an image under: Docker Hub's names with their registry spelled out."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image if '/' in image else 'library/' + image}"


def manifests_image() -> str:
    deployment = yaml.safe_load((MANIFESTS / "faceblur" / "operator-deployment.yaml").read_text())
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def write_overlay(folder: Path, s3: S3Server) -> Path:
    """A user's overlay: manifests/ as its base, the defaults file with their store and requests."""
    base_map = yaml.safe_load((MANIFESTS / "faceblur" / "defaults-configmap.yaml").read_text())
    defaults = yaml.safe_load(base_map["data"]["defaults.yaml"])
    defaults["storage"] = {"endpoint": s3.url, "credentialsSecret": {"name": SECRET}}
    defaults["resources"]["requests"] = dict(SMALL_REQUESTS)
    patch = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "faceblur-defaults", "namespace": NAMESPACE},
        "data": {"defaults.yaml": yaml.safe_dump(defaults)},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "defaults-patch.yaml").write_text(yaml.safe_dump(patch))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS, folder)],
        "patches": [{"path": "defaults-patch.yaml"}],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return folder


def delete_overlay(cluster: TestCluster, overlay: Path) -> None:
    """`kubectl delete -k` but for the CRD: the session's other modules keep using it (deleting it would
    delete their FaceBlurJobs); the namespace goes, and with it what the jobs made."""
    rendered = yaml.safe_load_all(cluster.kubectl("kustomize", str(overlay)).stdout)
    kept = [doc for doc in rendered if doc and doc["kind"] != "CustomResourceDefinition"]
    cluster.kubectl(
        "delete",
        "-f",
        "-",
        "--ignore-not-found",
        "--timeout=240s",
        input=yaml.safe_dump_all(kept),
        timeout=260,
    )


@pytest.fixture(scope="module")
def installed(
    node_cluster: TestCluster,
    worker_images: dict[str, str],
    s3: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The overlay applied to the session's cluster, deleted when the module is done."""
    assert node_cluster.node is not None
    image = manifests_image()
    tagged = node_cluster.node.ctr("images", "tag", "--force", worker_images["worker"], containerd_ref(image))
    assert tagged.returncode == 0, tagged.stderr
    started = time.monotonic()
    overlay = write_overlay(tmp_path_factory.mktemp("overlay"), s3)
    try:
        node_cluster.kubectl("apply", "-k", str(overlay))  # the namespace too
        create_secret(node_cluster, s3, create_namespace=False)
        wait_operator_available(node_cluster)
        print(f"kubectl apply -k to Available: {time.monotonic() - started:.1f}s (image {image})")
        yield
    finally:
        delete_overlay(node_cluster, overlay)


def test_cpu_example_blurs_every_face(
    node_cluster: TestCluster, s3: S3Server, installed: None, sample: FaceVideo, tmp_path: Path
) -> None:
    check_cpu_example(node_cluster, s3, sample, tmp_path / "people-cpu.mp4")
