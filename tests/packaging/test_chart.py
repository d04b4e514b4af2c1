"""The Helm chart: lint, render with the default and the GPU/MinIO/namespaced variations, and check
what users and the operator rely on (schemas, names, labels, security, RBAC scope, the env contract)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging_support import (
    CHART,
    FOREIGN_KINDS,
    NAMESPACE,
    SUPPORTED_VERSIONS,
    Helm,
    HelmError,
    Manifest,
    defaults_file,
    defaults_text,
    find,
    kubernetes_errors,
    one,
    pod_spec_of,
    render_notes,
    restricted_violations,
)

GPU_VALUES: dict[str, Any] = {
    "gpuImage": {"repository": "registry.example.com/faceblur/worker-gpu", "digest": "sha256:" + "a" * 64},
    "defaults": {
        "gpuPlacement": {"nodeSelector": {"nvidia.com/gpu.present": "true"}, "runtimeClassName": "nvidia"},
        "gpuDetector": {"name": "scrfd", "model": "/opt/faceblur/models/scrfd.onnx"},
        "resources": {"gpus": 1},
        "placement": {"priorityClassName": "batch-low"},
    },
}
VARIANTS: dict[str, tuple[list[str], dict[str, Any] | None]] = {
    "defaults": ([], None),
    "minio": (["minio.enabled=true"], None),
    "minio-persistent-nodeport": (
        [
            "minio.enabled=true",
            "minio.persistence.enabled=true",
            "minio.service.type=NodePort",
            "minio.service.nodePort=30900",
            "minio.auth.secretKey=a-long-secret",
        ],
        None,
    ),
    "gpu": ([], GPU_VALUES),
    "namespaced": (["operator.watchNamespaces={team-a,team-b}"], None),
    "servicemonitor": (["metrics.serviceMonitor.enabled=true"], None),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, helm: Helm) -> list[Manifest]:
    sets, values = VARIANTS[request.param]
    return helm.template(*sets, values=values)


def lint(helm: Helm, sets: list[str], values: dict[str, Any] | None, folder: Path) -> tuple[int, str]:
    """`helm lint --strict` with these --set values and, when given, this values document as a file:
    its exit status and its output (lint reports problems on stdout)."""
    args = ["lint", str(CHART), "--strict", "--namespace", NAMESPACE]
    for value in sets:
        args += ["--set", value]
    if values is not None:
        values_file = folder / "values.json"  # JSON is YAML
        values_file.write_text(json.dumps(values))
        args += ["--values", str(values_file)]
    done = subprocess.run([helm.binary, *args], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_lint_strict_passes_for_every_variant(helm: Helm, name: str, tmp_path: Path) -> None:
    sets, values = VARIANTS[name]
    status, output = lint(helm, sets, values, tmp_path)
    assert status == 0, f"{name}: {output}"
    assert "0 chart(s) failed" in output, f"{name}: {output}"


def test_lint_reads_the_values_file(helm: Helm, tmp_path: Path) -> None:
    """The values document reaches the lint: the GPU values with one unknown field fail the schema."""
    broken = {**GPU_VALUES, "gpuImage": {**GPU_VALUES["gpuImage"], "repositry": "typo"}}
    status, output = lint(helm, [], broken, tmp_path)
    assert status != 0, output
    assert "1 chart(s) failed" in output, output
    assert "repositry" in output, output


def test_every_object_validates_against_every_supported_kubernetes(variant: list[Manifest]) -> None:
    checked = 0
    for obj in variant:
        if obj["kind"] in FOREIGN_KINDS:
            continue
        for version in SUPPORTED_VERSIONS:
            errors = kubernetes_errors(obj, version)
            assert not errors, f"{obj['kind']}/{obj['metadata']['name']} on {version}: {errors}"
            checked += 1
    assert checked >= len(SUPPORTED_VERSIONS) * 6


def test_schema_check_catches_an_unknown_field(default_objects: list[Manifest]) -> None:
    deployment = one(default_objects, "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 1}}
    assert kubernetes_errors(broken, SUPPORTED_VERSIONS[-1])


def test_only_known_foreign_kinds_are_left_unvalidated(variant: list[Manifest]) -> None:
    assert {o["kind"] for o in variant} - FOREIGN_KINDS <= {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "Job",
        "PersistentVolumeClaim",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }


def test_names_fit_63_characters_with_a_long_release_name(helm: Helm) -> None:
    release = "a-long-release-name-that-a-ci-system-generated-for-us"  # helm allows 53
    assert len(release) == 53
    objects = helm.template("minio.enabled=true", release=release)
    objects += helm.template("minio.enabled=true", "fullnameOverride=" + "x" * 63)
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    names = [(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects]
    assert len(names) == len(set(names)), "two objects share a name after truncation"
    assert any(name.endswith("-minio-bucket") for _, name, _ in names), "the suffix survives truncation"
    # Every component keeps its suffix, the cluster-scoped RBAC included (names there are global).
    suffixed = {(kind, name.rsplit("-", 1)[-1]) for kind, name, _ in names}
    for kind, suffix in [
        ("ClusterRole", "operator"),
        ("ClusterRole", "edit"),
        ("ClusterRole", "view"),
        ("ClusterRoleBinding", "operator"),
        ("Service", "metrics"),
        ("ConfigMap", "defaults"),
        ("ServiceAccount", "worker"),
    ]:
        assert (kind, suffix) in suffixed, f"{kind} *-{suffix}"
    assert len([n for k, n, _ in names if k == "ClusterRole"]) == 6, "three per rendering, distinct"


def test_standard_labels_on_every_object_and_selectors_match_pods(variant: list[Manifest]) -> None:
    for obj in variant:
        labels = obj["metadata"]["labels"]
        for key in ("name", "instance", "version", "component", "part-of", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, f"{obj['kind']} {obj['metadata']['name']}: {key}"
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
            assert "app.kubernetes.io/version" not in selector, "a version in the selector breaks upgrades"
    for service in find(variant, "Service"):
        matched = [
            d
            for d in find(variant, "Deployment")
            if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, f"Service {service['metadata']['name']} selects {len(matched)} Deployments"


def test_operator_deployment_runs_one_replica_recreated_with_probes(default_objects: list[Manifest]) -> None:
    deployment = one(default_objects, "Deployment", "faceblur-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert container["command"] == ["faceblur-operator"]


def test_every_pod_meets_the_restricted_pod_security_standard(variant: list[Manifest]) -> None:
    pods = [(o, pod_spec_of(o)) for o in variant]
    pods_found = [(o, spec) for o, spec in pods if spec is not None]
    assert pods_found
    for obj, spec in pods_found:
        assert not restricted_violations(spec), f"{obj['kind']}/{obj['metadata']['name']}"
        assert spec.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault"


def test_restricted_check_notices_a_root_container() -> None:
    spec = {"containers": [{"name": "c", "securityContext": {"runAsUser": 0}}]}
    assert "c: runs as uid 0" in restricted_violations(spec)


def _env(deployment: Manifest) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_operator_environment_follows_the_contract(helm: Helm) -> None:
    objects = helm.template("operator.watchNamespaces={team-a,team-b}", values=GPU_VALUES)
    deployment = one(objects, "Deployment", "faceblur-operator")
    env = _env(deployment)
    assert env["FACEBLUR_WORKER_IMAGE"] == "ghcr.io/faceblur/faceblur-worker:0.1.0"
    assert env["FACEBLUR_GPU_WORKER_IMAGE"] == "registry.example.com/faceblur/worker-gpu@sha256:" + "a" * 64
    assert env["FACEBLUR_WORKER_SERVICE_ACCOUNT"] == "faceblur-worker"
    assert env["FACEBLUR_NAMESPACES"] == "team-a,team-b"
    # FACEBLUR_DEFAULTS names a file that a mounted ConfigMap provides.
    path = env["FACEBLUR_DEFAULTS"]
    spec = deployment["spec"]["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    configmap = one(objects, "ConfigMap", volume["configMap"]["name"])
    assert path.rsplit("/", 1)[1] in configmap["data"]


def test_defaults_configmap_carries_gpu_and_placement_values(helm: Helm) -> None:
    objects = helm.template(values=GPU_VALUES)
    defaults = defaults_file(objects)
    gpu_placement = defaults["gpuPlacement"]
    assert gpu_placement["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu_placement["runtimeClassName"] == "nvidia"
    assert gpu_placement["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert defaults["placement"]["priorityClassName"] == "batch-low"
    assert defaults["gpuDetector"]["model"] == "/opt/faceblur/models/scrfd.onnx"
    assert defaults["resources"]["gpus"] == 1


def test_the_operator_accepts_the_defaults_file_of_every_variant(
    variant: list[Manifest], tmp_path: Path
) -> None:
    """The operator's own loader reads the ConfigMap: a key it does not know fails here, not at start."""
    from faceblur_operator.settings import load_defaults

    path = tmp_path / "defaults.yaml"
    path.write_text(defaults_text(variant))
    defaults = load_defaults(path)
    assert defaults.detector.name == "centerface"


def test_defaults_file_holds_only_set_values(default_objects: list[Manifest]) -> None:
    defaults = defaults_file(default_objects)

    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [leaf for value in node.values() for leaf in leaves(value)]
        return [node]

    assert "" not in leaves(defaults)
    assert None not in leaves(defaults)
    assert "storage" not in defaults, "without MinIO or values there is no default store"
    assert defaults["detector"] == {"name": "centerface"}


def test_defaults_change_rolls_the_operator(helm: Helm) -> None:
    def checksum(*sets: str) -> str:
        deployment = one(helm.template(*sets), "Deployment", "faceblur-operator")
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/defaults"]
        return value

    assert checksum() != checksum("defaults.detector.batchSize=16")


def test_cluster_wide_by_default_and_namespaced_when_asked(
    helm: Helm, default_objects: list[Manifest]
) -> None:
    assert not find(default_objects, "Role")
    one(default_objects, "ClusterRole", "faceblur-operator")
    (binding,) = find(default_objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "faceblur-operator"

    namespaced = helm.template("operator.watchNamespaces={team-a,team-b}")
    roles = find(namespaced, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in find(namespaced, "RoleBinding")) == ["team-a", "team-b"]
    # Nothing cluster-wide at all: kopf scans neither CRDs nor namespaces (operator/RBAC.md).
    tenant_roles = {r["metadata"]["name"] for r in find(namespaced, "ClusterRole")}
    assert tenant_roles == {"faceblur-edit", "faceblur-view"}  # the tenants' roles, bound to no one
    assert not find(namespaced, "ClusterRoleBinding")
    # Worker pods need their ServiceAccount in every namespace that runs jobs.
    accounts = find(namespaced, "ServiceAccount", "faceblur-worker")
    assert sorted(a["metadata"]["namespace"] for a in accounts) == sorted([NAMESPACE, "team-a", "team-b"])


def test_operator_rules_grant_no_secrets_and_no_wildcards(default_objects: list[Manifest]) -> None:
    for role in find(default_objects, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"], rule
            assert "*" not in rule["resources"], rule
            assert "secrets" not in rule["resources"], "the operator never reads credentials"


def test_bindings_name_the_operator_service_account(variant: list[Manifest]) -> None:
    account = one(variant, "ServiceAccount", "faceblur-operator")
    for binding in [*find(variant, "ClusterRoleBinding"), *find(variant, "RoleBinding")]:
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": "faceblur-operator",
                "namespace": account["metadata"]["namespace"],
            }
        ]
        roles = find(variant, binding["roleRef"]["kind"], binding["roleRef"]["name"])
        assert roles, f"{binding['metadata']['name']} binds a role the chart does not create"


def test_worker_service_account_mounts_no_token(default_objects: list[Manifest]) -> None:
    account = one(default_objects, "ServiceAccount", "faceblur-worker")
    assert account["automountServiceAccountToken"] is False


def test_minio_objects_fit_together(helm: Helm) -> None:
    objects = helm.template("minio.enabled=true", "minio.auth.secretKey=a-long-secret")
    secret = one(objects, "Secret", "faceblur-minio")
    keys = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert keys == {"accessKey": "faceblur", "secretKey": "a-long-secret"}
    for obj in (one(objects, "Deployment", "faceblur-minio"), one(objects, "Job")):
        for env in obj["spec"]["template"]["spec"]["containers"][0]["env"]:
            if ref := env.get("valueFrom", {}).get("secretKeyRef"):
                assert ref["name"] == "faceblur-minio"
                assert ref["key"] in keys
    job = one(objects, "Job")
    assert "post-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    assert "mc mb --ignore-existing" in job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    defaults = defaults_file(objects)
    assert defaults["storage"]["endpoint"] == f"faceblur-minio.{NAMESPACE}.svc:9000"
    assert defaults["storage"]["credentialsSecret"]["name"] == "faceblur-minio"


def test_minio_secret_key_is_random_when_not_given(helm: Helm) -> None:
    def secret_key() -> str:
        secret = one(helm.template("minio.enabled=true"), "Secret")
        return base64.b64decode(secret["data"]["secretKey"]).decode()

    first, second = secret_key(), secret_key()
    assert len(first) == 32
    assert first != second


def test_servicemonitor_scrapes_the_metrics_service(helm: Helm) -> None:
    objects = helm.template("metrics.serviceMonitor.enabled=true")
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


IMPOSSIBLE = [
    (["metrics.enabled=false", "metrics.serviceMonitor.enabled=true"], "needs metrics.enabled=true"),
    (
        ["worker.serviceAccount.create=false", "worker.serviceAccount.extraNamespaces={x}"],
        "nothing would be created",
    ),
    (["minio.enabled=true", "minio.persistence.existingClaim=data"], "enable persistence to use the claim"),
    (["minio.enabled=true", "minio.service.nodePort=30900"], "needs minio.service.type=NodePort"),
    (["minio.auth.existingSecret=s3", "minio.auth.secretKey=a-long-secret"], "not both"),
    (["defaults.detector.name=scrfd"], "defaults.detector.name=scrfd needs defaults.detector.model"),
    (["defaults.gpuDetector.name=scrfd"], "defaults.gpuDetector.name=scrfd needs defaults.gpuDetector.model"),
    ([f"worker.serviceAccount.extraNamespaces={{{NAMESPACE}}}"], "always gets the worker ServiceAccount"),
]


@pytest.mark.parametrize(("sets", "message"), IMPOSSIBLE, ids=[m for _, m in IMPOSSIBLE])
def test_impossible_values_fail_with_a_clear_message(helm: Helm, sets: list[str], message: str) -> None:
    with pytest.raises(HelmError, match=re.escape(message)):
        helm.template(*sets)


def test_notes_tell_the_user_what_to_do_next(helm: Helm, tmp_path: Any) -> None:
    """helm template skips NOTES.txt; render_notes renders a copy of it as an ordinary template (its
    snippets are checked in test_notes.py)."""
    notes = render_notes(helm, ["minio.enabled=true"], tmp_path)
    assert "rollout status deployment/faceblur-operator" in notes
    assert "kubectl -n faceblur-system get faceblurjobs -w" in notes
    assert "kubectl -n faceblur-system run faceblur-upload" in notes
    assert "port-forward svc/faceblur-minio 9000:9000" in notes
    assert '"secretKeyRef": {"key":"accessKey","name":"faceblur-minio"}' in notes
