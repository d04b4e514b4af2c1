"""The reconcile pass against an in-memory API server: what it reads, writes, creates and posts."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

import pytest
from faceblur_operator.kube import ConflictError, merge_patch
from faceblur_operator.metrics import Metrics
from faceblur_operator.reconciler import Reconciler
from faceblur_operator.stages import Event
from faceblur_operator.workqueue import Key
from operator_support import OWNER, config

JSON = dict[str, Any]
KEY = Key(OWNER.namespace, OWNER.name)
Posted = list[tuple[str, Event]]


class FakeKube:
    """Just enough of the API server: one FaceBlurJob, its Jobs and pods, resourceVersions."""

    def __init__(self, spec: JSON, status: JSON | None = None) -> None:
        self.body: JSON | None = {
            "apiVersion": "faceblur.dev/v1alpha1",
            "kind": "FaceBlurJob",
            "metadata": {"name": OWNER.name, "namespace": OWNER.namespace, "uid": OWNER.uid,
                         "generation": 1, "resourceVersion": "1"},
            "spec": spec,
            "status": status or {},
        }  # fmt: skip
        self.jobs: dict[str, JSON] = {}
        self.pods: list[JSON] = []
        self.patches: list[JSON] = []
        self.conflicts = 0  # patches to refuse, as if someone wrote in between

    def get_faceblurjob(self, namespace: str, name: str) -> JSON | None:
        return copy.deepcopy(self.body)

    def list_jobs(self, namespace: str, selector: str) -> list[JSON]:
        assert f"faceblur.dev/job-uid={OWNER.uid}" in selector
        return [copy.deepcopy(j) for j in self.jobs.values()]

    def list_pods(self, namespace: str, selector: str) -> list[JSON]:
        return copy.deepcopy(self.pods)

    def resume_job(self, namespace: str, name: str) -> None:
        self.jobs[name]["spec"]["suspend"] = False

    def create_job(self, manifest: JSON) -> bool:
        name = manifest["metadata"]["name"]
        if name in self.jobs:
            return False
        self.jobs[name] = {**manifest, "metadata": {**manifest["metadata"], "uid": f"uid-{name}"}}
        return True

    def delete_job(self, namespace: str, name: str) -> None:
        self.jobs.pop(name, None)

    def patch_status(self, namespace: str, name: str, resource_version: str, patch: JSON) -> JSON:
        assert self.body is not None
        if self.conflicts:
            self.conflicts -= 1
            self.body["metadata"]["resourceVersion"] = str(int(self.body["metadata"]["resourceVersion"]) + 1)
            raise ConflictError("changed")
        assert resource_version == self.body["metadata"]["resourceVersion"]
        self.patches.append(patch)
        status = self.body["status"]
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value  # deep enough for these tests: top-level keys
        self.body["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
        return self.body


SPEC = {"input": {"bucket": "media", "key": "clip.mp4"}, "storage": {"endpoint": "http://s3:9000"}}


def reconciler(kube: FakeKube, events: Posted, **env: str) -> Reconciler:
    def post(body: Mapping[str, Any], event: Event) -> None:
        events.append((body["metadata"]["name"], event))

    return Reconciler(config(**env), kube, Metrics(), post, clock=lambda: "2026-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_first_pass_creates_the_split_job_then_writes_status_then_posts() -> None:
    kube, events = FakeKube(SPEC), Posted()
    decision = asyncio.run(reconciler(kube, events).reconcile(KEY))
    assert decision is not None
    assert list(kube.jobs) == ["clip-split"]
    assert kube.body is not None
    assert kube.body["status"]["phase"] == "Pending"
    assert kube.body["status"]["intermediates"] == f"s3://media/faceblur-jobs/media/clip-{OWNER.uid[:8]}"
    assert [(e.type, e.reason.value, e.message) for _, e in events] == [
        ("Normal", "Created", "created Job clip-split")
    ]


def test_a_second_pass_changes_nothing() -> None:
    kube, events = FakeKube(SPEC), Posted()
    worker = reconciler(kube, events)
    asyncio.run(worker.reconcile(KEY))
    patches, posted = len(kube.patches), len(events)
    asyncio.run(worker.reconcile(KEY))
    assert len(kube.patches) == patches  # no write when nothing changed
    assert len(events) == posted


def test_conflicts_are_retried_and_events_posted_once() -> None:
    kube, events = FakeKube(SPEC), Posted()
    kube.conflicts = 2
    asyncio.run(reconciler(kube, events).reconcile(KEY))
    assert len(kube.patches) == 1
    assert [e.message for _, e in events] == ["created Job clip-split"]  # the 409 re-creates were no-ops
    busy = FakeKube(SPEC)
    busy.conflicts = 99
    with pytest.raises(ConflictError, match="kept changing"):
        asyncio.run(reconciler(busy, events).reconcile(KEY))


def test_impossible_spec_fails_without_jobs() -> None:
    kube, events = FakeKube({"input": {"bucket": "media", "key": "clip.mp4"}}), Posted()  # no store anywhere
    decision = asyncio.run(reconciler(kube, events).reconcile(KEY))
    assert decision is not None
    assert kube.jobs == {}
    assert kube.body is not None
    assert (kube.body["status"]["phase"], kube.body["status"]["reason"]) == ("Failed", "InvalidSpec")
    assert [e.reason.value for _, e in events] == ["InvalidSpec"]


def test_a_deleted_job_is_forgotten() -> None:
    kube, events = FakeKube(SPEC), Posted()
    kube.body = None
    assert asyncio.run(reconciler(kube, events).reconcile(KEY)) is None


@pytest.mark.parametrize(
    ("spec_extra", "status", "cleaned"),
    [
        ({}, {"phase": "Processing", "jobs": {"split": "clip-split"}}, True),
        ({"cleanup": "Never"}, {"phase": "Processing", "jobs": {"split": "clip-split"}}, False),
        ({}, {"phase": "Succeeded", "jobs": {"split": "clip-split"}}, False),  # compose cleaned up
        ({}, {"phase": "Pending"}, False),  # nothing was written yet
        (
            {"cleanup": "Always"},
            {"phase": "Failed", "jobs": {"split": "s", "cleanup": "clip-cleanup"}},
            False,
        ),
    ],
)
def test_cleanup_after_deletion(spec_extra: JSON, status: JSON, cleaned: bool) -> None:
    kube, events = FakeKube({**SPEC, **spec_extra}, status), Posted()
    assert kube.body is not None
    name = asyncio.run(reconciler(kube, events).cleanup_after_deletion(kube.body))
    assert (name is not None) == cleaned
    if cleaned:
        job = kube.jobs[f"clip-cleanup-{OWNER.uid[:8]}"]
        assert "ownerReferences" not in job["metadata"]
        assert job["spec"]["suspend"] is False  # no pod of the job was left: it starts at once


def test_a_deleted_job_s_cleanup_waits_until_its_pods_are_gone() -> None:
    """A worker still terminating could write after the cleanup ran: the cleanup Job stays suspended
    while any other pod of the job is listed, and starts on the event of the last one's deletion."""
    status = {"phase": "Processing", "jobs": {"split": "clip-split", "work": "clip-work"}}
    kube, events = FakeKube(SPEC, status), Posted()
    assert kube.body is not None
    worker = {"metadata": {"name": "clip-work-0", "labels": {"faceblur.dev/stage": "work"},
                           "deletionTimestamp": "2026-01-01T00:00:00Z"}}  # fmt: skip
    kube.pods = [worker]
    r = reconciler(kube, events)
    name = asyncio.run(r.cleanup_after_deletion(kube.body))
    assert name is not None
    assert kube.jobs[name]["spec"]["suspend"] is True
    assert asyncio.run(r.release_deletion_cleanup(OWNER.namespace, OWNER.uid)) is False  # still there
    kube.pods = [{"metadata": {"name": f"{name}-x", "labels": {"faceblur.dev/stage": "cleanup"}}}]
    assert asyncio.run(r.release_deletion_cleanup(OWNER.namespace, OWNER.uid)) is True
    assert kube.jobs[name]["spec"]["suspend"] is False
    assert asyncio.run(r.release_deletion_cleanup(OWNER.namespace, OWNER.uid)) is False  # once


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({"p": {"x": 1, "y": 2}}, {"p": {"x": 1}}, {"p": {"y": None}}),
        ({"c": [1, 2]}, {"c": [1]}, {"c": [1]}),
        ({"a": 1}, {"a": 1}, {}),
    ],
)
def test_merge_patch(old: JSON, new: JSON, patch: JSON) -> None:
    assert merge_patch(old, new) == patch
