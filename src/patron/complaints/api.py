"""REST endpoints of complaints (R-E5) and the complaint-risk early warning (R-D6).

Under ``/api/complaints``: the list (filtered by stage, severity, department, customer,
overdue), filing a complaint (the desk opens its ticket), one complaint with its timeline and
the time spent in each stage, one POST per step of the workflow, the process figures, and the
tickets and customers at risk of a complaint. Under ``/api/complaints/answers/{token}`` (no
login: the signed link is the credential) the customer reads the proposed resolution and
accepts or rejects it, once.

Thin: each endpoint calls one selector or one service, which check permissions; 403
permission, 404 unknown record or link, 409 a step the complaint's stage does not allow (or a
link already answered), 422 invalid input naming the field.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import translation
from ninja import Query, Router, Schema
from pydantic import AfterValidator, Field

from patron.apitext import MAX_ID, NO_NUL, TEXT, AwareDateTimeText
from patron.complaints import selectors, services
from patron.customer.api import ErrorOut

router = Router(tags=["complaints"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
PUBLIC_ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
MAX_TEXT = services.MAX_TEXT


def _words(value: str) -> str:
    # The services strip with Python's idea of a space, which the regex engine may not share.
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: Required free text: words, no NUL, at most ``MAX_TEXT`` characters.
Text = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT, pattern=TEXT), AfterValidator(_words)
]


def _optional(description: str = "") -> Any:
    return Field("", max_length=MAX_TEXT, pattern=NO_NUL, description=description)


class ComplaintStage(StrEnum):
    """``patron.complaints.rules.Stage`` (a test keeps the two the same)."""

    RECORDED = "recorded"
    INVESTIGATING = "investigating"
    RESOLUTION_PROPOSED = "resolution_proposed"
    ACCEPTED = "accepted"
    FOLLOW_UP_SCHEDULED = "follow_up_scheduled"
    FOLLOW_UP_DONE = "follow_up_done"
    CLOSED = "closed"


class ComplaintSeverity(StrEnum):
    """``patron.complaints.rules.Severity``."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class ComplaintChannel(StrEnum):
    """``patron.service.models.Ticket.Channel``: where the customer complained."""

    WEB = "web"
    CHAT = "chat"
    WECHAT = "wechat"
    PHONE = "phone"
    APP = "app"
    EMAIL = "email"
    SOCIAL = "social"


# ---------------------------------------------------------------------- reading


class ComplaintRowOut(Schema):
    id: int
    ticket_id: int
    customer_id: int
    customer_name: str
    order_id: int | None
    matter: str = Field(description="The start of the customer's words")
    severity: str
    stage: str
    team: str = Field(description="The department investigating")
    handler: str
    recorded_at: datetime
    stage_entered_at: datetime
    age_hours: float = Field(description="Since it was recorded (to closing, once closed)")
    stage_hours: float = Field(description="In the current stage")
    due_at: datetime | None = Field(description="When the step the stage waits for is due")
    is_overdue: bool
    overdue_step: str = Field(description="The step that is late, in words")
    proposals: int
    rejections: int = Field(description="Proposals the customer rejected (rounds of re-work)")


class ComplaintPageOut(Schema):
    count: int
    items: list[ComplaintRowOut]


class ComplaintListParams(Schema):
    stage: list[ComplaintStage] = Field(
        [], max_length=len(ComplaintStage), description="Any of the stages (default: open ones)"
    )
    severity: ComplaintSeverity | None = None
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    overdue: bool = Field(False, description="Only those whose current step is late")
    include_closed: bool = Field(False, description="With closed ones (when no stage is given)")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class ComplaintEventOut(Schema):
    at: datetime
    actor: str
    action: str
    from_stage: str
    to_stage: str
    round: int
    note: str


class ComplaintSpanOut(Schema):
    stage: str
    round: int = Field(description="The proposal being worked on (1 until the first rejection)")
    entered_at: datetime
    left_at: datetime | None = Field(description="Empty while the complaint is in this stage")
    hours: float
    target_hours: float | None
    is_over_target: bool


class ComplaintOut(Schema):
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
    total_hours: float = Field(description="From recording to closing (or now)")
    hours_per_stage: dict[str, float] = Field(description="Stage -> hours, over every round")
    spans: list[ComplaintSpanOut] = Field(description="Each stretch of time in one stage")
    events: list[ComplaintEventOut]
    allowed_actions: list[str]
    may_handle: bool


class ComplaintStatsOut(Schema):
    open_by_stage: dict[str, int]
    open_total: int
    overdue: int
    closed_last_days: int
    median_days_to_close: float | None
    mean_rejections: float | None
    median_hours_per_stage: dict[str, float]
    days: int


@router.get(
    "",
    response={200: ComplaintPageOut, **ERRORS},
    summary="Complaints, longest in their stage first",
)
def list_complaints(request: HttpRequest, params: Query[ComplaintListParams]) -> dict[str, Any]:
    count, items = selectors.complaint_list(
        user=request.user,
        filters=selectors.ComplaintFilter(
            stages=tuple(str(s) for s in params.stage),
            severity=str(params.severity or ""),
            team_id=params.team_id,
            customer_id=params.customer_id,
            is_overdue=params.overdue,
            include_closed=params.include_closed,
        ),
        limit=params.limit,
        offset=params.offset,
    )
    return {"count": count, "items": items}


@router.get(
    "/stats",
    response={200: ComplaintStatsOut, **ERRORS},
    summary="Open complaints per stage, overdue ones, and how long closed ones took",
)
def complaint_stats(
    request: HttpRequest, days: Annotated[int, Query(ge=1, le=3650)] = 90
) -> selectors.ComplaintStats:
    return selectors.complaint_stats(user=request.user, days=days)


# ---------------------------------------------------------------------- complaint risk


class ComplaintRiskRowOut(Schema):
    rank: int
    probability: float = Field(description="Chance of a complaint (hand-weighted: a 0..1 score)")
    customer_id: int
    customer_name: str
    ticket_id: int | None = Field(description="The ticket (for a customer: their riskiest)")
    ticket_subject: str
    ticket_status: str
    ticket_priority: str
    opened_at: datetime | None
    reasons: list[str] = Field(description="The features that raise the risk most, in words")
    open_tickets: int


class ComplaintAtRiskOut(Schema):
    scored_at: datetime | None = Field(description="Empty until the first refresh")
    as_of: datetime | None
    method: str = Field(description="logistic or hand_weighted (too few labelled tickets)")
    note: str
    metrics: dict[str, Any] = Field(
        description="On a time-based holdout: auc, precision_at_k, base_rate, sizes"
    )
    weights: dict[str, float]
    tickets: list[ComplaintRiskRowOut]
    customers: list[ComplaintRiskRowOut]


@router.get(
    "/at-risk",
    response={200: ComplaintAtRiskOut, **ERRORS},
    summary="Open tickets and customers most likely to escalate to a complaint, with reasons",
)
def complaints_at_risk(
    request: HttpRequest, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> selectors.AtRiskView:
    return selectors.at_risk(
        user=request.user, limit=limit, language=translation.get_language() or "en"
    )


# ---------------------------------------------------------------------- filing and the steps


class ComplaintFileIn(Schema):
    customer_id: int = Field(ge=1, le=MAX_ID)
    channel: ComplaintChannel = Field(description="Where the customer complained")
    subject: str = Field(min_length=1, max_length=services.MAX_SUBJECT, pattern=TEXT)
    matter: Text = Field(description="What the customer complains about, in their words")
    order_id: int | None = Field(None, ge=1, le=MAX_ID)
    severity: ComplaintSeverity | None = Field(None, description="Default: from the priority")
    contact: str = Field("", max_length=200, pattern=NO_NUL, description="Where replies go")


def _complaint(request: HttpRequest, complaint_id: int) -> selectors.ComplaintDetail:
    return selectors.complaint_get(user=request.user, complaint_id=complaint_id)


@router.post(
    "",
    response={201: ComplaintOut, **ERRORS},
    summary="Record a complaint: the desk opens its ticket, the complaint starts as recorded",
)
def file_complaint(
    request: HttpRequest, body: ComplaintFileIn
) -> tuple[int, selectors.ComplaintDetail]:
    complaint = services.complaint_file(
        user=request.user,
        customer_id=body.customer_id,
        channel=str(body.channel),
        subject=body.subject,
        matter=body.matter,
        order_id=body.order_id,
        severity=str(body.severity or ""),
        contact=body.contact,
    )
    return 201, _complaint(request, complaint.pk)


@router.get(
    "/{complaint_id}",
    response={200: ComplaintOut, **ERRORS},
    summary="One complaint with its timeline and the time spent in each stage",
)
def get_complaint(request: HttpRequest, complaint_id: int) -> selectors.ComplaintDetail:
    return _complaint(request, complaint_id)


class ComplaintAssignIn(Schema):
    team_id: int = Field(ge=1, le=MAX_ID, description="The department that investigates")
    handler_id: int | None = Field(None, ge=1, le=MAX_ID, description="A person in it (optional)")
    note: str = _optional()


class ComplaintProposeIn(Schema):
    findings: Text = Field(description="What the investigation found")
    resolution: Text = Field(description="The resolution proposed (sent to the customer)")


class ComplaintNoteIn(Schema):
    note: str = _optional("What the customer said (optional)")


class ComplaintReasonIn(Schema):
    reason: Text = Field(description="The customer's reason, in their words")


class ComplaintFollowUpIn(Schema):
    follow_up_at: AwareDateTimeText = Field(
        description="When the visit is (within the last 7 days or the coming year)"
    )
    note: str = _optional()


class ComplaintFollowUpDoneIn(Schema):
    notes: Text = Field(description="What the customer said at the follow-up visit")


class ComplaintCloseIn(Schema):
    outcome: Text = Field(description="How it ended (sent to the customer)")


class ComplaintLinkOut(Schema):
    link: str = Field(description="The customer's link to answer the current proposal")


@router.post(
    "/{complaint_id}/assign",
    response={200: ComplaintOut, **ERRORS},
    summary="Give the complaint to a department to investigate (again, while investigating)",
)
def assign_complaint(
    request: HttpRequest, complaint_id: int, body: ComplaintAssignIn
) -> selectors.ComplaintDetail:
    services.complaint_assign(
        user=request.user,
        complaint_id=complaint_id,
        team_id=body.team_id,
        handler_id=body.handler_id,
        note=body.note,
    )
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/propose",
    response={200: ComplaintOut, **ERRORS},
    summary="Findings and a proposed resolution; the customer gets a link to accept or reject",
)
def propose_resolution(
    request: HttpRequest, complaint_id: int, body: ComplaintProposeIn
) -> selectors.ComplaintDetail:
    services.complaint_propose(
        user=request.user,
        complaint_id=complaint_id,
        findings=body.findings,
        resolution=body.resolution,
    )
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/accept",
    response={200: ComplaintOut, **ERRORS},
    summary="Record that the customer accepted the proposed resolution",
)
def accept_resolution(
    request: HttpRequest, complaint_id: int, body: ComplaintNoteIn
) -> selectors.ComplaintDetail:
    services.complaint_accept(user=request.user, complaint_id=complaint_id, note=body.note)
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/reject",
    response={200: ComplaintOut, **ERRORS},
    summary="Record that the customer rejected it, with their reason: back to investigating",
)
def reject_resolution(
    request: HttpRequest, complaint_id: int, body: ComplaintReasonIn
) -> selectors.ComplaintDetail:
    services.complaint_reject(user=request.user, complaint_id=complaint_id, reason=body.reason)
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/schedule-follow-up",
    response={200: ComplaintOut, **ERRORS},
    summary="Schedule (or move) the follow-up visit after the customer accepted",
)
def schedule_follow_up(
    request: HttpRequest, complaint_id: int, body: ComplaintFollowUpIn
) -> selectors.ComplaintDetail:
    services.complaint_schedule_follow_up(
        user=request.user,
        complaint_id=complaint_id,
        follow_up_at=body.follow_up_at,
        note=body.note,
    )
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/complete-follow-up",
    response={200: ComplaintOut, **ERRORS},
    summary="The follow-up visit happened: what the customer said",
)
def complete_follow_up(
    request: HttpRequest, complaint_id: int, body: ComplaintFollowUpDoneIn
) -> selectors.ComplaintDetail:
    services.complaint_complete_follow_up(
        user=request.user, complaint_id=complaint_id, notes=body.notes
    )
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/close",
    response={200: ComplaintOut, **ERRORS},
    summary="Close after the follow-up visit: the ticket is solved and the customer told",
)
def close_complaint(
    request: HttpRequest, complaint_id: int, body: ComplaintCloseIn
) -> selectors.ComplaintDetail:
    services.complaint_close(user=request.user, complaint_id=complaint_id, outcome=body.outcome)
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/withdraw",
    response={200: ComplaintOut, **ERRORS},
    summary="Record that the customer withdrew the complaint (before accepting a resolution)",
)
def withdraw_complaint(
    request: HttpRequest, complaint_id: int, body: ComplaintReasonIn
) -> selectors.ComplaintDetail:
    services.complaint_withdraw(user=request.user, complaint_id=complaint_id, reason=body.reason)
    return _complaint(request, complaint_id)


@router.post(
    "/{complaint_id}/answer-link",
    response={200: ComplaintLinkOut, **ERRORS},
    summary="The customer's link to answer the current proposal, to send again (audited)",
)
def answer_link(request: HttpRequest, complaint_id: int) -> dict[str, str]:
    link = services.complaint_answer_link_issue(user=request.user, complaint_id=complaint_id)
    return {"link": link}


# ---------------------------------------------------------------------- the customer's link


class ComplaintPublicOut(Schema):
    customer_name: str
    recorded_at: datetime
    matter: str
    findings: str
    resolution: str
    round: int = Field(description="The proposal this link was sent with")
    stage: str
    is_answerable: bool = Field(description="This link can still accept or reject")
    is_replaced: bool = Field(description="A newer proposal replaced this one")
    customer_answer: str
    answered_at: datetime | None


class ComplaintCustomerAcceptIn(Schema):
    comment: str = _optional("Anything the customer wants to add (optional)")


class ComplaintCustomerRejectIn(Schema):
    reason: Text = Field(description="Why the proposal is not acceptable")


@router.get(
    "/answers/{token}",
    auth=None,
    response={200: ComplaintPublicOut, **PUBLIC_ERRORS},
    summary="The customer's view of their complaint and the proposed resolution (signed link)",
)
def public_complaint(request: HttpRequest, token: str) -> selectors.PublicComplaintView:
    return selectors.complaint_public_view(token=token)


@router.post(
    "/answers/{token}/accept",
    auth=None,
    response={200: ComplaintPublicOut, **PUBLIC_ERRORS},
    summary="The customer accepts the proposed resolution (once; signed link)",
)
def public_accept(
    request: HttpRequest, token: str, body: ComplaintCustomerAcceptIn
) -> selectors.PublicComplaintView:
    services.complaint_answer_by_link(token=token, accept=True, reason=body.comment)
    return selectors.complaint_public_view(token=token)


@router.post(
    "/answers/{token}/reject",
    auth=None,
    response={200: ComplaintPublicOut, **PUBLIC_ERRORS},
    summary="The customer rejects the proposed resolution with their reason (once; signed link)",
)
def public_reject(
    request: HttpRequest, token: str, body: ComplaintCustomerRejectIn
) -> selectors.PublicComplaintView:
    services.complaint_answer_by_link(token=token, accept=False, reason=body.reason)
    return selectors.complaint_public_view(token=token)
