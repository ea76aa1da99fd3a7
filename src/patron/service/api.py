"""REST endpoints of the service desk, under ``/api/service``.

The queue (sorted by SLA urgency, with the same filters as the page), one ticket with its
conversation, clocks and the customer's profile, and each thing an agent does: open a ticket
for a customer, reply (through the customer's channel), add an internal note, claim, assign,
override the priority, escalate, and move the ticket through its states. The SLA policies and
the desk's settings are read here and edited by managers.

Thin: each endpoint calls one selector or one service, which check permissions; 403
permission, 404 unknown ticket, 409 a move the ticket's state does not allow or a ticket
someone else claimed first, 422 invalid input.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field, StrictBool

from patron.account.roles import MANAGE_DESK
from patron.account.services import require_permission
from patron.apitext import MAX_ID, NO_NUL, SLUG, TEXT
from patron.customer.api import ErrorOut
from patron.errors import NotFound
from patron.service import selectors, services
from patron.service.models import SlaPolicy
from patron.workflow import MAX_REASON, audit_update

router = Router(tags=["service"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


class TicketChannel(StrEnum):
    WEB = "web"
    CHAT = "chat"
    WECHAT = "wechat"
    PHONE = "phone"
    APP = "app"
    EMAIL = "email"
    SOCIAL = "social"


class TicketPriority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class TicketAction(StrEnum):
    OPEN = "open"
    HOLD = "hold"
    RESUME = "resume"
    SOLVE = "solve"
    CLOSE = "close"
    REOPEN = "reopen"
    REPLY_WAIT = "reply_wait"


class QueueParams(Schema):
    status: str = Field(
        "live", pattern=NO_NUL, description="live (not solved or closed), all, or one status"
    )
    channel: TicketChannel | None = None
    category: str = Field("", max_length=40, pattern=NO_NUL)
    priority: TicketPriority | None = None
    grade: str = Field("", pattern=NO_NUL, description="core, potential or ordinary")
    assignee: str = Field("", pattern=NO_NUL, description="me, none or a user id")
    team: str = Field("", max_length=40, pattern=NO_NUL)
    q: str = Field("", max_length=200, pattern=NO_NUL)
    breached: bool = False
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class QueueRowOut(Schema):
    id: int
    subject: str
    customer_id: int
    customer_name: str
    grade: str
    channel: str
    category: str
    status: str
    priority: str
    is_complaint: bool
    assignee: str
    team: str
    opened_at: datetime
    updated_at: datetime
    due_at: datetime | None
    minutes_left: int | None
    is_breached: bool
    escalation_level: int


class QueuePageOut(Schema):
    total: int
    items: list[QueueRowOut]


class TicketMessageOut(Schema):
    id: int
    direction: str
    author: str
    body: str
    created_at: datetime
    is_automatic: bool
    delivery: str


class TicketClockOut(Schema):
    name: str
    target_minutes: int
    elapsed_minutes: int
    remaining_minutes: int
    due_at: datetime | None
    is_paused: bool
    is_met: bool
    is_breached: bool
    is_warning: bool


class TicketEventOut(Schema):
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    note: str
    data: dict[str, Any]


class TicketProfileOut(Schema):
    customer_id: int
    name: str
    grade: str
    clv_12m: float | None
    churn_probability: float | None
    credit_score: int | None
    certification: str
    recent_orders: list[dict[str, Any]]
    open_returns: list[dict[str, Any]]
    past_tickets: list[dict[str, Any]]
    csat_average: float | None


class DeskTicketOut(Schema):
    id: int
    subject: str
    channel: str
    category: str
    status: str
    priority: str
    priority_reasons: list[Any]
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
    messages: list[TicketMessageOut]
    events: list[TicketEventOut]
    clocks: list[TicketClockOut]
    profile: TicketProfileOut
    suggestions: list[dict[str, Any]]
    actions: list[str]


class TicketCreateIn(Schema):
    customer_id: int = Field(ge=1, le=MAX_ID)
    channel: TicketChannel
    subject: str = Field(min_length=1, max_length=services.MAX_SUBJECT, pattern=TEXT)
    body: str = Field(min_length=1, max_length=services.MAX_BODY, pattern=TEXT)
    category: str = Field("", max_length=40, pattern=r"^[-a-z0-9_]*$")
    order_id: int | None = Field(None, ge=1, le=MAX_ID)
    is_complaint: StrictBool = False


class TicketReplyIn(Schema):
    body: str = Field(min_length=1, max_length=services.MAX_BODY, pattern=TEXT)
    wait_for_customer: StrictBool = True


class TicketNoteIn(Schema):
    body: str = Field(min_length=1, max_length=services.MAX_BODY, pattern=TEXT)


class TicketActIn(Schema):
    note: str = Field("", max_length=2000, pattern=NO_NUL)


class TicketAssignIn(Schema):
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID, description="None: back to the queue")
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)


class TicketPriorityIn(Schema):
    priority: TicketPriority
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)


class TicketEscalateIn(Schema):
    team: str = Field(min_length=1, max_length=40, pattern=SLUG)
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=TEXT)


class SlaPolicyOut(Schema):
    id: int
    name: str
    priority: str
    grade: str
    first_reply_minutes: int
    resolution_minutes: int
    business_hours: bool


class RoutingRuleOut(Schema):
    """One rule of the routing list (edited in the admin): empty conditions match anything."""

    id: int
    position: int
    name: str
    channel: str
    category: str | None
    grade: str
    priority: str
    language: str
    team: str


class SlaPolicyPatchIn(Schema):
    first_reply_minutes: int | None = Field(None, ge=1, le=525_600)
    resolution_minutes: int | None = Field(None, ge=1, le=525_600)
    business_hours: StrictBool | None = None


class SlaWatchOut(Schema):
    checked: int
    warned: int
    breached: int
    escalated: int


def _ticket(view: selectors.TicketView) -> dict[str, Any]:
    return dataclasses.asdict(view)


@router.get("/tickets", response={200: QueuePageOut, **ERRORS})
def list_tickets(request: HttpRequest, params: Query[QueueParams]) -> dict[str, Any]:
    """The queue, most urgent first (earliest running SLA deadline, then oldest)."""
    filters = selectors.QueueFilters(
        status=params.status,
        channel=params.channel.value if params.channel else "",
        category=params.category,
        priority=params.priority.value if params.priority else "",
        grade=params.grade,
        assignee=params.assignee,
        team=params.team,
        q=params.q,
        breached=params.breached,
    )
    rows, total = selectors.ticket_queue(
        user=request.user, filters=filters, limit=params.limit, offset=params.offset
    )
    return {"total": total, "items": [dataclasses.asdict(r) for r in rows]}


@router.post("/tickets", response={201: DeskTicketOut, **ERRORS})
def create_ticket(request: HttpRequest, body: TicketCreateIn) -> tuple[int, dict[str, Any]]:
    """Open a ticket for a customer (a call, a walk-in): routed and timed like any other."""
    ticket = services.ticket_open(
        customer_id=body.customer_id,
        channel=body.channel.value,
        subject=body.subject,
        body=body.body,
        category=body.category,
        order_id=body.order_id,
        is_complaint=body.is_complaint,
        user=request.user,
    )
    return 201, _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket.pk))


@router.get("/tickets/{ticket_id}", response={200: DeskTicketOut, **ERRORS})
def get_ticket(request: HttpRequest, ticket_id: int) -> dict[str, Any]:
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/reply", response={200: DeskTicketOut, **ERRORS})
def reply_ticket(request: HttpRequest, ticket_id: int, body: TicketReplyIn) -> dict[str, Any]:
    """Reply through the customer's channel (stops the first-reply clock)."""
    services.ticket_reply(
        ticket_id, user=request.user, body=body.body, wait_for_customer=body.wait_for_customer
    )
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/notes", response={200: DeskTicketOut, **ERRORS})
def note_ticket(request: HttpRequest, ticket_id: int, body: TicketNoteIn) -> dict[str, Any]:
    """An internal note, never sent to the customer."""
    services.ticket_note(ticket_id, user=request.user, body=body.body)
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/claim", response={200: DeskTicketOut, **ERRORS})
def claim_ticket(request: HttpRequest, ticket_id: int) -> dict[str, Any]:
    """Take an unassigned ticket; 409 when someone else took it first."""
    services.ticket_claim(ticket_id, user=request.user)
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/assign", response={200: DeskTicketOut, **ERRORS})
def assign_ticket(request: HttpRequest, ticket_id: int, body: TicketAssignIn) -> dict[str, Any]:
    services.ticket_assign(
        ticket_id, user=request.user, assignee_id=body.assignee_id, reason=body.reason
    )
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/priority", response={200: DeskTicketOut, **ERRORS})
def prioritise_ticket(
    request: HttpRequest, ticket_id: int, body: TicketPriorityIn
) -> dict[str, Any]:
    """Override the priority with a reason; the SLA targets follow."""
    services.ticket_set_priority(
        ticket_id, user=request.user, priority=body.priority.value, reason=body.reason
    )
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/escalate", response={200: DeskTicketOut, **ERRORS})
def escalate_ticket(request: HttpRequest, ticket_id: int, body: TicketEscalateIn) -> dict[str, Any]:
    """To a department or expert queue; the customer is told."""
    services.ticket_escalate(ticket_id, user=request.user, team_slug=body.team, reason=body.reason)
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.post("/tickets/{ticket_id}/actions/{action}", response={200: DeskTicketOut, **ERRORS})
def act_on_ticket(
    request: HttpRequest, ticket_id: int, action: TicketAction, body: TicketActIn
) -> dict[str, Any]:
    """Move the ticket: open, hold, resume, solve, close, reopen, reply_wait (409 when its
    state does not allow it)."""
    services.ticket_act(ticket_id, action.value, user=request.user, note=body.note)
    return _ticket(selectors.ticket_detail(user=request.user, ticket_id=ticket_id))


@router.get("/sla-policies", response={200: list[SlaPolicyOut], **ERRORS})
def list_sla_policies(request: HttpRequest) -> list[dict[str, Any]]:
    """The SLA table: the most specific row (grade and priority, grade, priority, default)
    gives a ticket its first-reply and resolution targets."""
    return list(selectors.desk_settings(user=request.user)["sla_policies"])


@router.get("/routing-rules", response={200: list[RoutingRuleOut], **ERRORS})
def list_routing_rules(request: HttpRequest) -> list[dict[str, Any]]:
    """The active routing rules, read top to bottom: the first that matches a new ticket's
    channel, category, grade, priority and language sends it to its team."""
    rows = selectors.desk_settings(user=request.user)["routing_rules"]
    return [{"category": row["category__slug"], "team": row["team__slug"], **row} for row in rows]


@router.patch("/sla-policies/{policy_id}", response={200: SlaPolicyOut, **ERRORS})
def update_sla_policy(
    request: HttpRequest, policy_id: int, body: SlaPolicyPatchIn
) -> dict[str, Any]:
    """Change a policy's targets (new tickets get them; open tickets keep theirs)."""
    require_permission(request.user, MANAGE_DESK)
    policy = SlaPolicy.objects.filter(pk=policy_id).first()
    if policy is None:
        raise NotFound(f"SLA policy {policy_id} not found")
    changes = body.dict(exclude_none=True)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()
    audit_update(
        request.user,
        entity_type="service.slapolicy",
        pk=policy.pk,
        customer_id=None,
        summary=f"SLA policy {policy.name} changed",
        system_label="service desk",
        **changes,
    )
    return {
        "id": policy.pk,
        "name": policy.name,
        "priority": policy.priority,
        "grade": policy.grade,
        "first_reply_minutes": policy.first_reply_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "business_hours": policy.business_hours,
    }


@router.post("/sla/watch", response={200: SlaWatchOut, **ERRORS})
def run_sla_watch(request: HttpRequest) -> dict[str, Any]:
    """Run the SLA watch now (the scheduler runs it every minute)."""
    require_permission(request.user, MANAGE_DESK)
    return dataclasses.asdict(services.sla_watch())
