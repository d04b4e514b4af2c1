"""The reconcile decision: what is observed in, the new status and the next actions out. Pure.

Level-based: the status is recomputed from the FaceBlurJob and the state of its Jobs and pods at
every call, so the same observation always gives the same decision and a restarted operator picks
up where the last one stopped. Only three facts come from the previous status: the terminal
phases (Succeeded and Failed stay until a retry), the retry bookkeeping (attempt, token) and the
split's chunk and frame counts (kept in case its pod is gone).

The stages are rows of one table (`STAGES`: the Job each runs, its condition, phases, reasons and
the stage that follows); one step function walks them, so split, work and compose create, wait,
fail and finish the same way. Why a Job failed is `diagnosis`'s, how far it got `progress`'s.

Retry: a Failed job whose `faceblur.dev/retry` annotation changes gets attempt+1. Its failed Jobs
are deleted and recreated under new names (<name>-<stage>-r<N>); Jobs that succeeded are kept, and
the worker skips chunks already published, so only the missing work is redone. After a cleanup
(cleanup: Always), nothing is left to reuse and the retry starts again from the split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from faceblur_operator import diagnosis, progress, verification
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
    VerificationStatus,
)
from faceblur_operator.conditions import set_condition
from faceblur_operator.diagnosis import Failure, plural
from faceblur_operator.naming import ANNOTATION_RETRY, Stage, job_name
from faceblur_operator.plan import JobPlan
from faceblur_operator.views import JobView, PodView, TerminationMessage, parse_indexes, parse_time

RETRY_HINT = f"fix the cause, then set the annotation {ANNOTATION_RETRY} to a new value to retry"


@dataclass(frozen=True)
class Observation:
    """Everything the decision depends on, gathered by the reconciler: the FaceBlurJob's resolved
    plan (what it asks for, with the operator's defaults applied), its last status, Jobs and pods."""

    name: str
    generation: int | None
    status: FaceBlurJobStatus  # as last written
    retry_token: str | None  # the faceblur.dev/retry annotation
    jobs: tuple[JobView, ...]
    pods: tuple[PodView, ...]
    now: str  # RFC 3339, for lastTransitionTime and completionTime
    plan: JobPlan | None = None  # None when the spec cannot be resolved (spec_error says why)
    spec_error: str | None = None  # the spec can never work (invalid, or plan.InvalidSpecError)

    @property
    def cleanup(self) -> CleanupPolicy:
        """Without a plan nothing was created that a cleanup Job could remove."""
        return self.plan.cleanup if self.plan is not None else CleanupPolicy.NEVER


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
    return _Pass(obs, attempt=old.attempt, token=obs.retry_token).run()


# --------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Running:
    """A running stage's reason, status message and condition message (None: the status message)."""

    reason: Reason
    message: str
    tally: str | None = None
    failed_indexes: str | None = None  # chunks out of retries while the rest go on


@dataclass(frozen=True)
class StageRow:
    """One stage: the Job it runs, the condition it owns, what the job shows while the Job waits to
    start and while it runs, and what happens when it completes."""

    stage: Stage  # the Job it runs
    condition: ConditionType  # False while it runs (if `reports`) or when it fails, True when done
    waiting_phase: Phase  # from the Job's creation until it starts
    waiting_reason: Reason | None  # until it starts (None: the running reason)
    phase: Phase  # while it runs
    running: Callable[[_Pass, JobView | None], Running]  # reason and messages while it runs
    done: Callable[[_Pass, JobView], str | None]  # its result recorded: the condition's message, None: failed
    done_reason: Reason  # of the condition when it turns True
    next: Stage | None  # the stage that follows
    reports: bool = True  # the condition is set (False) from the Job's creation on
    indexed: bool = False  # an Indexed Job, one completion per chunk


def _steady(reason: Reason, message: str) -> Callable[[_Pass, JobView | None], Running]:
    """A stage that says the same while it runs."""
    return lambda _run, _job: Running(reason, message)


def _split_done(run: _Pass, split: JobView) -> str | None:
    chunks, frames = run.split_counts(split)
    if chunks is None:
        run.fail(
            ConditionType.SPLIT,
            Reason.RESULT_MISSING,
            f"Job {split.name} succeeded but its pod's result (the termination message) is gone",
        )
        return None
    run.chunks = chunks
    frames_text = f", {plural(frames, 'frame')}" if frames is not None else ""
    return f"{plural(chunks, 'chunk')}{frames_text}"


def _work_running(run: _Pass, work: JobView | None) -> Running:
    """Chunks done out of the total; pod failures the Job is retrying, and chunks out of retries."""
    done = len(parse_indexes(work.completed_indexes)) if work is not None else 0
    total = (work.completions if work is not None else None) or run.chunks
    tally = f"{done}/{total}"
    out_of_retries = (work.failed_indexes if work is not None else "") or None
    if work is None or not work.failed:
        return Running(Reason.PROCESSING, f"{tally} chunks done", tally, out_of_retries)
    text = f"{tally} chunks done; {plural(work.failed, 'pod failure')} so far"
    if out_of_retries:
        text += f", chunks {out_of_retries} out of retries"
    last = diagnosis.last_failure(run.pods_of(work))
    if last is not None:  # why they fail (e.g. out of memory), while the retries still run
        text += f"; the last: {diagnosis.pod_failure_detail(last)}"
    return Running(Reason.CHUNKS_RETRYING, text, tally, out_of_retries)


def _work_done(run: _Pass, work: JobView) -> str:
    total = work.completions or run.chunks
    return f"{total}/{total}"


def _compose_done(run: _Pass, compose: JobView) -> str:
    result = progress.latest_result(run.pods_of(compose), "compose")
    run.composed = result
    plan = run.obs.plan
    run.output = (result.string("output") if result else None) or (plan.output_url if plan else None)
    if result is not None:
        video, sheet = result.string("debug_video"), result.string("contact_sheet")
        run.debug = DebugArtefacts(video=video, contact_sheet=sheet) if video or sheet else None
        run.verification = verification.from_record(result)
    run.record_verification()
    run.completion_time = compose.completion_time or run.obs.now
    run.state(Phase.SUCCEEDED, Reason.SUCCEEDED, f"wrote {run.output}")
    return f"wrote {run.output}"


# Walked in order: a stage whose Job completed hands over to `next`; the first that has not ends the pass.
STAGES: tuple[StageRow, ...] = (
    StageRow(
        stage=Stage.SPLIT,
        condition=ConditionType.SPLIT,
        waiting_phase=Phase.PENDING,
        waiting_reason=Reason.CREATED,
        phase=Phase.SPLITTING,
        running=_steady(Reason.SPLITTING, "cutting the input into chunks"),
        done=_split_done,
        done_reason=Reason.SPLIT_DONE,
        next=Stage.WORK,
    ),
    StageRow(
        stage=Stage.WORK,
        condition=ConditionType.PROCESSED,
        waiting_phase=Phase.PROCESSING,
        waiting_reason=None,
        phase=Phase.PROCESSING,
        running=_work_running,
        done=_work_done,
        done_reason=Reason.CHUNKS_DONE,
        next=Stage.COMPOSE,
        indexed=True,
    ),
    StageRow(
        stage=Stage.COMPOSE,
        condition=ConditionType.COMPLETE,
        waiting_phase=Phase.COMPOSING,
        waiting_reason=None,
        phase=Phase.COMPOSING,
        running=_steady(Reason.COMPOSING, "joining the chunks into the output"),
        done=_compose_done,
        done_reason=Reason.SUCCEEDED,
        next=None,
        reports=False,  # Complete turns True or fails, never False while composing
    ),
)
ROWS: dict[Stage, StageRow] = {row.stage: row for row in STAGES}


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
    run = _Pass(obs, attempt=attempt, token=obs.retry_token, deleted=deleted, fresh=True)
    run.set_condition(ConditionType.FAILED, ConditionStatus.FALSE, Reason.RETRY_REQUESTED, f"retry {attempt}")
    decision = run.run()
    return Decision(
        status=decision.status,
        actions=(*(DeleteJob(j.name) for j in doomed), *decision.actions),
        events=(Event("Normal", Reason.RETRY_REQUESTED, f"retry {attempt}: {restart}"), *decision.events),
        finished_stages=decision.finished_stages,
    )


# ------------------------------------------------------------------------------------------ one pass


def _seconds_between(start: str | None, end: str | None) -> float | None:
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is None or t1 is None:
        return None
    return max(0.0, (t1 - t0).total_seconds())


@dataclass
class _Pass:
    """One walk down the stage table, filling a draft of the status."""

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
    chunks: int | None = None  # the split's chunk count, once it is done
    output: str | None = None
    debug: DebugArtefacts | None = None
    completion_time: str | None = None
    composed: TerminationMessage | None = None  # compose's record
    verification: VerificationStatus | None = None  # what the residual-face check found

    def __post_init__(self) -> None:
        self.conditions = list(self.obs.status.conditions)
        self.jobs = self._current_jobs()

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

    def state(self, phase: Phase, reason: Reason, message: str) -> None:
        self.phase, self.reason, self.message = phase, reason, message

    def fail(self, stage_condition: ConditionType | None, reason: Reason, message: str) -> None:
        self.state(Phase.FAILED, reason, f"{message}; {RETRY_HINT}")
        if stage_condition is not None:
            self.set_condition(stage_condition, ConditionStatus.FALSE, reason, message)
        self.set_condition(ConditionType.FAILED, ConditionStatus.TRUE, reason, message)
        self.completion_time = self.obs.now
        cleanup = _cleanup_action(self.obs, self.attempt)
        if cleanup is not None:
            self.actions.append(cleanup)

    def fail_stage(self, row: StageRow, failure: Failure) -> None:
        if failure.indexes:
            self.failed_indexes = failure.indexes
        self.fail(row.condition, failure.reason, failure.message)

    def run(self) -> Decision:
        if self.obs.spec_error:
            self.fail(None, Reason.INVALID_SPEC, self.obs.spec_error)
            return self.decision()
        row: StageRow | None = STAGES[0]
        while row is not None and self.step(row):
            row = ROWS[row.next] if row.next is not None else None
        return self.decision()

    def step(self, row: StageRow) -> bool:
        """Create, wait for, fail or finish one stage; True when it is done and the next may go."""
        job = self.jobs.get(row.stage)
        if job is None:
            action = CreateJob(row.stage, self.attempt, self.chunks if row.indexed else None)
            self.actions.append(action)
            created = _created_message(action.name(self.obs.name))
            running = row.running(self, None)
            reason = row.waiting_reason or running.reason
            self.state(row.waiting_phase, reason, created)
            if row.reports:
                self.set_condition(row.condition, ConditionStatus.FALSE, reason, running.tally or created)
            return False
        if job.failed_condition:
            self.fail_stage(row, diagnosis.job_failure(job, self.pods_of(job)))
            return False
        if not job.complete:
            final = diagnosis.final_failure(job, self.pods_of(job))
            if final is not None:  # the Job would retry a pod that can never succeed: stop it
                self.fail_stage(row, final)
                self.actions.append(DeleteJob(job.name))
                return False
            self.wait(row, job)
            return False
        message = row.done(self, job)
        if message is None:
            return False
        self.set_condition(row.condition, ConditionStatus.TRUE, row.done_reason, message)
        self.finish_stage(row, job)
        return True

    def wait(self, row: StageRow, job: JobView) -> None:
        """A started or starting Job: why it makes no progress if its pods say so, else how far it is."""
        running = row.running(self, job)
        self.failed_indexes = running.failed_indexes
        reason, message = running.reason, running.message
        queue = self.obs.plan.queue_name if self.obs.plan else None
        stalled = diagnosis.stalled(job, self.pods_of(job), queue)
        if stalled is not None:
            reason, message = stalled
        elif not job.started:
            reason = row.waiting_reason or running.reason
            message = _created_message(job.name)
        self.state(row.phase if job.started else row.waiting_phase, reason, message)
        if row.reports:
            self.set_condition(row.condition, ConditionStatus.FALSE, reason, running.tally or message)

    def finish_stage(self, row: StageRow, job: JobView) -> None:
        """Record a stage's duration the first time its condition turns True."""
        previous = self.obs.status.condition(row.condition)
        if previous is None or previous.status != ConditionStatus.TRUE:
            seconds = _seconds_between(job.start_time, job.completion_time)
            if seconds is not None:
                self.finished.append((row.stage, seconds))

    def record_verification(self) -> None:
        """The Verified condition from the check's result; a Warning Event the first time it finds faces."""
        status, reason, message = verification.condition(self.verification)
        before = self.obs.status.condition(ConditionType.VERIFIED)
        self.set_condition(ConditionType.VERIFIED, status, reason, message)
        if reason == Reason.RESIDUAL_FACES and (before is None or before.reason != reason):
            self.events.append(Event("Warning", reason, message))

    def split_counts(self, split: JobView) -> tuple[int | None, int | None]:
        return progress.split_counts(self.pods_of(split), self.jobs.get(Stage.WORK), self.obs.status.progress)

    # -- the result

    def progress(self) -> Progress:
        old = self.obs.status.progress
        split = self.jobs.get(Stage.SPLIT)
        if split is not None and split.complete:
            totals = self.split_counts(split)
        elif old is not None and not self.fresh:
            totals = (old.chunks_total, old.frames_total)
        else:
            totals = (None, None)
        return progress.progress(totals, self.jobs.get(Stage.WORK), self.obs.pods, self.composed)

    def decision(self) -> Decision:
        old, plan = self.obs.status, self.obs.plan
        jobs = self.jobs

        def name(stage: Stage) -> str | None:
            return jobs[stage].name if stage in jobs else _created(self.actions, stage, self.obs.name)

        names = StageJobs(
            split=name(Stage.SPLIT),
            work=name(Stage.WORK),
            compose=name(Stage.COMPOSE),
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
            input=plan.input_url if plan else None,
            output=self.output or (plan.output_url if plan else None),
            intermediates=plan.job_url if plan else None,
            debug=self.debug,
            verification=self.verification,
            failed_indexes=self.failed_indexes,
            jobs=names,
            attempt=self.attempt,
            retry_token=self.token,
        )
        events = list(self.events)
        if (self.phase, self.reason) != (old.phase, old.reason) and self.reason != Reason.CREATED:
            warning = self.phase == Phase.FAILED or self.reason in diagnosis.WARNING_REASONS
            events.append(Event("Warning" if warning else "Normal", self.reason, self.message))
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
