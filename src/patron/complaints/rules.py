"""Pure rules of the complaint workflow (R-E5): the stages, the steps between them, the time
each stage should take, and the durations read from a complaint's events. Nothing here touches
the database; ``patron.complaints.services`` applies these rules inside transactions, so the
API, the pages and the CLI agree.

The workflow: a complaint is **recorded** (time, complainant, matter); a department
**investigates** it; it proposes a resolution (findings and proposal, told to the customer);
the customer **accepts** it, or rejects it with their reason and it goes back to the
department (a new round); once accepted a **follow-up** visit is scheduled and done; then the
complaint is **closed** (and its ticket solved). A customer may withdraw a complaint before
accepting a resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from patron.statemachine import next_state


class Stage(StrEnum):
    RECORDED = "recorded"
    INVESTIGATING = "investigating"
    RESOLUTION_PROPOSED = "resolution_proposed"
    ACCEPTED = "accepted"
    FOLLOW_UP_SCHEDULED = "follow_up_scheduled"
    FOLLOW_UP_DONE = "follow_up_done"
    CLOSED = "closed"


class Action(StrEnum):
    ASSIGN = "assign"  # give it to a department (again, while investigating)
    PROPOSE = "propose"  # findings and a proposed resolution, sent to the customer
    ACCEPT = "accept"  # the customer accepts the proposal
    REJECT = "reject"  # the customer rejects it, with their reason: back to the department
    SCHEDULE_FOLLOW_UP = "schedule_follow_up"  # (re)schedule the follow-up visit
    COMPLETE_FOLLOW_UP = "complete_follow_up"  # the visit happened, with notes
    CLOSE = "close"  # done; the ticket is solved
    WITHDRAW = "withdraw"  # the customer withdraws the complaint (closed, with the reason)


#: Stage -> {action: next stage}. Anything else is refused (409).
TRANSITIONS: dict[str, dict[str, str]] = {
    Stage.RECORDED: {Action.ASSIGN: Stage.INVESTIGATING, Action.WITHDRAW: Stage.CLOSED},
    Stage.INVESTIGATING: {
        Action.ASSIGN: Stage.INVESTIGATING,
        Action.PROPOSE: Stage.RESOLUTION_PROPOSED,
        Action.WITHDRAW: Stage.CLOSED,
    },
    Stage.RESOLUTION_PROPOSED: {
        Action.ACCEPT: Stage.ACCEPTED,
        Action.REJECT: Stage.INVESTIGATING,
        Action.WITHDRAW: Stage.CLOSED,
    },
    Stage.ACCEPTED: {Action.SCHEDULE_FOLLOW_UP: Stage.FOLLOW_UP_SCHEDULED},
    Stage.FOLLOW_UP_SCHEDULED: {
        Action.SCHEDULE_FOLLOW_UP: Stage.FOLLOW_UP_SCHEDULED,
        Action.COMPLETE_FOLLOW_UP: Stage.FOLLOW_UP_DONE,
    },
    Stage.FOLLOW_UP_DONE: {Action.CLOSE: Stage.CLOSED},
    Stage.CLOSED: {},
}

STAGES: tuple[str, ...] = tuple(Stage)
ACTIONS: tuple[str, ...] = tuple(Action)
OPEN_STAGES = frozenset(s for s in STAGES if s != Stage.CLOSED)
#: The stages where the customer's answer is awaited.
WAITING_FOR_CUSTOMER = frozenset({Stage.RESOLUTION_PROPOSED})

#: How long each stage should take at most (wall-clock hours), the basis of "overdue". The
#: follow-up visit is instead overdue once its scheduled time has passed by ``VISIT_GRACE``.
STAGE_TARGET_HOURS: dict[str, int] = {
    Stage.RECORDED: 4,  # a department takes it the same morning or afternoon
    Stage.INVESTIGATING: 48,  # findings and a proposal within two days
    Stage.RESOLUTION_PROPOSED: 72,  # then ask the customer again
    Stage.ACCEPTED: 24,  # schedule the follow-up visit within a day
    Stage.FOLLOW_UP_DONE: 24,  # close within a day of the visit
}
VISIT_GRACE = timedelta(hours=24)

#: What the step each stage waits for is called, for "overdue: <step>".
NEXT_STEP: dict[str, str] = {
    Stage.RECORDED: "assign a department",
    Stage.INVESTIGATING: "propose a resolution",
    Stage.RESOLUTION_PROPOSED: "the customer's answer",
    Stage.ACCEPTED: "schedule the follow-up visit",
    Stage.FOLLOW_UP_SCHEDULED: "do the follow-up visit",
    Stage.FOLLOW_UP_DONE: "close the complaint",
}


def complaint_next(stage: str, action: str) -> str:
    """The stage after ``action``; ``TransitionRefused`` when the stage does not allow it."""
    return next_state(TRANSITIONS, "the complaint", stage, action)


def allowed_actions(stage: str) -> tuple[str, ...]:
    return tuple(TRANSITIONS.get(stage, {}))


# ---------------------------------------------------------------------- time


def stage_due_at(
    stage: str, *, entered_at: datetime, follow_up_at: datetime | None = None
) -> datetime | None:
    """When the step the stage waits for is due; ``None`` for a closed complaint."""
    if stage == Stage.FOLLOW_UP_SCHEDULED:
        return (follow_up_at + VISIT_GRACE) if follow_up_at is not None else None
    hours = STAGE_TARGET_HOURS.get(stage)
    return None if hours is None else entered_at + timedelta(hours=hours)


def is_overdue(
    stage: str, *, entered_at: datetime, now: datetime, follow_up_at: datetime | None = None
) -> bool:
    due = stage_due_at(stage, entered_at=entered_at, follow_up_at=follow_up_at)
    return due is not None and now > due


@dataclass(frozen=True)
class StageEvent:
    """One step as the durations need it: when it happened and the stage it led to."""

    at: datetime
    to_stage: str
    round: int = 1


@dataclass(frozen=True)
class StageSpan:
    """A stretch of time spent in one stage: ``left_at`` is ``None`` while it lasts (then the
    duration runs to ``now``)."""

    stage: str
    round: int
    entered_at: datetime
    left_at: datetime | None
    seconds: float


def stage_spans(events: Sequence[StageEvent], *, now: datetime) -> list[StageSpan]:
    """The stretches of time between stage changes, in order. A step that keeps the stage
    (reassigning, rescheduling) does not start a new stretch. The closed stage has no duration."""
    spans: list[StageSpan] = []
    current: StageEvent | None = None
    for event in sorted(events, key=lambda e: e.at):
        if current is not None and event.to_stage == current.to_stage:
            continue
        if current is not None:
            spans.append(
                StageSpan(
                    stage=current.to_stage,
                    round=current.round,
                    entered_at=current.at,
                    left_at=event.at,
                    seconds=max((event.at - current.at).total_seconds(), 0.0),
                )
            )
        current = event
    if current is not None and current.to_stage != Stage.CLOSED:
        spans.append(
            StageSpan(
                stage=current.to_stage,
                round=current.round,
                entered_at=current.at,
                left_at=None,
                seconds=max((now - current.at).total_seconds(), 0.0),
            )
        )
    return spans


def seconds_per_stage(spans: Iterable[StageSpan]) -> dict[str, float]:
    """Total time in each stage over every round, in workflow order (stages never entered are
    left out)."""
    totals: dict[str, float] = {}
    for span in spans:
        totals[span.stage] = totals.get(span.stage, 0.0) + span.seconds
    return {stage: totals[stage] for stage in STAGES if stage in totals}


def total_seconds(events: Sequence[StageEvent], *, now: datetime) -> float:
    """From recording to closing (or to ``now`` while it is open)."""
    if not events:
        return 0.0
    ordered = sorted(events, key=lambda e: e.at)
    end = ordered[-1].at if ordered[-1].to_stage == Stage.CLOSED else now
    return max((end - ordered[0].at).total_seconds(), 0.0)


# ---------------------------------------------------------------------- severity


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


#: A complaint opened from a ticket takes its severity from the ticket's priority.
SEVERITY_OF_PRIORITY: Mapping[str, str] = {
    "urgent": Severity.CRITICAL,
    "high": Severity.MAJOR,
    "normal": Severity.MINOR,
    "low": Severity.MINOR,
}


def severity_for_priority(priority: str) -> str:
    return SEVERITY_OF_PRIORITY.get(priority, Severity.MINOR)
