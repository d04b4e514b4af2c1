"""One reconcile pass: read the FaceBlurJob and its Jobs and pods, decide, act, write the status.

The only I/O layer of the operator's logic: `stages.decide` chooses, the builders build, this
module reads and writes. Reads are fresh from the API server (no cache can be staler than the
status it decides from), the status is written with a resourceVersion precondition (a conflict
re-reads and decides again), and transition Events are posted only after the status is written.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from faceblur_operator.api import (
    CleanupPolicy,
    FaceBlurJobSpec,
    FaceBlurJobStatus,
    Phase,
    Reason,
    parse_spec,
    parse_status,
)
from faceblur_operator.builders import (
    Manifest,
    build_cleanup_job,
    build_compose_job,
    build_deletion_cleanup_job,
    build_split_job,
    build_worker_job,
)
from faceblur_operator.kube import ConflictError, KubeClient, merge_patch
from faceblur_operator.metrics import Metrics
from faceblur_operator.naming import ANNOTATION_RETRY, LABEL_STAGE, Stage, children_selector
from faceblur_operator.plan import InvalidSpecError, JobPlan, Owner, resolve
from faceblur_operator.settings import OperatorConfig
from faceblur_operator.stages import CreateJob, Decision, DeleteJob, Event, Observation, decide
from faceblur_operator.views import job_view, pod_view
from faceblur_operator.workqueue import Key

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 5
API_THREADS = 16

T = TypeVar("T")
EventPoster = Callable[[Mapping[str, Any], Event], None]


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _first_error(e: ValidationError) -> str:
    first = e.errors()[0]
    return f"spec.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def build_job(action: CreateJob, plan: JobPlan) -> Manifest:
    if action.stage == Stage.SPLIT:
        return build_split_job(plan, action.attempt)
    if action.stage == Stage.WORK:
        if action.chunks is None:
            raise ValueError("a worker Job needs the number of chunks")
        return build_worker_job(plan, action.chunks, action.attempt, action.input_bytes)
    if action.stage == Stage.COMPOSE:
        return build_compose_job(plan, action.attempt, action.input_bytes)
    return build_cleanup_job(plan, action.attempt)


class Reconciler:
    def __init__(
        self,
        config: OperatorConfig,
        kube: KubeClient,
        metrics: Metrics,
        post_event: EventPoster,
        clock: Callable[[], str] = now_rfc3339,
    ) -> None:
        self.config = config
        self.kube = kube
        self.metrics = metrics
        self.post_event = post_event
        self.clock = clock
        self.executor = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))

    def plan(self, body: Mapping[str, Any]) -> tuple[FaceBlurJobSpec | None, JobPlan | None, str | None]:
        """The spec, the resolved plan, or why there can be none."""
        meta = body["metadata"]
        try:
            spec = parse_spec(body.get("spec"))
        except ValidationError as e:
            return None, None, _first_error(e)
        try:
            return spec, resolve(spec, Owner(meta["name"], meta["namespace"], meta["uid"]), self.config), None
        except InvalidSpecError as e:
            return spec, None, str(e)

    async def reconcile(self, key: Key) -> Decision | None:
        for _ in range(CONFLICT_RETRIES):
            try:
                decision = await self._pass(key)
            except ConflictError:
                self.metrics.reconciles.labels(result="conflict").inc()
                continue
            except Exception:
                self.metrics.reconciles.labels(result="error").inc()
                raise
            self.metrics.reconciles.labels(result="ok").inc()
            return decision
        raise ConflictError(f"{key} kept changing during {CONFLICT_RETRIES} reconciles")

    async def _pass(self, key: Key) -> Decision | None:
        body = await self._call(self.kube.get_faceblurjob, key.namespace, key.name)
        if body is None:
            self.metrics.forget(key)
            return None
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            return None  # garbage collection removes the Jobs; nothing left to decide
        try:
            old = parse_status(body.get("status"))
        except ValidationError as e:
            log.warning("%s: unreadable status, recomputing it from the Jobs: %s", key, e)
            old = FaceBlurJobStatus()
        _, plan, spec_error = self.plan(body)
        selector = children_selector(meta["uid"])
        jobs, pods = await asyncio.gather(
            self._call(self.kube.list_jobs, key.namespace, selector),
            self._call(self.kube.list_pods, key.namespace, selector),
        )
        decision = decide(
            Observation(
                name=key.name,
                generation=meta.get("generation"),
                status=old,
                retry_token=(meta.get("annotations") or {}).get(ANNOTATION_RETRY),
                jobs=tuple(job_view(j) for j in jobs),
                pods=tuple(pod_view(p) for p in pods),
                now=self.clock(),
                plan=plan,
                spec_error=spec_error,
            )
        )
        await self._apply(key, body, decision, plan)
        await self._write_status(key, body, old, decision)
        return decision

    async def _apply(
        self, key: Key, body: Mapping[str, Any], decision: Decision, plan: JobPlan | None
    ) -> None:
        """Delete, then create; each Job actually created is reported at once (a conflict on the
        status write that follows must not lose that Event)."""
        for action in decision.actions:
            if isinstance(action, DeleteJob):
                log.info("%s: deleting Job %s", key, action.name)
                await self._call(self.kube.delete_job, key.namespace, action.name)
            elif plan is None:
                log.warning("%s: cannot create a %s Job without a valid spec", key, action.stage.value)
            else:
                manifest = build_job(action, plan)
                name = manifest["metadata"]["name"]
                if await self._call(self.kube.create_job, manifest):
                    log.info("%s: created Job %s", key, name)
                    self.post_event(body, Event("Normal", Reason.CREATED, f"created Job {name}"))
                else:
                    log.info("%s: Job %s already exists", key, name)

    async def _write_status(
        self, key: Key, body: Mapping[str, Any], old: FaceBlurJobStatus, decision: Decision
    ) -> None:
        new = decision.status
        patch = merge_patch(body.get("status") or {}, new.to_dict())
        if not patch:
            self.metrics.seen(key, new.phase)
            return
        meta = body["metadata"]
        await self._call(self.kube.patch_status, key.namespace, key.name, meta["resourceVersion"], patch)
        if new.phase != old.phase:
            log.info("%s: %s -> %s (%s) %s", key, old.phase, new.phase, new.reason, new.message)
        self.metrics.observe(key, old, new, decision.finished_stages)
        for event in decision.events:
            self.post_event(body, event)

    async def cleanup_after_deletion(self, body: Mapping[str, Any]) -> str | None:
        """Best effort, for a FaceBlurJob just deleted: remove the intermediates it may have left.

        The cleanup Job is created suspended and starts once the job's pods are gone
        (`release_deletion_cleanup`): a worker still terminating would write after it otherwise.
        No finalizer holds the object, so a deletion while the operator is down skips this; the
        intermediates then stay under the job's prefix (see operator/README.md)."""
        spec, plan, _ = self.plan(body)
        try:
            status = parse_status(body.get("status"))
        except ValidationError:
            return None
        if spec is None or plan is None or spec.cleanup == CleanupPolicy.NEVER:
            return None
        started = status.jobs is not None and status.jobs.split is not None
        cleaned = status.phase == Phase.SUCCEEDED or (
            status.jobs is not None and status.jobs.cleanup is not None
        )
        if not started or cleaned:
            return None
        manifest = build_deletion_cleanup_job(plan)
        if await self._call(self.kube.create_job, manifest):
            name = manifest["metadata"]["name"]
            log.info("%s/%s deleted: created Job %s to remove %s once its pods are gone",
                     plan.owner.namespace, plan.owner.name, name, plan.job_url)  # fmt: skip
        await self.release_deletion_cleanup(plan.owner.namespace, plan.owner.uid)
        return str(manifest["metadata"]["name"])

    async def release_deletion_cleanup(self, namespace: str, uid: str) -> bool:
        """Resume a deleted FaceBlurJob's suspended cleanup Job once no other pod of it is left (the
        garbage collector deletes its Jobs and pods; a pod is listed until it has stopped). Called on
        every pod deletion and cleanup Job event: level-based, nothing waits. True if resumed."""
        selector = children_selector(uid)
        jobs = await self._call(self.kube.list_jobs, namespace, selector)
        waiting = [j["metadata"]["name"] for j in jobs if is_waiting_deletion_cleanup(j)]
        if not waiting:
            return False
        pods = await self._call(self.kube.list_pods, namespace, selector)
        if any(p["metadata"].get("labels", {}).get(LABEL_STAGE) != Stage.CLEANUP.value for p in pods):
            return False
        for name in waiting:
            await self._call(self.kube.resume_job, namespace, name)
            log.info("%s/%s: the deleted job's pods are gone, cleanup started", namespace, name)
        return True

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def is_waiting_deletion_cleanup(job: Mapping[str, Any]) -> bool:
    """A deleted FaceBlurJob's cleanup Job (unowned), still suspended until the job's pods are gone."""
    meta = job.get("metadata", {})
    return (
        meta.get("labels", {}).get(LABEL_STAGE) == Stage.CLEANUP.value
        and not meta.get("ownerReferences")
        and bool(job.get("spec", {}).get("suspend"))
    )
