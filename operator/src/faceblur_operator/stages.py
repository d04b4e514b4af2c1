"""The reconcile decision: what is observed in, the new status and the next actions out. Pure.

Level-based: the status is recomputed from the FaceBlurJob and the state of its Jobs and pods at
every call, so the same observation always gives the same decision and a restarted operator picks
up where the last one stopped. Only three facts come from the previous status: the terminal
phases (Succeeded and Failed stay until a retry), the retry bookkeeping (attempt, token) and the
split's chunk and frame counts (kept in case its pod is gone).

The stages are rows of one table (`STAGES`: the Job each runs, its condition, phases, reasons and
the stage that follows); one step function walks them, so split, work and compose create, wait,
fail and finish the same way. A step and a row's callbacks change nothing: each returns what it
decides (an `Outcome`: the phase, conditions to set, Jobs to create or delete, what the stage
produced), and the pass applies the outcomes in one place, `_Pass.decision`. Why a Job failed is
`diagnosis`'s, how far it got `progress`'s.

Retry: a Failed job whose `faceblur.dev/retry` annotation changes gets attempt+1. Its failed Jobs
are deleted and recreated under new names (<name>-<stage>-r<N>); Jobs that succeeded are kept, and
the worker skips chunks already published, so only the missing work is redone. After a cleanup
(cleanup: Always), nothing is left to reuse and the retry starts again from the split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal, TypeVar

from faceblur_contract.pods import index_count

from faceblur_operator import diagnosis, progress, scratch, verification
from faceblur_operator.api import (
    CleanupPolicy,
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
from faceblur_operator.conditions import readiness, set_condition
from faceblur_operator.diagnosis import Failure, plural
from faceblur_operator.naming import ANNOTATION_RETRY, Stage, job_name
from faceblur_operator.plan import JobPlan
from faceblur_operator.views import JobView, PodView, TerminationMessage, parse_indexes, parse_time

T = TypeVar("T")

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
    input_bytes: int | None = None  # for the worker and compose Jobs' scratch space (the split's record)

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


# ------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class State:
    """The job's phase, reason and status message."""

    phase: Phase
    reason: Reason
    message: str


@dataclass(frozen=True)
class SetCondition:
    type: ConditionType
    status: ConditionStatus
    reason: Reason
    message: str


@dataclass(frozen=True)
class Composed:
    """What compose produced: its record (for the progress totals), the output and what came with it."""

    record: TerminationMessage | None
    output: str | None
    debug: DebugArtefacts | None
    verification: VerificationStatus | None  # what the residual-face check found


@dataclass(frozen=True)
class Outcome:
    """What one step decides. The pass applies the outcomes in order: a later state, failed indexes,
    completion time or compose result replaces an earlier one, conditions are set one after the
    other, and actions, events and finished stages add up."""

    state: State | None = None
    conditions: tuple[SetCondition, ...] = ()
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    finished: tuple[tuple[Stage, float], ...] = ()  # the stage completed now, with seconds taken
    failed_indexes: str | None = None  # chunks out of retries
    completion_time: str | None = None
    composed: Composed | None = None
    done: bool = False  # the stage completed: the next one may go


NOTHING = Outcome()


# --------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Running:
    """A running stage's reason, status message and condition message (None: the status message)."""

    reason: Reason
    message: str
    tally: str | None = None
    failed_indexes: str | None = None  # chunks out of retries while the rest go on


@dataclass(frozen=True)
class Completed:
    """A completed stage's result: its condition's message, and what else it sets (compose: Succeeded)."""

    message: str
    also: Outcome = NOTHING


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
    done: Callable[[_Pass, JobView], Completed | Outcome]  # its result; an Outcome: the stage failed
    done_reason: Reason  # of the condition when it turns True
    next: Stage | None  # the stage that follows
    reports: bool = True  # the condition is set (False) from the Job's creation on
    indexed: bool = False  # an Indexed Job, one completion per chunk


def _steady(reason: Reason, message: str) -> Callable[[_Pass, JobView | None], Running]:
    """A stage that says the same while it runs."""
    return lambda _run, _job: Running(reason, message)


def _split_done(run: _Pass, split: JobView) -> Completed | Outcome:
    chunks, frames = run.split_counts(split)
    if chunks is None:
        return run.failed(
            ConditionType.SPLIT,
            Reason.RESULT_MISSING,
            f"Job {split.name} succeeded but its pod's result (the termination message) is gone",
        )
    frames_text = f", {plural(frames, 'frame')}" if frames is not None else ""
    return Completed(f"{plural(chunks, 'chunk')}{frames_text}")


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


def _work_done(run: _Pass, work: JobView) -> Completed:
    total = work.completions or run.chunks
    return Completed(f"{total}/{total}")


def _compose_done(run: _Pass, compose: JobView) -> Completed:
    """Succeeded: the output, its debug artefacts and what the residual-face check found."""
    record = progress.latest_result(run.pods_of(compose), "compose")
    plan = run.obs.plan
    output = (record.string("output") if record else None) or (plan.output_url if plan else None)
    debug, checked = None, None
    if record is not None:
        video, sheet = record.string("debug_video"), record.string("contact_sheet")
        debug = DebugArtefacts(video=video, contact_sheet=sheet) if video or sheet else None
        checked = verification.from_record(record)
    message = f"wrote {output}"
    succeeded = replace(
        run.verified(checked),
        state=State(Phase.SUCCEEDED, Reason.SUCCEEDED, message),
        completion_time=compose.completion_time or run.obs.now,
        composed=Composed(record, output, debug, checked),
    )
    return Completed(message, succeeded)


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
    """A new attempt: the Jobs to redo deleted, then a pass that recreates them under new names."""
    old = obs.status
    attempt = old.attempt + 1
    cleaned = any(j.stage == Stage.CLEANUP for j in obs.jobs)
    doomed = [j for j in obs.jobs if not j.deleting and (cleaned or j.failed_condition)]
    restart = "from the split (intermediates were removed)" if cleaned else "redoing what failed"
    deleted = frozenset(j.name for j in doomed)
    run = _Pass(obs, attempt=attempt, token=obs.retry_token, deleted=deleted, fresh=True)
    retry = f"retry {attempt}"
    reopened = SetCondition(ConditionType.FAILED, ConditionStatus.FALSE, Reason.RETRY_REQUESTED, retry)
    requested = Outcome(
        conditions=(reopened,),
        actions=tuple(DeleteJob(j.name) for j in doomed),
        events=(Event("Normal", Reason.RETRY_REQUESTED, f"{retry}: {restart}"),),
    )
    return run.run(requested)


# ------------------------------------------------------------------------------------------ one pass


def _seconds_between(start: str | None, end: str | None) -> float | None:
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is None or t1 is None:
        return None
    return max(0.0, (t1 - t0).total_seconds())


@dataclass(frozen=True)
class _Pass:
    """One walk down the stage table. What it reads is fixed; each step returns an Outcome, and
    `decision` applies them, in order, to make the status."""

    obs: Observation
    attempt: int
    token: str | None
    deleted: frozenset[str] = frozenset()
    fresh: bool = False  # a retry: the previous failure does not carry over

    @cached_property
    def jobs(self) -> dict[Stage, JobView]:
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

    def split_counts(self, split: JobView) -> tuple[int | None, int | None]:
        return progress.split_counts(self.pods_of(split), self.jobs.get(Stage.WORK), self.obs.status.progress)

    @property
    def chunks(self) -> int | None:
        """The split's chunk count once it is done (the stages after it run only then)."""
        split = self.jobs.get(Stage.SPLIT)
        return self.split_counts(split)[0] if split is not None and split.complete else None

    @property
    def input_bytes(self) -> int | None:
        """The input's size in the split's record, once the split is done."""
        split = self.jobs.get(Stage.SPLIT)
        return progress.input_bytes(self.pods_of(split)) if split is not None and split.complete else None

    # -- the walk

    def run(self, first: Outcome = NOTHING) -> Decision:
        """The stages' outcomes, after `first` (a retry's), applied to the previous status."""
        return self.decision([first, *self.walk()])

    def walk(self) -> Iterator[Outcome]:
        """Each stage's outcome in turn, up to the first that is not done."""
        if self.obs.spec_error:
            yield self.failed(None, Reason.INVALID_SPEC, self.obs.spec_error)
            return
        row: StageRow | None = STAGES[0]
        while row is not None:
            outcome = self.step(row)
            yield outcome
            row = ROWS[row.next] if outcome.done and row.next is not None else None

    def step(self, row: StageRow) -> Outcome:
        """Create, wait for, fail or finish one stage."""
        job = self.jobs.get(row.stage)
        if job is None:
            return self.create(row)
        if job.failed_condition:
            return self.failed_stage(row, diagnosis.job_failure(job, self.pods_of(job)))
        if not job.complete:
            final = diagnosis.final_failure(job, self.pods_of(job))
            if final is not None:  # the Job would retry a pod that can never succeed: stop it
                failed = self.failed_stage(row, final)
                return replace(failed, actions=(*failed.actions, DeleteJob(job.name)))
            return self.wait(row, job)
        completed = row.done(self, job)
        if isinstance(completed, Outcome):  # it completed without what the next stage needs
            return completed
        return self.finish(row, job, completed)

    # -- the outcomes

    def create(self, row: StageRow) -> Outcome:
        """No Job yet: create it, and wait for it to start."""
        sized = row.stage in (Stage.WORK, Stage.COMPOSE)
        action = CreateJob(
            row.stage, self.attempt, self.chunks if row.indexed else None, self.input_bytes if sized else None
        )
        created = _created_message(action.name(self.obs.name))
        running = row.running(self, None)
        reason = row.waiting_reason or running.reason
        return Outcome(
            state=State(row.waiting_phase, reason, created),
            conditions=_running_condition(row, reason, running.tally or created),
            actions=(action,),
        )

    def wait(self, row: StageRow, job: JobView) -> Outcome:
        """A started or starting Job: why it makes no progress if its pods say so, else how far it is."""
        running = row.running(self, job)
        reason, message = running.reason, running.message
        queue = self.obs.plan.queue_name if self.obs.plan else None
        stalled = diagnosis.stalled(job, self.pods_of(job), queue)
        short = self.short_of_scratch(row, stalled)
        if short is not None:  # waiting cannot help: stop the pods that wait
            failed = self.failed_stage(row, short)
            return replace(failed, actions=(*failed.actions, DeleteJob(job.name)))
        if stalled is not None:
            reason, message = stalled
        elif not job.started:
            reason = row.waiting_reason or running.reason
            message = _created_message(job.name)
        return Outcome(
            state=State(row.phase if job.started else row.waiting_phase, reason, message),
            conditions=_running_condition(row, reason, running.tally or message),
            failed_indexes=running.failed_indexes,
        )

    def short_of_scratch(self, row: StageRow, stalled: tuple[Reason, str] | None) -> Failure | None:
        """A pod the scheduler places on no node for want of the scratch space the input needs."""
        if stalled is None or stalled[0] != Reason.UNSCHEDULABLE:
            return None
        if scratch.EPHEMERAL_STORAGE not in stalled[1]:
            return None
        plan, size_of_input = self.obs.plan, self.input_bytes
        if plan is None or size_of_input is None:
            return None
        pods = index_count(self.chunks or 1, plan.chunks_per_index)  # each holds its group of chunks
        size = scratch.scratch_bytes(row.stage, size_of_input, pods, plan.debug)
        if size is None:
            return None
        message = (
            f"{row.stage.value} pods need {scratch.human(size)} of scratch space (ephemeral-storage) for the"
            f" {scratch.human(size_of_input)} input, more than a node offers ({stalled[1]}): cut the input"
            f" into more chunks (spec.chunking) or run on nodes with more local storage; {RETRY_HINT}"
        )
        return Failure(Reason.INSUFFICIENT_SCRATCH, message, "")

    def finish(self, row: StageRow, job: JobView, completed: Completed) -> Outcome:
        """The stage's condition True, and its duration the first time it turns True."""
        done = SetCondition(row.condition, ConditionStatus.TRUE, row.done_reason, completed.message)
        also = completed.also
        return replace(also, conditions=(*also.conditions, done), finished=self.finished(row, job), done=True)

    def finished(self, row: StageRow, job: JobView) -> tuple[tuple[Stage, float], ...]:
        previous = self.obs.status.condition(row.condition)
        if previous is not None and previous.status == ConditionStatus.TRUE:
            return ()
        seconds = _seconds_between(job.start_time, job.completion_time)
        return () if seconds is None else ((row.stage, seconds),)

    def failed(
        self, stage_condition: ConditionType | None, reason: Reason, message: str, indexes: str | None = None
    ) -> Outcome:
        """Failed, with the stage's condition False if it has one; the cleanup Job if the spec asks."""
        own = (
            (SetCondition(stage_condition, ConditionStatus.FALSE, reason, message),)
            if stage_condition is not None
            else ()
        )
        cleanup = _cleanup_action(self.obs, self.attempt)
        return Outcome(
            state=State(Phase.FAILED, reason, f"{message}; {RETRY_HINT}"),
            conditions=(*own, SetCondition(ConditionType.FAILED, ConditionStatus.TRUE, reason, message)),
            actions=(cleanup,) if cleanup is not None else (),
            failed_indexes=indexes,
            completion_time=self.obs.now,
        )

    def failed_stage(self, row: StageRow, failure: Failure) -> Outcome:
        return self.failed(row.condition, failure.reason, failure.message, failure.indexes or None)

    def verified(self, checked: VerificationStatus | None) -> Outcome:
        """The Verified condition from the check's result; a Warning Event the first time it finds faces."""
        status, reason, message = verification.condition(checked)
        before = self.obs.status.condition(ConditionType.VERIFIED)
        first_found = reason == Reason.RESIDUAL_FACES and (before is None or before.reason != reason)
        return Outcome(
            conditions=(SetCondition(ConditionType.VERIFIED, status, reason, message),),
            events=(Event("Warning", reason, message),) if first_found else (),
        )

    # -- the result

    def decision(self, outcomes: Sequence[Outcome]) -> Decision:
        """The outcomes applied, in order, to the previous status: the one place the status is made."""
        old, plan, now = self.obs.status, self.obs.plan, self.obs.now
        state = _last(o.state for o in outcomes) or State(Phase.PENDING, Reason.CREATED, "")
        conditions = list(old.conditions)
        for c in (c for o in outcomes for c in o.conditions):
            conditions = set_condition(
                conditions, c.type, c.status, c.reason, c.message, now=now, generation=self.obs.generation
            )
        for kind, value in readiness(state.phase).items():  # the same reason and message as the phase
            conditions = set_condition(
                conditions, kind, value, state.reason, state.message, now=now, generation=self.obs.generation
            )
        actions = tuple(a for o in outcomes for a in o.actions)
        composed = _last(o.composed for o in outcomes)
        jobs = self.jobs

        def name(stage: Stage) -> str | None:
            return jobs[stage].name if stage in jobs else _created(actions, stage, self.obs.name)

        names = StageJobs(
            split=name(Stage.SPLIT),
            work=name(Stage.WORK),
            compose=name(Stage.COMPOSE),
            cleanup=_created(actions, Stage.CLEANUP, self.obs.name),
        )
        starts = [j.start_time for j in jobs.values() if j.start_time]
        start_time = (
            old.start_time if old.start_time and not self.fresh else (min(starts) if starts else None)
        )
        status = FaceBlurJobStatus(
            phase=state.phase,
            reason=state.reason,
            message=state.message,
            observed_generation=self.obs.generation,
            conditions=conditions,
            progress=self.progress(composed.record if composed else None),
            start_time=start_time or old.start_time,
            completion_time=_last(o.completion_time for o in outcomes),
            input=plan.input_url if plan else None,
            output=(composed.output if composed else None) or (plan.output_url if plan else None),
            output_plan=self.output_plan(),
            intermediates=plan.job_url if plan else None,
            debug=composed.debug if composed else None,
            verification=composed.verification if composed else None,
            failed_indexes=_last(o.failed_indexes for o in outcomes),
            jobs=names,
            attempt=self.attempt,
            retry_token=self.token,
        )
        events = [e for o in outcomes for e in o.events]
        if (state.phase, state.reason) != (old.phase, old.reason) and state.reason != Reason.CREATED:
            warning = state.phase == Phase.FAILED or state.reason in diagnosis.WARNING_REASONS
            events.append(Event("Warning" if warning else "Normal", state.reason, state.message))
        return Decision(
            status=status,
            actions=actions,
            events=tuple(events),
            finished_stages=tuple(f for o in outcomes for f in o.finished),
        )

    def output_plan(self) -> str | None:
        split = self.jobs.get(Stage.SPLIT)
        remembered = None if self.fresh else self.obs.status.output_plan
        return progress.output_plan(self.pods_of(split) if split is not None else [], remembered)

    def progress(self, composed: TerminationMessage | None) -> Progress:
        old = self.obs.status.progress
        split = self.jobs.get(Stage.SPLIT)
        if split is not None and split.complete:
            totals = self.split_counts(split)
        elif old is not None and not self.fresh:
            totals = (old.chunks_total, old.frames_total)
        else:
            totals = (None, None)
        return progress.progress(totals, self.jobs.get(Stage.WORK), self.obs.pods, composed)


def _running_condition(row: StageRow, reason: Reason, message: str) -> tuple[SetCondition, ...]:
    """The stage's condition False while its Job waits or runs, for a stage that reports."""
    return (SetCondition(row.condition, ConditionStatus.FALSE, reason, message),) if row.reports else ()


def _last(values: Iterable[T | None]) -> T | None:
    """The last value set, None if none is."""
    return next((v for v in reversed(list(values)) if v is not None), None)


def _created_message(name: str) -> str:
    return f"Job {name} created, waiting for it to start"


def _created(actions: Iterable[Action], stage: Stage, owner: str) -> str | None:
    return next((a.name(owner) for a in actions if isinstance(a, CreateJob) and a.stage == stage), None)
