"""Tenants get FaceBlurJob access the usual way, and the operator may set blockOwnerDeletion.

On the session's real API server: the chart's aggregated ClusterRoles (<fullname>-edit, -view) are
applied, the cluster's clusterrole-aggregation controller (kube-controller-manager) folds their rules
into the built-in admin, edit and view, and ServiceAccounts bound to those built-in roles by a
RoleBinding in their own namespace act on FaceBlurJobs through impersonation (`kubectl --as`), so
every answer is the API server's own authorization. No operator runs here: the jobs just sit.

The chart is rendered under its own release name, so its cluster-scoped roles never collide with
another module's, and they are deleted again at the end.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.polling import WaitTimeoutError, wait_until
from packaging_support import CHART, Helm, Manifest, find, one

NAMESPACE = "fb-tenant-roles"
RELEASE = "tenants"
AGGREGATION_TIMEOUT_S = 60
# Tenant ServiceAccounts in NAMESPACE -> the built-in ClusterRole each is bound to there.
TENANTS = {"author": "edit", "owner": "admin", "reader": "view"}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def _service_account(name: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{name}"


def _job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "faceblur.dev/v1alpha1",
        "kind": "FaceBlurJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "input": {"bucket": "tenant", "key": f"{name}.mp4"},
            "output": {"bucket": "tenant", "key": f"{name}.blurred.mp4"},
        },
    }


@dataclass(frozen=True)
class Installed:
    objects: list[Manifest]
    operator_account: str


def _can(cluster: TestCluster, user: str, verb: str, resource: str, subresource: str = "") -> bool:
    """`kubectl auth can-i` for a resource in NAMESPACE. A subresource goes in --subresource:
    `resource/status` would ask about the object named "status" instead."""
    args = ["auth", "can-i", verb, resource, "-n", NAMESPACE, f"--as={user}"]
    args += [f"--subresource={subresource}"] if subresource else []
    answer: str = cluster.kubectl(*args, check=False).stdout
    return answer.strip() == "yes"


def _aggregated(cluster: TestCluster) -> bool:
    """Whether each built-in role has taken in its FaceBlurJob rules yet."""
    return all(_can(cluster, _service_account(sa), "get", "faceblurjobs.faceblur.dev") for sa in TENANTS)


@pytest.fixture(scope="module")
def installed(test_cluster: TestCluster, helm: Helm) -> Iterator[Installed]:
    """CRD, namespace, the chart's RBAC and ServiceAccounts (operator namespaced to NAMESPACE), and a
    tenant ServiceAccount per built-in role, bound there by a RoleBinding."""
    objects = helm.template(f"operator.watchNamespaces={{{NAMESPACE}}}", release=RELEASE, namespace=NAMESPACE)
    test_cluster.kubectl("apply", "-f", str(CHART / "crds" / "faceblurjobs.yaml"))
    test_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/faceblurjobs.faceblur.dev", "--timeout=60s"
    )
    test_cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    rbac = [o for o in objects if o["kind"] in ("ClusterRole", "Role", "RoleBinding", "ServiceAccount")]
    tenants: list[Manifest] = []
    for account, role in TENANTS.items():
        tenants.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}})
        tenants.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{account}-{role}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
            }
        )
    test_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    test_cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(tenants))
    account = one(objects, "ServiceAccount", f"{RELEASE}-faceblur-operator")["metadata"]["name"]
    try:
        try:
            wait_until(
                "the built-in roles to aggregate the chart's",
                lambda: _aggregated(test_cluster),
                timeout_s=AGGREGATION_TIMEOUT_S,
                interval_s=1,
            )
        except WaitTimeoutError as error:
            log = test_cluster.component_log("kube-controller-manager").read_text(errors="replace")
            lines = [line for line in log.splitlines() if "aggregat" in line.lower()]
            pytest.fail(f"{error}\nkube-controller-manager on aggregation:\n" + "\n".join(lines[-20:]))
        yield Installed(objects, _service_account(account))
    finally:
        for cluster_role in find(objects, "ClusterRole"):
            test_cluster.kubectl("delete", "clusterrole", cluster_role["metadata"]["name"], check=False)


def _as(
    cluster: TestCluster, account: str, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl in NAMESPACE as a tenant ServiceAccount (impersonated by the admin)."""
    return cluster.kubectl(
        f"--as={_service_account(account)}", "-n", NAMESPACE, *args, check=False, input=input
    )


def test_the_tenant_roles_are_named_and_labelled_to_aggregate(helm: Helm) -> None:
    objects = helm.template(release=RELEASE)
    edit = one(objects, "ClusterRole", f"{RELEASE}-faceblur-edit")
    view = one(objects, "ClusterRole", f"{RELEASE}-faceblur-view")
    aggregates = {
        name: {
            key.removeprefix(AGGREGATE)
            for key, value in role["metadata"]["labels"].items()
            if key.startswith(AGGREGATE) and value == "true"
        }
        for name, role in (("edit", edit), ("view", view))
    }
    assert aggregates == {"edit": {"admin", "edit"}, "view": {"view"}}


def test_the_aggregation_controller_fills_the_built_in_roles(
    installed: Installed, test_cluster: TestCluster
) -> None:
    for role in ("admin", "edit", "view"):
        found = json.loads(test_cluster.kubectl("get", "clusterrole", role, "-o", "json").stdout)
        groups = {group for rule in found["rules"] for group in rule.get("apiGroups", [])}
        assert "faceblur.dev" in groups, f"{role} did not aggregate the FaceBlurJob rules"


def test_a_tenant_bound_to_edit_creates_gets_and_deletes_a_job(
    installed: Installed, test_cluster: TestCluster
) -> None:
    job = _job("by-author")
    created = _as(test_cluster, "author", "create", "-f", "-", input=yaml.safe_dump(job))
    assert created.returncode == 0, created.stderr
    got = _as(test_cluster, "author", "get", "faceblurjob", "by-author", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["spec"]["input"]["key"] == "by-author.mp4"
    listed = _as(test_cluster, "author", "get", "faceblurjobs", "-o", "name")
    assert "faceblurjob.faceblur.dev/by-author" in listed.stdout.split(), listed.stderr
    annotated = _as(test_cluster, "author", "annotate", "faceblurjob", "by-author", "faceblur.dev/retry=1")
    assert annotated.returncode == 0, annotated.stderr
    deleted = _as(test_cluster, "author", "delete", "faceblurjob", "by-author", "--timeout=60s")
    assert deleted.returncode == 0, deleted.stderr
    gone = test_cluster.kubectl("-n", NAMESPACE, "get", "faceblurjob", "by-author", check=False)
    assert gone.returncode != 0, gone.stdout
    assert "NotFound" in gone.stderr, gone.stderr


def test_an_admin_of_the_namespace_may_create_jobs_too(
    installed: Installed, test_cluster: TestCluster
) -> None:
    user = _service_account("owner")
    assert _can(test_cluster, user, "create", "faceblurjobs.faceblur.dev")
    assert _can(test_cluster, user, "delete", "faceblurjobs.faceblur.dev")


def test_status_stays_the_operators(installed: Installed, test_cluster: TestCluster) -> None:
    for account in TENANTS:
        user = _service_account(account)
        assert _can(test_cluster, user, "get", "faceblurjobs.faceblur.dev", subresource="status"), account
        for verb in ("patch", "update"):
            assert not _can(test_cluster, user, verb, "faceblurjobs.faceblur.dev", subresource="status"), (
                account
            )


def test_a_tenant_bound_to_view_reads_jobs_but_may_not_create_or_delete(
    installed: Installed, test_cluster: TestCluster
) -> None:
    test_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_job("for-reader")))
    got = _as(test_cluster, "reader", "get", "faceblurjob", "for-reader", "-o", "json")
    assert got.returncode == 0, got.stderr
    listed = _as(test_cluster, "reader", "get", "faceblurjobs", "-o", "name")
    assert "faceblurjob.faceblur.dev/for-reader" in listed.stdout.split(), listed.stderr
    refused = _as(test_cluster, "reader", "create", "-f", "-", input=yaml.safe_dump(_job("by-reader")))
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr, refused.stderr
    kept = _as(test_cluster, "reader", "delete", "faceblurjob", "for-reader")
    assert kept.returncode != 0, kept.stdout
    assert "forbidden" in kept.stderr, kept.stderr
    assert not _can(test_cluster, _service_account("reader"), "patch", "faceblurjobs.faceblur.dev")


def test_tenant_roles_reach_no_other_namespace(installed: Installed, test_cluster: TestCluster) -> None:
    """The RoleBinding is the boundary: the aggregated rules apply only where edit is bound."""
    answer = test_cluster.kubectl(
        "auth",
        "can-i",
        "create",
        "faceblurjobs.faceblur.dev",
        "-n",
        "default",
        f"--as={_service_account('author')}",
        check=False,
    )
    assert answer.stdout.strip() == "no"


def _access_review(cluster: TestCluster, user: str, attributes: dict[str, str]) -> dict[str, Any]:
    """A SubjectAccessReview: the question an admission plugin asks the authorizer."""
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    done = cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    status: dict[str, Any] = json.loads(done.stdout)["status"]
    return status


def test_the_operator_may_update_the_finalizers_that_block_owner_deletion(
    installed: Installed, test_cluster: TestCluster
) -> None:
    """OwnerReferencesPermissionEnforcement (OpenShift) lets a Job's owner reference set
    blockOwnerDeletion only for whoever may update the owner's finalizers: the operator's Jobs do."""
    finalizers = {
        "namespace": NAMESPACE,
        "verb": "update",
        "group": "faceblur.dev",
        "resource": "faceblurjobs",
        "subresource": "finalizers",
        "name": "any-job",
    }
    assert _access_review(test_cluster, installed.operator_account, finalizers)["allowed"] is True
    spec = {**finalizers, "subresource": ""}
    assert _access_review(test_cluster, installed.operator_account, spec).get("allowed") is not True, (
        "finalizers, not the object: the spec stays the user's"
    )
    assert _access_review(test_cluster, _service_account("author"), finalizers).get("allowed") is not True


def test_the_roles_can_be_turned_off(helm: Helm) -> None:
    for sets in ((), ("operator.watchNamespaces={team-a}",)):
        assert {r["metadata"]["name"] for r in find(helm.template(*sets), "ClusterRole")} >= {
            "faceblur-edit",
            "faceblur-view",
        }
        off = helm.template("rbac.aggregateRoles=false", *sets)
        assert not [r for r in find(off, "ClusterRole") if r["metadata"]["name"] != "faceblur-operator"]
