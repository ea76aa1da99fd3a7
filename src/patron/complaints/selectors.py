"""Reads of complaints: the list with each complaint's age and overdue step, one complaint with
its timeline and the time spent in each stage, what the customer sees through their link, and
the process figures. Permission-checked here, so the API, the pages and the CLI agree."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from patron.account.roles import HANDLE_COMPLAINTS, VIEW_COMPLAINTS
from patron.account.services import require_permission
from patron.complaints import rules, tokens
from patron.complaints.models import Complaint, ComplaintEvent
from patron.errors import NotFound, ValidationFailed

EXCERPT = 120


def _excerpt(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 2)


@dataclass(frozen=True)
class ComplaintRow:
    id: int
    ticket_id: int
    customer_id: int
    customer_name: str
    order_id: int | None
    matter: str
    severity: str
    stage: str
    team: str
    handler: str
    recorded_at: datetime
    stage_entered_at: datetime
    age_hours: float
    stage_hours: float
    due_at: datetime | None
    is_overdue: bool
    overdue_step: str
    proposals: int
    rejections: int


def _row(complaint: Complaint, now: datetime) -> ComplaintRow:
    due = rules.stage_due_at(
        complaint.stage, entered_at=complaint.stage_entered_at, follow_up_at=complaint.follow_up_at
    )
    overdue = due is not None and now > due
    end = complaint.closed_at if complaint.closed_at else now
    return ComplaintRow(
        id=complaint.pk,
        ticket_id=complaint.ticket_id,
        customer_id=complaint.customer_id,
        customer_name=complaint.customer.name,
        order_id=complaint.order_id,
        matter=_excerpt(complaint.matter),
        severity=complaint.severity,
        stage=complaint.stage,
        team=complaint.team.name if complaint.team else "",
        handler=complaint.handler.get_username() if complaint.handler else "",
        recorded_at=complaint.recorded_at,
        stage_entered_at=complaint.stage_entered_at,
        age_hours=_hours((end - complaint.recorded_at).total_seconds()),
        stage_hours=_hours((end - complaint.stage_entered_at).total_seconds()),
        due_at=due,
        is_overdue=overdue,
        overdue_step=rules.NEXT_STEP.get(complaint.stage, "") if overdue else "",
        proposals=complaint.proposals,
        rejections=complaint.rejections,
    )


def _overdue_q(now: datetime) -> Q:
    """The complaints whose current step is overdue, as one query."""
    query = Q(stage=rules.Stage.FOLLOW_UP_SCHEDULED, follow_up_at__lt=now - rules.VISIT_GRACE)
    for stage, hours in rules.STAGE_TARGET_HOURS.items():
        query |= Q(stage=stage, stage_entered_at__lt=now - timedelta(hours=hours))
    return query


@dataclass(frozen=True)
class ComplaintFilter:
    stages: tuple[str, ...] = ()  # empty: every open stage
    severity: str = ""
    team_id: int | None = None
    customer_id: int | None = None
    is_overdue: bool = False
    include_closed: bool = False


def _filtered(filters: ComplaintFilter, now: datetime) -> QuerySet[Complaint]:
    unknown = set(filters.stages) - set(rules.STAGES)
    if unknown:
        raise ValidationFailed(
            f"stage: one of {', '.join(rules.STAGES)}; got {', '.join(sorted(unknown))}"
        )
    if filters.severity and filters.severity not in rules.Severity:
        raise ValidationFailed(
            f"severity: one of {', '.join(rules.Severity)}; got {filters.severity!r}"
        )
    found = Complaint.objects.all()
    if filters.stages:
        found = found.filter(stage__in=filters.stages)
    elif not filters.include_closed:
        found = found.filter(stage__in=rules.OPEN_STAGES)
    if filters.severity:
        found = found.filter(severity=filters.severity)
    if filters.team_id is not None:
        found = found.filter(team_id=filters.team_id)
    if filters.customer_id is not None:
        found = found.filter(customer_id=filters.customer_id)
    if filters.is_overdue:
        found = found.filter(_overdue_q(now))
    return found


def complaint_rows(
    *, filters: ComplaintFilter, limit: int = 50, offset: int = 0
) -> tuple[int, list[ComplaintRow]]:
    """Complaints, the longest in their stage first, and the total count for paging. No
    permission check: for the operator's command line; people go through ``complaint_list``."""
    now = timezone.now()
    found = _filtered(filters, now)
    total = found.count()
    page = found.select_related("customer", "team", "handler").order_by("stage_entered_at", "id")
    return total, [_row(c, now) for c in page[offset : offset + limit]]


def complaint_list(
    *, user: Any, filters: ComplaintFilter, limit: int = 50, offset: int = 0
) -> tuple[int, list[ComplaintRow]]:
    """Complaints, the longest in their stage first; the total count for paging."""
    require_permission(user, VIEW_COMPLAINTS)
    return complaint_rows(filters=filters, limit=limit, offset=offset)


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    action: str
    from_stage: str
    to_stage: str
    round: int
    note: str


@dataclass(frozen=True)
class SpanView:
    stage: str
    round: int
    entered_at: datetime
    left_at: datetime | None
    hours: float
    target_hours: float | None
    is_over_target: bool


@dataclass(frozen=True)
class ComplaintDetail:
    id: int
    ticket_id: int
    ticket_subject: str
    ticket_status: str
    customer_id: int
    customer_name: str
    order_id: int | None
    matter: str
    severity: str
    stage: str
    team_id: int | None
    team: str
    handler: str
    findings: str
    resolution: str
    proposals: int
    rejections: int
    customer_answer: str
    answered_at: datetime | None
    follow_up_at: datetime | None
    follow_up_notes: str
    outcome: str
    created_by: str
    recorded_at: datetime
    investigating_at: datetime | None
    proposed_at: datetime | None
    accepted_at: datetime | None
    follow_up_scheduled_at: datetime | None
    follow_up_done_at: datetime | None
    closed_at: datetime | None
    stage_entered_at: datetime
    due_at: datetime | None
    is_overdue: bool
    overdue_step: str
    total_hours: float
    hours_per_stage: dict[str, float]
    spans: list[SpanView]
    events: list[EventView]
    allowed_actions: list[str]
    may_handle: bool


def _spans(events: Sequence[ComplaintEvent], now: datetime) -> list[rules.StageSpan]:
    return rules.stage_spans(
        [rules.StageEvent(at=e.at, to_stage=e.to_stage, round=e.round) for e in events], now=now
    )


def _span_view(span: rules.StageSpan) -> SpanView:
    target = rules.STAGE_TARGET_HOURS.get(span.stage)
    hours = _hours(span.seconds)
    return SpanView(
        stage=span.stage,
        round=span.round,
        entered_at=span.entered_at,
        left_at=span.left_at,
        hours=hours,
        target_hours=float(target) if target is not None else None,
        is_over_target=target is not None and span.seconds > target * 3600,
    )


def complaint_get(*, user: Any, complaint_id: int) -> ComplaintDetail:
    """One complaint with its timeline, the time spent in each stage (per round) and the steps
    its stage allows."""
    require_permission(user, VIEW_COMPLAINTS)
    complaint = (
        Complaint.objects.select_related("customer", "team", "handler", "ticket", "created_by")
        .filter(pk=complaint_id)
        .first()
    )
    if complaint is None:
        raise NotFound(f"complaint {complaint_id} not found")
    now = timezone.now()
    events = list(complaint.events.select_related("actor").order_by("at", "id"))
    spans = _spans(events, now)
    row = _row(complaint, now)
    stage_events = [rules.StageEvent(at=e.at, to_stage=e.to_stage) for e in events]
    return ComplaintDetail(
        id=complaint.pk,
        ticket_id=complaint.ticket_id,
        ticket_subject=complaint.ticket.subject,
        ticket_status=complaint.ticket.status,
        customer_id=complaint.customer_id,
        customer_name=complaint.customer.name,
        order_id=complaint.order_id,
        matter=complaint.matter,
        severity=complaint.severity,
        stage=complaint.stage,
        team_id=complaint.team_id,
        team=row.team,
        handler=row.handler,
        findings=complaint.findings,
        resolution=complaint.resolution,
        proposals=complaint.proposals,
        rejections=complaint.rejections,
        customer_answer=complaint.customer_answer,
        answered_at=complaint.answered_at,
        follow_up_at=complaint.follow_up_at,
        follow_up_notes=complaint.follow_up_notes,
        outcome=complaint.outcome,
        created_by=complaint.created_by.get_username() if complaint.created_by else "",
        recorded_at=complaint.recorded_at,
        investigating_at=complaint.investigating_at,
        proposed_at=complaint.proposed_at,
        accepted_at=complaint.accepted_at,
        follow_up_scheduled_at=complaint.follow_up_scheduled_at,
        follow_up_done_at=complaint.follow_up_done_at,
        closed_at=complaint.closed_at,
        stage_entered_at=complaint.stage_entered_at,
        due_at=row.due_at,
        is_overdue=row.is_overdue,
        overdue_step=row.overdue_step,
        total_hours=_hours(rules.total_seconds(stage_events, now=now)),
        hours_per_stage={
            stage: _hours(seconds) for stage, seconds in rules.seconds_per_stage(spans).items()
        },
        spans=[_span_view(span) for span in spans],
        events=[
            EventView(
                at=e.at,
                actor=e.actor.get_username() if e.actor else e.actor_label,
                action=e.action,
                from_stage=e.from_stage,
                to_stage=e.to_stage,
                round=e.round,
                note=e.note,
            )
            for e in events
        ],
        allowed_actions=list(rules.allowed_actions(complaint.stage)),
        may_handle=bool(user.has_perm(HANDLE_COMPLAINTS)),
    )


# ---------------------------------------------------------------------- the customer's link


@dataclass(frozen=True)
class PublicComplaintView:
    """What the customer sees through their link: their words, the findings and the proposal,
    and whether this link can still answer."""

    customer_name: str
    recorded_at: datetime
    matter: str
    findings: str
    resolution: str
    round: int
    stage: str
    is_answerable: bool
    is_replaced: bool
    customer_answer: str
    answered_at: datetime | None


def complaint_public_view(*, token: str) -> PublicComplaintView:
    """The complaint behind a link (404 invalid link, 403 expired)."""
    link = tokens.answer_link(token)
    complaint = Complaint.objects.select_related("customer").filter(pk=link.complaint_id).first()
    if complaint is None:
        raise NotFound("this link is not valid: check that it was copied whole")
    is_replaced = complaint.proposals != link.round
    return PublicComplaintView(
        customer_name=complaint.customer.name,
        recorded_at=complaint.recorded_at,
        matter=complaint.matter,
        findings=complaint.findings,
        resolution=complaint.resolution,
        round=link.round,
        stage=complaint.stage,
        is_answerable=not is_replaced and complaint.stage == rules.Stage.RESOLUTION_PROPOSED,
        is_replaced=is_replaced,
        customer_answer=complaint.customer_answer,
        answered_at=complaint.answered_at,
    )


# ---------------------------------------------------------------------- figures


@dataclass(frozen=True)
class ComplaintStats:
    open_by_stage: dict[str, int]
    open_total: int
    overdue: int
    closed_last_days: int
    median_days_to_close: float | None
    mean_rejections: float | None
    median_hours_per_stage: dict[str, float]
    days: int


def complaint_stats(*, user: Any, days: int = 90) -> ComplaintStats:
    """How many complaints are in each stage, how many are overdue, and — over the ones closed
    in the last ``days`` — how long they took (median, per stage) and how many rounds."""
    require_permission(user, VIEW_COMPLAINTS)
    now = timezone.now()
    open_found = Complaint.objects.filter(stage__in=rules.OPEN_STAGES)
    counts = {stage: 0 for stage in rules.STAGES if stage in rules.OPEN_STAGES}
    for stage in open_found.values_list("stage", flat=True):
        counts[stage] = counts.get(stage, 0) + 1
    closed = list(
        Complaint.objects.filter(
            stage=rules.Stage.CLOSED, closed_at__gte=now - timedelta(days=days)
        )
        .prefetch_related("events")
        .order_by("closed_at")
    )
    per_stage: dict[str, list[float]] = {}
    for complaint in closed:
        spans = _spans(list(complaint.events.all()), now)
        for stage, seconds in rules.seconds_per_stage(spans).items():
            per_stage.setdefault(stage, []).append(seconds / 3600)
    durations = [
        (c.closed_at - c.recorded_at).total_seconds() / 86400 for c in closed if c.closed_at
    ]
    return ComplaintStats(
        open_by_stage=counts,
        open_total=sum(counts.values()),
        overdue=open_found.filter(_overdue_q(now)).count(),
        closed_last_days=len(closed),
        median_days_to_close=round(statistics.median(durations), 1) if durations else None,
        mean_rejections=(
            round(sum(c.rejections for c in closed) / len(closed), 2) if closed else None
        ),
        median_hours_per_stage={
            stage: round(statistics.median(values), 1)
            for stage in rules.STAGES
            if (values := per_stage.get(stage))
        },
        days=days,
    )


# ---------------------------------------------------------------------- complaint risk


@dataclass(frozen=True)
class RiskRow:
    rank: int
    probability: float
    customer_id: int
    customer_name: str
    ticket_id: int | None
    ticket_subject: str
    ticket_status: str
    ticket_priority: str
    opened_at: datetime | None
    reasons: list[str]
    open_tickets: int


@dataclass(frozen=True)
class AtRiskView:
    scored_at: datetime | None
    as_of: datetime | None
    method: str
    note: str
    metrics: dict[str, Any]
    weights: dict[str, float]
    tickets: list[RiskRow]
    customers: list[RiskRow]


def _reason_texts(reasons: Sequence[Any], language: str) -> list[str]:
    from patron.complaints.risk_model import reason_text

    return [reason_text(r, language=language) for r in reasons if isinstance(r, dict)]


def at_risk(*, user: Any, limit: int = 20, language: str = "en") -> AtRiskView:
    """The open tickets and the customers most likely to escalate to a complaint, from the last
    refresh, with the reasons in ``language`` and how well the model ranked."""
    from patron.complaints.models import ComplaintRiskRun, ComplaintRiskScore

    require_permission(user, VIEW_COMPLAINTS)
    run = ComplaintRiskRun.objects.order_by("-scored_at", "-id").first()
    if run is None:
        return AtRiskView(None, None, "", "", {}, {}, [], [])
    open_counts: dict[int, int] = {}
    for customer_id in ComplaintRiskScore.objects.filter(kind="ticket").values_list(
        "customer_id", flat=True
    ):
        open_counts[customer_id] = open_counts.get(customer_id, 0) + 1

    def rows(kind: str) -> list[RiskRow]:
        found = (
            ComplaintRiskScore.objects.filter(run=run, kind=kind)
            .select_related("customer", "ticket")
            .order_by("rank")[:limit]
        )
        return [
            RiskRow(
                rank=score.rank,
                probability=round(score.probability, 4),
                customer_id=score.customer_id,
                customer_name=score.customer.name,
                ticket_id=score.ticket_id,
                ticket_subject=score.ticket.subject if score.ticket else "",
                ticket_status=score.ticket.status if score.ticket else "",
                ticket_priority=score.ticket.priority if score.ticket else "",
                opened_at=score.ticket.opened_at if score.ticket else None,
                reasons=_reason_texts(score.reasons, language),
                open_tickets=open_counts.get(score.customer_id, 0),
            )
            for score in found
        ]

    return AtRiskView(
        scored_at=run.scored_at,
        as_of=run.as_of,
        method=run.method,
        note=run.note,
        metrics=dict(run.metrics),
        weights=dict(run.weights),
        tickets=rows("ticket"),
        customers=rows("customer"),
    )
