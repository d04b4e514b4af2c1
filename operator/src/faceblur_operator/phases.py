"""The reconcile decision: what is observed in, the new status and the next actions out. Pure.

Level-based: the status is recomputed from the FaceBlurJob and the state of its Jobs and pods at
every call, so the same observation always gives the same decision and a restarted operator picks
up where the last one stopped. Only three facts come from the previous status: the terminal
phases (Succeeded and Failed stay until a retry), the retry bookkeeping (attempt, token) and the
split's chunk and frame counts (kept in case its pod is gone).

Retry: a Failed job whose `faceblur.dev/retry` annotation changes gets attempt+1. Its failed Jobs
are deleted and recreated under new names (<name>-<stage>-r<N>); Jobs that succeeded are kept, and
the worker skips chunks already published, so only the missing work is redone. After a cleanup
(cleanup: Always), nothing is left to reuse and the retry starts again from the split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from faceblur_contract.exits import PERMANENT_EXIT_CODES, WorkerReason

from faceblur_operator.api import (
    CleanupPolicy,
    Condition,
    ConditionStatus,
    ConditionType,
    DebugArtefacts,
    FaceBlurJobStatus,
    Phase,
    Progress,
    Reason,
    StageJobs,
)
from faceblur_operator.conditions import set_condition
from faceblur_operator.naming import ANNOTATION_RETRY, Stage, job_name
from faceblur_operator.views import JobView, PodView, TerminationMessage, format_indexes, parse_indexes

WORKER_REASONS: dict[str, Reason] = {
    WorkerReason.INVALID_INPUT: Reason.INVALID_INPUT,
    WorkerReason.STORAGE: Reason.STORAGE_ERROR,
    WorkerReason.MODEL: Reason.MODEL_ERROR,
    WorkerReason.INTERNAL: Reason.INTERNAL_ERROR,
}
WAITING_REASONS = {
    "ImagePullBackOff": Reason.IMAGE_PULL_FAILED,
    "ErrImagePull": Reason.IMAGE_PULL_FAILED,
    "InvalidImageName": Reason.IMAGE_PULL_FAILED,
    "CreateContainerConfigError": Reason.CONFIG_ERROR,
    "CreateContainerError": Reason.CONFIG_ERROR,
}
PERMANENT_CODES = frozenset(int(code) for code in PERMANENT_EXIT_CODES)
RETRY_HINT = f"fix the cause, then set the annotation {ANNOTATION_RETRY} to a new value to retry"


@dataclass(frozen=True)
class Observation:
    """Everything the decision depends on, gathered by the handlers."""

    name: str
    generation: int | None
    status: FaceBlurJobStatus  # as last written
    retry_token: str | None  # the faceblur.dev/retry annotation
    jobs: tuple[JobView, ...]
    pods: tuple[PodView, ...]
    now: str  # RFC 3339, for lastTransitionTime and completionTime
    input_url: str | None = None
    output_url: str | None = None
    job_url: str | None = None
    spec_error: str | None = None  # the spec can never work (plan.InvalidSpecError)
    cleanup: CleanupPolicy = CleanupPolicy.ON_SUCCESS
    queue_name: str | None = None


@dataclass(frozen=True)
class CreateJob:
    stage: Stage
    attempt: int
    chunks: int | None = None  # for the worker Job

    def name(self, owner: str) -> str:
        return job_name(owner, self.stage, self.attempt)


@dataclass(frozen=True)
class DeleteJob:
    name: str


Action = CreateJob | DeleteJob


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: Reason
    message: str


@dataclass(frozen=True)
class Decision:
    """The status to write, then the actions to take. Events are posted once the status is written;
    the apply layer adds one for each Job it actually creates."""

    status: FaceBlurJobStatus
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    finished_stages: tuple[tuple[Stage, float], ...] = ()  # stages that completed now, with seconds taken


def decide(obs: Observation) -> Decision:
    old = obs.status
    if old.phase == Phase.FAILED and obs.retry_token is not None and obs.retry_token != old.retry_token:
        return _retry(obs)
    if old.phase == Phase.SUCCEEDED:
        return Decision(status=old)
    if old.phase == Phase.FAILED:
        return _stay_failed(obs)
    return _Flow(obs, attempt=old.attempt, token=obs.retry_token).run()


# ------------------------------------------------------------------------------------ terminal states


def _stay_failed(obs: Observation) -> Decision:
    """Failed is sticky; with cleanup: Always the intermediates go (once)."""
    old = obs.status
    cleanup = _cleanup_action(obs, old.attempt)
    if cleanup is None:
        return Decision(status=old)
    jobs = (old.jobs or StageJobs()).model_copy(update={"cleanup": cleanup.name(obs.name)})
    return Decision(status=old.model_copy(update={"jobs": jobs}), actions=(cleanup,))


def _cleanup_action(obs: Observation, attempt: int) -> CreateJob | None:
    if obs.cleanup != CleanupPolicy.ALWAYS or any(j.stage == Stage.CLEANUP for j in obs.jobs):
        return None
    return CreateJob(Stage.CLEANUP, attempt)


def _retry(obs: Observation) -> Decision:
    old = obs.status
    attempt = old.attempt + 1
    cleaned = any(j.stage == Stage.CLEANUP for j in obs.jobs)
    doomed = [j for j in obs.jobs if not j.deleting and (cleaned or j.failed_condition)]
    deleted = frozenset(j.name for j in doomed)
    restart = "from the split (intermediates were removed)" if cleaned else "redoing what failed"
    flow = _Flow(obs, attempt=attempt, token=obs.retry_token, deleted=deleted, fresh=True)
    flow.set_condition(
        ConditionType.FAILED, ConditionStatus.FALSE, Reason.RETRY_REQUESTED, f"retry {attempt}"
    )
    decision = flow.run()
    return Decision(
        status=decision.status,
        actions=(*(DeleteJob(j.name) for j in doomed), *decision.actions),
        events=(Event("Normal", Reason.RETRY_REQUESTED, f"retry {attempt}: {restart}"), *decision.events),
        finished_stages=decision.finished_stages,
    )


# ------------------------------------------------------------------------------------------ the flow


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (t1 - t0).total_seconds())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class _Flow:
    """One pass over split -> work -> compose, filling a draft of the status."""

    obs: Observation
    attempt: int
    token: str | None
    deleted: frozenset[str] = frozenset()
    fresh: bool = False  # a retry: the previous failure does not carry over
    phase: Phase = Phase.PENDING
    reason: Reason = Reason.CREATED
    message: str = ""
    conditions: list[Condition] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    finished: list[tuple[Stage, float]] = field(default_factory=list)
    failed_indexes: str | None = None
    output: str | None = None
    debug: DebugArtefacts | None = None
    completion_time: str | None = None
    faces_result: int | None = None
    frames_result: int | None = None

    def __post_init__(self) -> None:
        self.conditions = list(self.obs.status.conditions)
        self.jobs = self._current_jobs()

    # -- helpers

    def _current_jobs(self) -> dict[Stage, JobView]:
        """Per stage, the Job of this attempt, or one that succeeded in an earlier attempt."""
        chosen: dict[Stage, JobView] = {}
        for job in self.obs.jobs:
            if job.stage is None or job.deleting or job.name in self.deleted:
                continue
            if job.attempt != self.attempt and not job.complete:
                continue
            best = chosen.get(job.stage)
            if best is None or job.attempt > best.attempt:
                chosen[job.stage] = job
        return chosen

    def pods_of(self, job: JobView) -> list[PodView]:
        return [p for p in self.obs.pods if p.job_uid == job.uid]

    def set_condition(
        self, kind: ConditionType, status: ConditionStatus, reason: Reason, message: str
    ) -> None:
        self.conditions = set_condition(
            self.conditions, kind, status, reason, message, now=self.obs.now, generation=self.obs.generation
        )

    def create(self, stage: Stage, chunks: int | None = None) -> str:
        action = CreateJob(stage, self.attempt, chunks)
        self.actions.append(action)
        return action.name(self.obs.name)

    def state(self, phase: Phase, reason: Reason, message: str) -> None:
        self.phase, self.reason, self.message = phase, reason, message

    def fail_now(self, job: JobView, stage: Stage, kind: ConditionType) -> bool:
        """A pod of `job` failed for good (the worker's record says so, e.g. a missing input object)
        while the Job would still retry it: fail the stage now and delete the Job to stop the retries."""
        found = self.final_failure(job, stage)
        if found is None:
            return False
        reason, message, indexes = found
        if indexes:
            self.failed_indexes = indexes
        self.fail(kind, reason, message)
        self.actions.append(DeleteJob(job.name))
        return True

    def fail(self, stage_condition: ConditionType | None, reason: Reason, message: str) -> None:
        self.state(Phase.FAILED, reason, f"{message}; {RETRY_HINT}")
        if stage_condition is not None:
            self.set_condition(stage_condition, ConditionStatus.FALSE, reason, message)
        self.set_condition(ConditionType.FAILED, ConditionStatus.TRUE, reason, message)
        self.completion_time = self.obs.now
        cleanup = _cleanup_action(self.obs, self.attempt)
        if cleanup is not None:
            self.actions.append(cleanup)

    def finish_stage(self, stage: Stage, job: JobView, kind: ConditionType) -> None:
        """Record a stage's duration the first time its condition turns True."""
        previous = self.obs.status.condition(kind)
        if previous is None or previous.status != ConditionStatus.TRUE:
            seconds = _seconds_between(job.start_time, job.completion_time)
            if seconds is not None:
                self.finished.append((stage, seconds))

    def waiting(self, job: JobView, running: Reason, running_message: str) -> tuple[Reason, str]:
        """Why a started Job makes no progress, if its pods say so; else the running reason."""
        if job.suspended:
            queue = self.obs.queue_name
            where = f"Kueue queue {queue}" if queue else "its suspension to be lifted"
            return Reason.QUEUED, f"Job {job.name} waits for {where}"
        for pod in self.pods_of(job):
            if pod.phase != "Pending":
                continue
            if pod.unschedulable:
                return Reason.UNSCHEDULABLE, f"pod {pod.name} cannot be scheduled: {pod.unschedulable}"
            if pod.waiting_reason in WAITING_REASONS:
                detail = pod.waiting_message or pod.waiting_reason
                return WAITING_REASONS[pod.waiting_reason], f"pod {pod.name}: {detail}"
        if not job.started:
            return (Reason.CREATED if job.stage == Stage.SPLIT else running), _created_message(job.name)
        return running, running_message

    # -- the stages

    def run(self) -> Decision:
        if self.obs.spec_error:
            self.fail(None, Reason.INVALID_SPEC, self.obs.spec_error)
        else:
            self.split_stage()
        return self.decision()

    def split_stage(self) -> None:
        split = self.jobs.get(Stage.SPLIT)
        if split is None:
            name = self.create(Stage.SPLIT)
            self.state(Phase.PENDING, Reason.CREATED, _created_message(name))
            self.set_condition(
                ConditionType.SPLIT, ConditionStatus.FALSE, Reason.CREATED, _created_message(name)
            )
            return
        if split.failed_condition:
            reason, message, _ = self.failure(split, Stage.SPLIT)
            self.fail(ConditionType.SPLIT, reason, message)
            return
        if not split.complete and self.fail_now(split, Stage.SPLIT, ConditionType.SPLIT):
            return
        if not split.complete:
            reason, message = self.waiting(split, Reason.SPLITTING, "cutting the input into chunks")
            self.state(Phase.SPLITTING if split.started else Phase.PENDING, reason, message)
            self.set_condition(ConditionType.SPLIT, ConditionStatus.FALSE, reason, message)
            return
        chunks, frames = self.split_counts(split)
        if chunks is None:
            self.fail(
                ConditionType.SPLIT,
                Reason.RESULT_MISSING,
                f"Job {split.name} succeeded but its pod's result (the termination message) is gone",
            )
            return
        frames_text = f", {_plural(frames, 'frame')}" if frames is not None else ""
        self.set_condition(
            ConditionType.SPLIT,
            ConditionStatus.TRUE,
            Reason.SPLIT_DONE,
            f"{_plural(chunks, 'chunk')}{frames_text}",
        )
        self.finish_stage(Stage.SPLIT, split, ConditionType.SPLIT)
        self.work_stage(chunks)

    def work_stage(self, chunks: int) -> None:
        work = self.jobs.get(Stage.WORK)
        if work is None:
            name = self.create(Stage.WORK, chunks)
            self.state(Phase.PROCESSING, Reason.PROCESSING, _created_message(name))
            self.set_condition(
                ConditionType.PROCESSED, ConditionStatus.FALSE, Reason.PROCESSING, f"0/{chunks}"
            )
            return
        if work.failed_condition:
            reason, message, indexes = self.failure(work, Stage.WORK)
            self.failed_indexes = indexes or None
            self.fail(ConditionType.PROCESSED, reason, message)
            return
        done = len(parse_indexes(work.completed_indexes))
        total = work.completions or chunks
        if not work.complete and self.fail_now(work, Stage.WORK, ConditionType.PROCESSED):
            return
        if not work.complete:
            failed_so_far = work.failed_indexes or None
            running, text = Reason.PROCESSING, f"{done}/{total} chunks done"
            if work.failed:
                running = Reason.CHUNKS_RETRYING
                text += f"; {_plural(work.failed, 'pod failure')} so far"
                if failed_so_far:
                    text += f", chunks {failed_so_far} out of retries"
            self.failed_indexes = failed_so_far
            reason, message = self.waiting(work, running, text)
            self.state(Phase.PROCESSING, reason, message)
            self.set_condition(ConditionType.PROCESSED, ConditionStatus.FALSE, reason, f"{done}/{total}")
            return
        self.set_condition(
            ConditionType.PROCESSED, ConditionStatus.TRUE, Reason.CHUNKS_DONE, f"{total}/{total}"
        )
        self.finish_stage(Stage.WORK, work, ConditionType.PROCESSED)
        self.compose_stage()

    def compose_stage(self) -> None:
        compose = self.jobs.get(Stage.COMPOSE)
        if compose is None:
            name = self.create(Stage.COMPOSE)
            self.state(Phase.COMPOSING, Reason.COMPOSING, _created_message(name))
            return
        if compose.failed_condition:
            reason, message, _ = self.failure(compose, Stage.COMPOSE)
            self.fail(ConditionType.COMPLETE, reason, message)
            return
        if not compose.complete and self.fail_now(compose, Stage.COMPOSE, ConditionType.COMPLETE):
            return
        if not compose.complete:
            reason, message = self.waiting(compose, Reason.COMPOSING, "joining the chunks into the output")
            self.state(Phase.COMPOSING, reason, message)
            return
        result = self.latest_result(compose, "compose")
        self.output = (result.string("output") if result else None) or self.obs.output_url
        if result is not None:
            self.faces_result = result.integer("faces")
            self.frames_result = result.integer("frames")
            video, sheet = result.string("debug_video"), result.string("contact_sheet")
            self.debug = DebugArtefacts(video=video, contact_sheet=sheet) if video or sheet else None
        self.completion_time = compose.completion_time or self.obs.now
        self.state(Phase.SUCCEEDED, Reason.SUCCEEDED, f"wrote {self.output}")
        self.set_condition(
            ConditionType.COMPLETE, ConditionStatus.TRUE, Reason.SUCCEEDED, f"wrote {self.output}"
        )
        self.finish_stage(Stage.COMPOSE, compose, ConditionType.COMPLETE)

    # -- reading results

    def latest_result(self, job: JobView, stage: str) -> TerminationMessage | None:
        """The result line of the Job's last succeeded pod."""
        pods = [p for p in self.pods_of(job) if p.phase == "Succeeded" and p.result is not None]
        pods.sort(key=lambda p: p.created or "")
        for pod in reversed(pods):
            assert pod.result is not None
            if pod.result.data.get("stage", stage) == stage:
                return pod.result
        return None

    def split_counts(self, split: JobView) -> tuple[int | None, int | None]:
        old = self.obs.status.progress
        result = self.latest_result(split, "split")
        chunks = result.integer("chunks") if result else None
        frames = result.integer("frames") if result else None
        work = self.jobs.get(Stage.WORK)
        if chunks is None and work is not None:
            chunks = work.completions
        if chunks is None and old is not None:
            chunks = old.chunks_total
        if frames is None and old is not None:
            frames = old.frames_total
        return chunks, frames

    def final_failure(self, job: JobView, stage: Stage) -> tuple[Reason, str, str] | None:
        """Reason, message and indexes of the pods that failed for good, if any. Pods that exited with
        a permanent code are left to the Job's podFailurePolicy, which fails the Job itself."""
        final = [
            p
            for p in self.pods_of(job)
            if p.phase == "Failed"
            and p.result is not None
            and p.result.final
            and p.exit_code not in PERMANENT_CODES
        ]
        if not final:
            return None
        final.sort(key=lambda p: p.created or "")
        detail = _pod_failure_detail(final[-1])
        reason = _worker_reason(final[-1]) or Reason.JOB_FAILED
        if stage != Stage.WORK:
            return reason, f"{stage.value} failed: {detail}", ""
        indexes = sorted({p.index for p in final if p.index is not None})
        listed = format_indexes(indexes)
        where = f"chunk {listed}" if len(indexes) == 1 else f"chunks {listed}" if indexes else "a chunk"
        return reason, f"{where} failed: {detail}", listed

    def failure(self, job: JobView, stage: Stage) -> tuple[Reason, str, str]:
        """Reason, message and failed indexes of a failed Job, from its pods' results."""
        failed = [p for p in self.pods_of(job) if p.phase == "Failed"]
        failed.sort(key=lambda p: p.created or "")
        if job.failure_reason == "DeadlineExceeded":
            return (
                Reason.DEADLINE_EXCEEDED,
                f"Job {job.name}: {job.failure_message or 'deadline exceeded'}",
                "",
            )
        indexes = parse_indexes(job.failed_indexes) if stage == Stage.WORK else []
        if job.failure_reason == "PodFailurePolicy":  # permanent exit codes: every pod that had one
            permanent = [p for p in failed if p.exit_code in PERMANENT_CODES]
            culprit = permanent[-1] if permanent else None
            indexes = sorted({*indexes, *(p.index for p in permanent if p.index is not None)})
        else:
            culprit = next((p for p in reversed(failed) if indexes and p.index in indexes), None)
            culprit = culprit or (failed[-1] if failed else None)
        detail = _pod_failure_detail(culprit) if culprit else (job.failure_message or "failed")
        worker_reason = _worker_reason(culprit)
        if stage != Stage.WORK:
            return worker_reason or Reason.JOB_FAILED, f"{stage.value} failed: {detail}", ""
        listed = format_indexes(indexes)
        where = f"chunk {listed}" if len(indexes) == 1 else f"chunks {listed}" if indexes else "a chunk"
        if job.failure_reason == "PodFailurePolicy":
            return worker_reason or Reason.CHUNK_FAILED, f"{where} failed: {detail}", listed
        tries = len([p for p in failed if p.index in indexes]) if indexes else job.failed
        attempts = f" after {_plural(tries, 'failed attempt')}" if tries else ""
        return Reason.CHUNK_FAILED, f"{where} failed{attempts}: {detail}", listed

    # -- the result

    def progress(self) -> Progress:
        old = self.obs.status.progress
        split = self.jobs.get(Stage.SPLIT)
        work = self.jobs.get(Stage.WORK)
        chunks_total, frames_total = (
            self.split_counts(split)
            if split is not None and split.complete
            else (
                (old.chunks_total, old.frames_total) if old is not None and not self.fresh else (None, None)
            )
        )
        completed = sorted(set(parse_indexes(work.completed_indexes))) if work is not None else []
        per_index = self.chunk_results(work) if work is not None else {}
        faces = sum(r.integer("faces") or 0 for i, r in per_index.items() if i in completed)
        frames = sum(r.integer("frames") or 0 for i, r in per_index.items() if i in completed)
        if self.faces_result is not None:
            faces = self.faces_result
        if self.frames_result is not None:
            frames = self.frames_result
        shown_total = chunks_total if chunks_total is not None else "?"
        return Progress(
            chunks=f"{len(completed)}/{shown_total}",
            chunks_total=chunks_total,
            chunks_completed=len(completed),
            frames_total=frames_total,
            frames_processed=frames,
            faces_found=faces,
        )

    def chunk_results(self, work: JobView) -> dict[int, TerminationMessage]:
        """Per index, the result of a succeeded process pod: this Job's first, then earlier attempts'."""
        results: dict[int, TerminationMessage] = {}
        current = [p for p in self.obs.pods if p.job_uid == work.uid]
        others = [p for p in self.obs.pods if p.job_uid != work.uid]
        for pod in _succeeded_with_result(current) + _succeeded_with_result(others):
            if (
                pod.index is not None
                and pod.result is not None
                and pod.index not in results
                and pod.result.data.get("stage", "process") == "process"
            ):
                results[pod.index] = pod.result
        return results

    def decision(self) -> Decision:
        old = self.obs.status
        jobs = self.jobs
        names = StageJobs(
            split=jobs[Stage.SPLIT].name
            if Stage.SPLIT in jobs
            else _created(self.actions, Stage.SPLIT, self.obs.name),
            work=jobs[Stage.WORK].name
            if Stage.WORK in jobs
            else _created(self.actions, Stage.WORK, self.obs.name),
            compose=jobs[Stage.COMPOSE].name
            if Stage.COMPOSE in jobs
            else _created(self.actions, Stage.COMPOSE, self.obs.name),
            cleanup=_created(self.actions, Stage.CLEANUP, self.obs.name),
        )
        starts = [j.start_time for j in jobs.values() if j.start_time]
        start_time = (
            old.start_time if old.start_time and not self.fresh else (min(starts) if starts else None)
        )
        status = FaceBlurJobStatus(
            phase=self.phase,
            reason=self.reason,
            message=self.message,
            observed_generation=self.obs.generation,
            conditions=self.conditions,
            progress=self.progress(),
            start_time=start_time or old.start_time,
            completion_time=self.completion_time,
            input=self.obs.input_url,
            output=self.output or self.obs.output_url,
            intermediates=self.obs.job_url,
            debug=self.debug,
            failed_indexes=self.failed_indexes,
            jobs=names,
            attempt=self.attempt,
            retry_token=self.token,
        )
        events = list(self.events)
        if (self.phase, self.reason) != (old.phase, old.reason) and self.reason not in (Reason.CREATED,):
            kind: Literal["Normal", "Warning"] = (
                "Warning"
                if self.phase == Phase.FAILED
                or self.reason
                in (
                    Reason.UNSCHEDULABLE,
                    Reason.IMAGE_PULL_FAILED,
                    Reason.CONFIG_ERROR,
                    Reason.CHUNKS_RETRYING,
                )
                else "Normal"
            )
            events.append(Event(kind, self.reason, self.message))
        return Decision(
            status=status,
            actions=tuple(self.actions),
            events=tuple(events),
            finished_stages=tuple(self.finished),
        )


def _created_message(name: str) -> str:
    return f"Job {name} created, waiting for it to start"


def _created(actions: Iterable[Action], stage: Stage, owner: str) -> str | None:
    return next((a.name(owner) for a in actions if isinstance(a, CreateJob) and a.stage == stage), None)


def _succeeded_with_result(pods: list[PodView]) -> list[PodView]:
    return sorted(
        (p for p in pods if p.phase == "Succeeded" and p.result is not None),
        key=lambda p: p.created or "",
        reverse=True,
    )


def _worker_reason(pod: PodView | None) -> Reason | None:
    if pod is None or pod.result is None or pod.result.reason is None:
        return None
    return WORKER_REASONS.get(pod.result.reason)


def _pod_failure_detail(pod: PodView) -> str:
    if pod.terminated_reason == "OOMKilled":
        return f"pod {pod.name} ran out of memory (OOMKilled): raise spec.resources.limits.memory"
    summary = pod.result.summary if pod.result else ""
    code = f" (exit code {pod.exit_code})" if pod.exit_code is not None else ""
    return f"{summary}{code}" if summary else f"pod {pod.name} failed{code}"
