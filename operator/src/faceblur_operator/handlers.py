"""The kopf handlers: thin, they only route events to the reconciler.

- A FaceBlurJob created, changed (spec or annotations, e.g. faceblur.dev/retry) or found at startup
  is reconciled by a change handler: a transient failure raises kopf.TemporaryError (kopf retries
  it), a spec that can never work ends Failed (InvalidSpec) and raises kopf.PermanentError.
- An event of a labelled Job or pod reconciles the FaceBlurJob that owns it: children drive the
  parent, nothing sleeps or polls. A failed pass is retried by the work queue's backoff.
- A FaceBlurJob's DELETED event starts a best-effort cleanup of its intermediates: a suspended Job,
  resumed on the event of its last other pod's deletion (or of the Job itself, e.g. at startup), so
  no pod of the job writes after it. There is no finalizer, so a FaceBlurJob never waits for the
  operator to be deleted.

kopf's own state (handler progress, last-handled spec) goes to `kopf.faceblur.dev/*` annotations, never
into the status, which the reconciler alone writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from faceblur_operator import api
from faceblur_operator.api import Reason
from faceblur_operator.naming import ANNOTATION_OWNER, LABEL_JOB_UID, LABEL_MANAGED_BY, MANAGED_BY
from faceblur_operator.reconciler import Reconciler, is_waiting_deletion_cleanup
from faceblur_operator.stages import Decision
from faceblur_operator.workqueue import Key, ReconcileQueue

log = logging.getLogger(__name__)

TEMPORARY_DELAY_S = 10
MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}

registry = kopf.OperatorRegistry()


class Runtime:
    """What the handlers share, passed to kopf as the memo."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.queue: ReconcileQueue[Decision | None] = ReconcileQueue(reconciler.reconcile)


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The official client's credentials: the pod's ServiceAccount, else KUBECONFIG."""
    return kopf.login_via_client(**kwargs)


def _runtime(memo: Any) -> Runtime:
    runtime = memo.runtime
    assert isinstance(runtime, Runtime)
    return runtime


@kopf.on.resume(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
@kopf.on.create(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
@kopf.on.update(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
async def faceblurjob_changed(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    try:
        decision = await runtime.queue.run(Key(namespace or "", name))
    except Exception as e:
        raise kopf.TemporaryError(f"reconcile failed, retrying: {e}", delay=TEMPORARY_DELAY_S) from e
    if decision is not None and decision.status.reason == Reason.INVALID_SPEC:
        raise kopf.PermanentError(decision.status.message or "invalid spec")


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
async def faceblurjob_event(
    *, type: str, body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    if type != "DELETED":
        return  # creations and changes go to the change handler; status writes are our own
    runtime = _runtime(memo)
    key = Key(namespace or "", name)
    runtime.queue.forget(key)
    runtime.reconciler.metrics.forget(key)
    try:
        await runtime.reconciler.cleanup_after_deletion(dict(body))
    except Exception as e:  # best effort by design: the FaceBlurJob is gone already
        log.warning("%s deleted: could not start the cleanup of its intermediates: %s", key, e)


async def _child_event(annotations: Mapping[str, str], namespace: str | None, memo: Any) -> None:
    owner = annotations.get(ANNOTATION_OWNER)
    if owner and namespace:
        await _runtime(memo).queue.trigger(Key(namespace, owner))


async def _release_deletion_cleanup(labels: Mapping[str, str], namespace: str | None, memo: Any) -> None:
    uid = labels.get(LABEL_JOB_UID)
    if not uid or not namespace:
        return
    try:
        await _runtime(memo).reconciler.release_deletion_cleanup(namespace, uid)
    except Exception as e:  # the next pod or Job event tries again
        log.warning("%s: could not start the cleanup of deleted job %s: %s", namespace, uid, e)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED, registry=registry)
async def job_event(
    *, body: kopf.Body, annotations: Mapping[str, str], labels: Mapping[str, str], namespace: str | None,
    memo: Any, **_: Any,
) -> None:  # fmt: skip
    if is_waiting_deletion_cleanup(body):
        await _release_deletion_cleanup(labels, namespace, memo)
        return
    await _child_event(annotations, namespace, memo)


@kopf.on.event("", "v1", "pods", labels=MANAGED, registry=registry)
async def pod_event(
    *, type: str, annotations: Mapping[str, str], labels: Mapping[str, str], namespace: str | None,
    memo: Any, **_: Any,
) -> None:  # fmt: skip
    if type == "DELETED":
        await _release_deletion_cleanup(labels, namespace, memo)
    await _child_event(annotations, namespace, memo)
