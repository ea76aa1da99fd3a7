"""Reading the service desk: the queue sorted by SLA urgency, one ticket with its
conversation, clocks and the customer's profile, and the desk's settings.

The caller's permission is checked here (``service.view_ticket``), so the API, the pages and
the CLI answer the same. Internal notes are part of what staff read; the public page never
reads through these selectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone

from patron.account.roles import VIEW_TICKETS, WORK_TICKETS
from patron.account.services import require_permission
from patron.commerce.models import Order, ReturnRequest
from patron.errors import NotFound, ValidationFailed
from patron.scoring.models import CustomerScore
from patron.service import services
from patron.service.models import (
    PATRON_SOURCE,
    Category,
    RoutingRule,
    SlaPolicy,
    Team,
    Ticket,
    TicketEvent,
    TicketMessage,
)

QUEUE_LIMIT = 200
OPEN_STATUSES = [
    Ticket.Status.NEW,
    Ticket.Status.OPEN,
    Ticket.Status.PENDING,
    Ticket.Status.ON_HOLD,
]


@dataclass(frozen=True)
class QueueFilters:
    status: str = "live"  # live | all | one status
    channel: str = ""
    category: str = ""
    priority: str = ""
    grade: str = ""
    assignee: str = ""  # "" any | "me" | "none" | a user id
    team: str = ""
    q: str = ""
    breached: bool = False

    def validate(self) -> None:
        checks = (
            ("status", self.status, {"live", "all", *Ticket.Status.values}),
            ("channel", self.channel, {"", *Ticket.Channel.values}),
            ("priority", self.priority, {"", *Ticket.Priority.values}),
            ("grade", self.grade, {"", "core", "potential", "ordinary"}),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValidationFailed(
                    f"filter {name}: {value!r} is not one of {', '.join(sorted(a for a in allowed if a))}"
                )
        if self.assignee not in ("", "me", "none") and not self.assignee.isdigit():
            raise ValidationFailed("filter assignee: use me, none or a user id")


@dataclass(frozen=True)
class QueueRow:
    id: int
    subject: str
    customer_id: int
    customer_name: str
    grade: str
    channel: str
    channel_label: str
    category: str
    status: str
    status_label: str
    priority: str
    priority_label: str
    is_complaint: bool
    assignee: str
    team: str
    opened_at: datetime
    updated_at: datetime
    due_at: datetime | None
    minutes_left: int | None  # wall-clock minutes to the earliest deadline (negative: late)
    is_breached: bool
    escalation_level: int


def _queue_queryset(user: Any, filters: QueueFilters) -> QuerySet[Ticket]:
    rows = Ticket.objects.filter(source=PATRON_SOURCE)
    if filters.status == "live":
        rows = rows.filter(status__in=OPEN_STATUSES)
    elif filters.status != "all":
        rows = rows.filter(status=filters.status)
    if filters.channel:
        rows = rows.filter(channel=filters.channel)
    if filters.category:
        rows = rows.filter(category=filters.category)
    if filters.priority:
        rows = rows.filter(priority=filters.priority)
    if filters.grade:
        rows = rows.filter(customer__score__grade=filters.grade)
    if filters.assignee == "me":
        rows = rows.filter(assignee=user)
    elif filters.assignee == "none":
        rows = rows.filter(assignee__isnull=True)
    elif filters.assignee:
        rows = rows.filter(assignee_id=int(filters.assignee))
    if filters.team:
        rows = rows.filter(team__slug=filters.team)
    if filters.q:
        text = filters.q.strip()
        rows = rows.filter(subject__icontains=text) | rows.filter(customer__name__icontains=text)
        if text.lstrip("#").isdigit():
            rows = rows | Ticket.objects.filter(pk=int(text.lstrip("#")), source=PATRON_SOURCE)
    if filters.breached:
        rows = rows.filter(first_reply_breached_at__isnull=False) | rows.filter(
            resolution_breached_at__isnull=False
        )
    return rows


def ticket_queue(
    *, user: Any, filters: QueueFilters | None = None, limit: int = QUEUE_LIMIT, offset: int = 0
) -> tuple[list[QueueRow], int]:
    """The queue, most urgent first: the earliest running SLA deadline, then the oldest
    ticket (tickets whose clocks are paused come after those that are running)."""
    require_permission(user, VIEW_TICKETS)
    filters = filters or QueueFilters()
    filters.validate()
    rows = _queue_queryset(user, filters)
    total = rows.count()
    now = timezone.now()
    # Two steps: the page's ids from the index first, then only those rows with their
    # customer, score, assignee and team. Sorting the joined rows instead made the database
    # join every live ticket before cutting the page (162 ms against 8 ms at 100k tickets).
    ids = list(
        rows.order_by(F("due_at").asc(nulls_last=True), "opened_at", "id").values_list(
            "pk", flat=True
        )[offset : offset + limit]
    )
    by_id = Ticket.objects.select_related(
        "customer", "assignee", "team", "customer__score"
    ).in_bulk(ids)
    out = []
    for t in (by_id[pk] for pk in ids if pk in by_id):  # erased meanwhile: skipped
        score = getattr(t.customer, "score", None)
        out.append(
            QueueRow(
                id=t.pk,
                subject=t.subject,
                customer_id=t.customer_id,
                customer_name=t.customer.name,
                grade=score.grade if score is not None else "",
                channel=t.channel,
                channel_label=Ticket.Channel(t.channel).label,
                category=t.category,
                status=t.status,
                status_label=Ticket.Status(t.status).label,
                priority=t.priority,
                priority_label=Ticket.Priority(t.priority).label,
                is_complaint=t.is_complaint,
                assignee=t.assignee.username if t.assignee else "",
                team=t.team.name if t.team else "",
                opened_at=t.opened_at,
                updated_at=t.updated_at,
                due_at=t.due_at,
                minutes_left=int((t.due_at - now).total_seconds() // 60) if t.due_at else None,
                is_breached=bool(t.first_reply_breached_at or t.resolution_breached_at),
                escalation_level=t.escalation_level,
            )
        )
    return out, total


# ---------------------------------------------------------------------- one ticket


@dataclass(frozen=True)
class MessageView:
    id: int
    direction: str
    direction_label: str
    author: str
    body: str
    created_at: datetime
    is_automatic: bool
    delivery: str  # the outbox status of a reply ("" for others)


@dataclass(frozen=True)
class ClockView:
    name: str
    target_minutes: int
    elapsed_minutes: int
    remaining_minutes: int
    due_at: datetime | None
    is_paused: bool
    is_met: bool
    is_breached: bool
    is_warning: bool


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    note: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ProfileView:
    """What the agent sees of the customer next to the conversation."""

    customer_id: int
    name: str
    grade: str
    clv_12m: Decimal | None
    churn_probability: float | None
    credit_score: int | None
    certification: str
    recent_orders: list[dict[str, Any]]
    open_returns: list[dict[str, Any]]
    past_tickets: list[dict[str, Any]]
    csat_average: float | None


@dataclass(frozen=True)
class TicketView:
    id: int
    subject: str
    channel: str
    channel_label: str
    category: str
    status: str
    status_label: str
    priority: str
    priority_label: str
    priority_reasons: list[str]
    is_complaint: bool
    is_desk: bool
    assignee: str
    assignee_id: int | None
    team: str
    opened_at: datetime
    first_response_at: datetime | None
    solved_at: datetime | None
    satisfaction: int | None
    sla_policy: str
    escalation_level: int
    auto_answered: bool
    order_id: int | None
    messages: list[MessageView]
    events: list[EventView]
    clocks: list[ClockView]
    profile: ProfileView
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    may_work: bool = False


def _clock_view(name: str, status: Any, target: int) -> ClockView:
    return ClockView(
        name=name,
        target_minutes=target,
        elapsed_minutes=int(status.elapsed_minutes),
        remaining_minutes=int(status.remaining_minutes),
        due_at=status.due_at,
        is_paused=bool(status.paused),
        is_met=bool(status.met),
        is_breached=bool(status.breached),
        is_warning=bool(status.warning),
    )


def _profile(customer: Any) -> ProfileView:
    score = CustomerScore.objects.filter(customer_id=customer.pk).first()
    orders: list[dict[str, Any]] = [
        dict(row)
        for row in Order.objects.filter(customer_id=customer.pk)
        .order_by("-placed_at")
        .values("id", "external_id", "placed_at", "status", "total_amount", "currency")[:5]
    ]
    returns: list[dict[str, Any]] = [
        dict(row)
        for row in ReturnRequest.objects.filter(order__customer_id=customer.pk)
        .exclude(status__in=["completed", "refunded", "rejected", "cancelled"])
        .values("id", "external_id", "kind", "status", "requested_at")[:5]
    ]
    past: list[dict[str, Any]] = [
        dict(row)
        for row in Ticket.objects.filter(customer_id=customer.pk)
        .order_by("-opened_at")
        .values("id", "subject", "status", "opened_at", "satisfaction", "is_complaint")[:6]
    ]
    rated: list[int] = [
        int(t["satisfaction"] or 0)
        for t in Ticket.objects.filter(customer_id=customer.pk, satisfaction__isnull=False).values(
            "satisfaction"
        )
    ]
    try:
        from patron.certification.selectors import certification_of

        held = certification_of(customer.pk)
        certification = str(getattr(held, "level_name", "") or "") if held else ""
    except ImportError:  # pragma: no cover - certification is part of the product
        certification = ""
    return ProfileView(
        customer_id=customer.pk,
        name=customer.name,
        grade=score.grade if score else "",
        clv_12m=score.clv_12m if score else None,
        churn_probability=score.churn_probability if score else None,
        credit_score=score.credit_score if score else None,
        certification=certification,
        recent_orders=orders,
        open_returns=returns,
        past_tickets=past,
        csat_average=round(sum(rated) / len(rated), 2) if rated else None,
    )


def _suggestions(ticket: Ticket, messages: list[TicketMessage]) -> list[dict[str, Any]]:
    inbound = [m for m in messages if m.direction == TicketMessage.Direction.INBOUND]
    if not inbound:
        return []
    try:
        from patron.knowledge.selectors import suggest
    except ImportError:
        return []
    text = f"{ticket.subject}\n{inbound[-1].body}"
    return [
        {
            "article_id": s.article_id,
            "question": s.question,
            "answer": s.answer,
            "confidence": round(float(s.confidence), 2),
        }
        for s in suggest(text, k=3)
    ]


def _actions(ticket: Ticket) -> list[str]:
    from patron.service import rules

    allowed = rules.TICKET_TRANSITIONS.get(ticket.status, {})
    return [a for a in services.STAFF_ACTIONS if a in allowed]


def ticket_detail(*, user: Any, ticket_id: int, with_suggestions: bool = True) -> TicketView:
    require_permission(user, VIEW_TICKETS)
    ticket = (
        Ticket.objects.select_related("customer", "assignee", "team").filter(pk=ticket_id).first()
    )
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    messages = list(
        TicketMessage.objects.filter(ticket=ticket).select_related("author", "outbox_message")
    )
    events = list(TicketEvent.objects.filter(ticket=ticket).select_related("actor"))
    clocks: list[ClockView] = []
    if ticket.is_desk:
        statuses = services.clock_statuses(ticket, timezone.now())
        if statuses.first_reply is not None and ticket.first_reply_target:
            clocks.append(
                _clock_view("first_reply", statuses.first_reply, ticket.first_reply_target)
            )
        if statuses.resolution is not None and ticket.resolution_target:
            clocks.append(_clock_view("resolution", statuses.resolution, ticket.resolution_target))
    return TicketView(
        id=ticket.pk,
        subject=ticket.subject,
        channel=ticket.channel,
        channel_label=Ticket.Channel(ticket.channel).label,
        category=ticket.category,
        status=ticket.status,
        status_label=Ticket.Status(ticket.status).label,
        priority=ticket.priority,
        priority_label=Ticket.Priority(ticket.priority).label,
        priority_reasons=list(ticket.priority_reasons or []),
        is_complaint=ticket.is_complaint,
        is_desk=ticket.is_desk,
        assignee=ticket.assignee.username if ticket.assignee else "",
        assignee_id=ticket.assignee_id,
        team=ticket.team.name if ticket.team else "",
        opened_at=ticket.opened_at,
        first_response_at=ticket.first_response_at,
        solved_at=ticket.solved_at,
        satisfaction=ticket.satisfaction,
        sla_policy=ticket.sla_policy,
        escalation_level=ticket.escalation_level,
        auto_answered=ticket.auto_answered,
        order_id=ticket.order_id,
        messages=[
            MessageView(
                id=m.pk,
                direction=m.direction,
                direction_label=TicketMessage.Direction(m.direction).label,
                author=(m.author.username if m.author else m.author_label),
                body=m.body,
                created_at=m.created_at,
                is_automatic=m.faq_article_id is not None,
                delivery=m.outbox_message.status if m.outbox_message else "",
            )
            for m in messages
        ],
        events=[
            EventView(
                at=e.at,
                actor=e.actor.username if e.actor else e.actor_label,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                data=dict(e.data or {}),
            )
            for e in events
        ],
        clocks=clocks,
        profile=_profile(ticket.customer),
        suggestions=_suggestions(ticket, messages) if with_suggestions and ticket.is_desk else [],
        actions=_actions(ticket) if ticket.is_desk else [],
        may_work=bool(user.has_perm(WORK_TICKETS)) and ticket.is_desk,
    )


# ---------------------------------------------------------------------- settings


def desk_settings(*, user: Any) -> dict[str, Any]:
    """Teams, categories and SLA policies, for the pages and the API."""
    require_permission(user, VIEW_TICKETS)
    return {
        "teams": list(Team.objects.values("id", "slug", "name", "is_escalation_target")),
        "categories": list(
            Category.objects.values("id", "slug", "name", "priority", "team__slug", "is_active")
        ),
        "routing_rules": list(
            RoutingRule.objects.filter(is_active=True).values(
                "id",
                "position",
                "name",
                "channel",
                "category__slug",
                "grade",
                "priority",
                "language",
                "team__slug",
            )
        ),
        "sla_policies": list(
            SlaPolicy.objects.values(
                "id",
                "name",
                "priority",
                "grade",
                "first_reply_minutes",
                "resolution_minutes",
                "business_hours",
            )
        ),
    }
