"""Kubernetes-style conditions: one per type, lastTransitionTime moves only when status flips."""

from __future__ import annotations

from faceblur_operator.api import Condition, ConditionStatus, ConditionType, Phase, Reason

ORDER = (
    ConditionType.READY,
    ConditionType.RECONCILING,
    ConditionType.STALLED,
    ConditionType.SPLIT,
    ConditionType.PROCESSED,
    ConditionType.COMPLETE,
    ConditionType.VERIFIED,
    ConditionType.FAILED,
)


def set_condition(
    conditions: list[Condition],
    kind: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """A new list with `kind` set; the previous lastTransitionTime is kept when status is unchanged."""
    previous = next((c for c in conditions if c.type == kind), None)
    since = previous.last_transition_time if previous is not None and previous.status == status else now
    updated = Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    rest = [c for c in conditions if c.type != kind]
    return sorted([*rest, updated], key=lambda c: ORDER.index(c.type))


def is_true(conditions: list[Condition], kind: ConditionType) -> bool:
    return any(c.type == kind and c.status == ConditionStatus.TRUE for c in conditions)


def readiness(phase: Phase) -> dict[ConditionType, ConditionStatus]:
    """The job as a whole, as kstatus computes it: Reconciling while it runs (InProgress), Stalled
    once it failed (Failed), Ready once the output is published (Current)."""

    def flag(true: bool) -> ConditionStatus:
        return ConditionStatus.TRUE if true else ConditionStatus.FALSE

    return {
        ConditionType.READY: flag(phase is Phase.SUCCEEDED),
        ConditionType.RECONCILING: flag(not phase.terminal),
        ConditionType.STALLED: flag(phase is Phase.FAILED),
    }
