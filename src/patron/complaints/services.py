"""The complaint workflow (R-E5): record, investigate, propose a resolution, the customer's
answer (re-work until they accept), the follow-up visit, closing. Each public function is one
transaction; each step is checked against ``patron.complaints.rules`` (409 when the stage does
not allow it), recorded as a ``ComplaintEvent`` (the timeline and the stage durations), written
to the audit log, and — where the customer must know — told to them through the outbox.

``user`` is a staff member holding ``complaints.change_complaint``, or ``None`` for the customer
answering through their signed link (``patron.complaints.tokens``) and for the service desk's
signal. The service desk is reached only through its public services (``ticket_open``,
``ticket_act``), imported when used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from patron.account.roles import HANDLE_COMPLAINTS
from patron.account.services import require_permission
from patron.complaints import rules, tokens
from patron.complaints.models import Complaint, ComplaintEvent
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.outbox.services import service_message
from patron.service.models import PATRON_SOURCE, Team, Ticket
from patron.workflow import audit_update, locked, transition

log = logging.getLogger(__name__)

MAX_TEXT = 4000
MAX_SUBJECT = 200
CUSTOMER_LABEL = "customer (signed link)"
DESK_LABEL = "service desk"
COMPLAINT_CATEGORY = "complaint"
#: How far ahead a follow-up visit may be scheduled, and how far back one may be recorded.
FOLLOW_UP_AHEAD = timedelta(days=366)
FOLLOW_UP_BACK = timedelta(days=7)

#: The field on ``Complaint`` that records when each stage was (last) entered.
_STAGE_TIMESTAMP: dict[str, str] = {
    rules.Stage.RECORDED: "recorded_at",
    rules.Stage.INVESTIGATING: "investigating_at",
    rules.Stage.RESOLUTION_PROPOSED: "proposed_at",
    rules.Stage.ACCEPTED: "accepted_at",
    rules.Stage.FOLLOW_UP_SCHEDULED: "follow_up_scheduled_at",
    rules.Stage.FOLLOW_UP_DONE: "follow_up_done_at",
    rules.Stage.CLOSED: "closed_at",
}


# ---------------------------------------------------------------------- small helpers


def _text(value: str | None, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    """Stripped text; blank (when required) or too long is refused naming ``field``."""
    text = (value or "").strip()
    if "\x00" in text:
        raise ValidationFailed(f"{field}: must not contain NUL characters")
    if required and not text:
        raise ValidationFailed(f"{field}: required, and must not be blank")
    if len(text) > limit:
        raise ValidationFailed(f"{field}: longer than {limit} characters")
    return text


def _actor_label(user: Any, fallback: str) -> str:
    return user.get_username() if user is not None else fallback


def _event(
    complaint: Complaint,
    *,
    user: Any,
    action: str,
    before: str,
    at: datetime,
    note: str = "",
    fallback_label: str = DESK_LABEL,
) -> ComplaintEvent:
    return ComplaintEvent.objects.create(
        complaint=complaint,
        at=at,
        actor=user,
        actor_label=_actor_label(user, fallback_label),
        action=action,
        from_stage=before,
        to_stage=complaint.stage,
        round=max(complaint.proposals, 1),
        note=note,
    )


def _audit(user: Any, complaint: Complaint, summary: str, **changes: Any) -> None:
    audit_update(
        user,
        entity_type="complaints.complaint",
        pk=complaint.pk,
        customer_id=complaint.customer_id,
        summary=summary,
        system_label=CUSTOMER_LABEL if user is None else DESK_LABEL,
        **changes,
    )


def _tell(complaint: Complaint, template: str, *, key: str, **context: Any) -> None:
    """A service message to the complainant, queued in this transaction and sent after it."""
    service_message(
        complaint.customer_id,
        template,
        key=key,
        source=f"complaints.complaint:{complaint.pk}",
        **context,
    )


def _move(complaint: Complaint, action: str, now: datetime) -> str:
    """Apply ``action`` (409 if the stage does not allow it); returns the stage before."""
    before = complaint.stage
    complaint.stage = transition(rules.complaint_next, before, action)
    if complaint.stage != before:
        complaint.stage_entered_at = now
        setattr(complaint, _STAGE_TIMESTAMP[complaint.stage], now)
    return before


def _staff(user: Any, complaint_id: int) -> Complaint:
    require_permission(user, HANDLE_COMPLAINTS)
    return locked(Complaint, complaint_id, "complaint")


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    if customer.status == Customer.Status.ERASED:
        raise Conflict(f"customer {customer_id} was erased: no complaint can be filed for them")
    return customer


def desk_service(name: str) -> Any:
    """A public service of the service desk, or ``None`` while it does not exist yet."""
    try:
        from patron.service import services as desk
    except ImportError:
        return None
    return getattr(desk, name, None)


# ---------------------------------------------------------------------- recording


def _record(
    ticket: Ticket,
    *,
    user: Any,
    matter: str = "",
    severity: str = "",
    order_id: int | None = None,
    now: datetime | None = None,
) -> tuple[Complaint, bool]:
    """The complaint of ``ticket``, created when it has none (idempotent: a second call, or
    the signal after ``complaint_file``, finds the first)."""
    existing = Complaint.objects.filter(ticket=ticket).first()
    if existing is not None:
        return existing, False
    at = now or timezone.now()
    recorded_at = ticket.opened_at or at
    complaint = Complaint(
        ticket=ticket,
        customer_id=ticket.customer_id,
        order_id=order_id if order_id is not None else ticket.order_id,
        matter=matter or ticket.subject,
        severity=severity or rules.severity_for_priority(ticket.priority),
        stage=rules.Stage.RECORDED,
        created_by=user,
        recorded_at=recorded_at,
        stage_entered_at=recorded_at,
    )
    try:
        with transaction.atomic():  # a savepoint: losing the race leaves the caller usable
            complaint.save()
    except IntegrityError:
        winner = Complaint.objects.filter(ticket=ticket).first()
        if winner is None:
            raise
        return winner, False
    _event(
        complaint,
        user=user,
        action="record",
        before="",
        at=recorded_at,
        note=f"ticket {ticket.pk}: {ticket.subject}"[:300],
    )
    _audit(
        user,
        complaint,
        f"complaint recorded from ticket {ticket.pk} ({complaint.severity})",
        ticket=ticket.pk,
        severity=complaint.severity,
    )
    return complaint, True


@transaction.atomic
def complaint_record_from_ticket(*, ticket_id: int) -> Complaint | None:
    """The receiver of the desk's ``ticket_opened``: a complaint for a ticket opened as one.
    Idempotent; ``None`` for a ticket that is not a complaint or does not exist."""
    ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
    if ticket is None or not ticket.is_complaint:
        return None
    complaint, _ = _record(ticket, user=None)
    return complaint


def complaints_reconcile() -> int:
    """Record the complaints of desk tickets marked as complaints that have none (a missed
    signal, a ticket marked later); returns how many were recorded. Safe to run twice."""
    missing = Ticket.objects.filter(
        source=PATRON_SOURCE, is_complaint=True, complaint__isnull=True
    ).values_list("pk", flat=True)
    made = 0
    for ticket_id in list(missing):
        if complaint_record_from_ticket(ticket_id=ticket_id) is not None:
            made += 1
    return made


def on_ticket_opened(sender: Any = None, *, ticket_id: int, **kwargs: Any) -> None:
    """Connected to ``patron.service.signals.ticket_opened`` (sent after the ticket's
    transaction committed). A failure is logged, never raised into the desk: the hourly job
    (``complaints_reconcile``) records what was missed."""
    try:
        complaint_record_from_ticket(ticket_id=ticket_id)
    except Exception:
        log.exception("recording the complaint of ticket %s failed", ticket_id)


@transaction.atomic
def complaint_file(
    *,
    user: Any,
    customer_id: int,
    channel: str,
    subject: str,
    matter: str,
    order_id: int | None = None,
    severity: str = "",
    contact: str = "",
) -> Complaint:
    """Staff record a complaint: the desk opens its ticket (``is_complaint``) and the complaint
    starts in ``recorded``. 409 while the desk cannot open tickets."""
    require_permission(user, HANDLE_COMPLAINTS)
    subject = _text(subject, "subject", limit=MAX_SUBJECT)
    matter = _text(matter, "matter")
    if severity and severity not in rules.Severity:
        raise ValidationFailed(f"severity: one of {', '.join(rules.Severity)}; got {severity!r}")
    if channel not in Ticket.Channel.values:
        raise ValidationFailed(
            f"channel: one of {', '.join(Ticket.Channel.values)}; got {channel!r}"
        )
    customer = _customer(customer_id)
    if order_id is not None:
        from patron.commerce.models import Order

        if not Order.objects.filter(pk=order_id, customer=customer).exists():
            raise NotFound(f"order {order_id} of customer {customer_id} not found")
    ticket_open = desk_service("ticket_open")
    if ticket_open is None:
        raise Conflict("the service desk cannot open tickets yet: try again later")
    from patron.service.models import Category

    # The desk's "complaint" category (its team and priority) when the shop keeps one.
    category = Category.objects.filter(slug=COMPLAINT_CATEGORY, is_active=True).first()
    ticket = ticket_open(
        customer_id=customer.pk,
        channel=channel,
        subject=subject,
        body=matter,
        category=category.slug if category else "",
        order_id=order_id,
        is_complaint=True,
        user=user,
        contact=contact,
    )
    complaint, _ = _record(ticket, user=user, matter=matter, severity=severity, order_id=order_id)
    return complaint


# ---------------------------------------------------------------------- the steps


@transaction.atomic
def complaint_assign(
    *,
    user: Any,
    complaint_id: int,
    team_id: int,
    handler_id: int | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Complaint:
    """Give the complaint to a department (and optionally a person in it) to investigate;
    while investigating, give it to another."""
    note = _text(note, "note", required=False)
    complaint = _staff(user, complaint_id)
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound(f"team {team_id} not found")
    handler = None
    if handler_id is not None:
        from patron.account.models import User

        handler = User.objects.filter(pk=handler_id, is_active=True).first()
        if handler is None:
            raise NotFound(f"user {handler_id} not found")
        require_permission(handler, HANDLE_COMPLAINTS)
    now = now or timezone.now()
    before = _move(complaint, rules.Action.ASSIGN, now)
    complaint.team = team
    complaint.handler = handler
    complaint.save()
    text = f"to {team.name}" + (f" ({handler.get_username()})" if handler else "")
    _event(
        complaint,
        user=user,
        action=rules.Action.ASSIGN,
        before=before,
        at=now,
        note=f"{text}\n{note}".strip(),
    )
    _audit(user, complaint, f"complaint assigned {text}", team=team.slug, handler=handler_id)
    return complaint


@transaction.atomic
def complaint_propose(
    *, user: Any, complaint_id: int, findings: str, resolution: str, now: datetime | None = None
) -> Complaint:
    """The department's findings and the resolution it proposes; the customer gets it with a
    link to accept or reject it (a new round: an earlier link no longer answers)."""
    findings = _text(findings, "findings")
    resolution = _text(resolution, "resolution")
    complaint = _staff(user, complaint_id)
    now = now or timezone.now()
    before = _move(complaint, rules.Action.PROPOSE, now)
    complaint.findings = findings
    complaint.resolution = resolution
    complaint.proposals += 1
    complaint.save()
    _event(
        complaint, user=user, action=rules.Action.PROPOSE, before=before, at=now, note=resolution
    )
    _tell(
        complaint,
        "complaint.resolution_proposed",
        key=f"complaint.proposed:{complaint.pk}:{complaint.proposals}",
        resolution=resolution,
        link=tokens.answer_url(complaint.pk, complaint.proposals),
    )
    _audit(
        user,
        complaint,
        f"resolution proposed (round {complaint.proposals})",
        round=complaint.proposals,
    )
    return complaint


def _answer(
    complaint: Complaint, *, user: Any, accepted: bool, text: str, now: datetime
) -> Complaint:
    action = rules.Action.ACCEPT if accepted else rules.Action.REJECT
    before = _move(complaint, action, now)
    complaint.customer_answer = text
    complaint.answered_at = now
    if not accepted:
        complaint.rejections += 1
    complaint.save()
    _event(
        complaint,
        user=user,
        action=action,
        before=before,
        at=now,
        note=text,
        fallback_label=CUSTOMER_LABEL,
    )
    _audit(
        user,
        complaint,
        f"the customer {'accepted' if accepted else 'rejected'} the resolution "
        f"(round {complaint.proposals})" + ("" if user is None else ", recorded by staff"),
        round=complaint.proposals,
    )
    return complaint


@transaction.atomic
def complaint_accept(
    *, user: Any, complaint_id: int, note: str = "", now: datetime | None = None
) -> Complaint:
    """Staff record that the customer accepted the proposal (on the phone, in the chat …)."""
    note = _text(note, "note", required=False)
    complaint = _staff(user, complaint_id)
    return _answer(complaint, user=user, accepted=True, text=note, now=now or timezone.now())


@transaction.atomic
def complaint_reject(
    *, user: Any, complaint_id: int, reason: str, now: datetime | None = None
) -> Complaint:
    """Staff record that the customer rejected the proposal, with the customer's reason: the
    complaint goes back to the department for another round."""
    reason = _text(reason, "reason")
    complaint = _staff(user, complaint_id)
    return _answer(complaint, user=user, accepted=False, text=reason, now=now or timezone.now())


@transaction.atomic
def complaint_answer_by_link(
    *, token: str, accept: bool, reason: str = "", now: datetime | None = None
) -> Complaint:
    """The customer's answer through their link: once, and only to the proposal the link was
    sent with (403 expired link, 404 invalid, 409 already answered or replaced)."""
    link = tokens.answer_link(token)
    reason = _text(reason, "reason", required=not accept)
    complaint = locked(Complaint, link.complaint_id, "complaint")
    if complaint.proposals != link.round:
        raise Conflict(
            "this proposal was replaced by a newer one: use the link in the latest message"
        )
    if complaint.stage != rules.Stage.RESOLUTION_PROPOSED:
        raise Conflict("this proposal was already answered: thank you")
    return _answer(complaint, user=None, accepted=accept, text=reason, now=now or timezone.now())


@transaction.atomic
def complaint_schedule_follow_up(
    *,
    user: Any,
    complaint_id: int,
    follow_up_at: datetime,
    note: str = "",
    now: datetime | None = None,
) -> Complaint:
    """Schedule (or move) the follow-up visit after the customer accepted."""
    note = _text(note, "note", required=False)
    if timezone.is_naive(follow_up_at):
        raise ValidationFailed("follow_up_at: a time with its time zone is required")
    now = now or timezone.now()
    if not now - FOLLOW_UP_BACK <= follow_up_at <= now + FOLLOW_UP_AHEAD:
        raise ValidationFailed("follow_up_at: must be within the last 7 days or the coming year")
    complaint = _staff(user, complaint_id)
    before = _move(complaint, rules.Action.SCHEDULE_FOLLOW_UP, now)
    complaint.follow_up_at = follow_up_at
    complaint.save()
    _event(
        complaint,
        user=user,
        action=rules.Action.SCHEDULE_FOLLOW_UP,
        before=before,
        at=now,
        note=f"visit at {timezone.localtime(follow_up_at):%Y-%m-%d %H:%M}\n{note}".strip(),
    )
    _audit(user, complaint, "follow-up visit scheduled", follow_up_at=follow_up_at.isoformat())
    return complaint


@transaction.atomic
def complaint_complete_follow_up(
    *, user: Any, complaint_id: int, notes: str, now: datetime | None = None
) -> Complaint:
    """The follow-up visit happened: what the customer said."""
    notes = _text(notes, "notes")
    complaint = _staff(user, complaint_id)
    now = now or timezone.now()
    before = _move(complaint, rules.Action.COMPLETE_FOLLOW_UP, now)
    complaint.follow_up_notes = notes
    complaint.save()
    _event(
        complaint,
        user=user,
        action=rules.Action.COMPLETE_FOLLOW_UP,
        before=before,
        at=now,
        note=notes,
    )
    _audit(user, complaint, "follow-up visit done")
    return complaint


def _solve_ticket(complaint: Complaint, *, user: Any, note: str) -> str:
    """Solve the complaint's ticket through the desk; what happened, for the timeline."""
    ticket = Ticket.objects.filter(pk=complaint.ticket_id).values_list("status", flat=True).first()
    if ticket in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        return f"ticket {complaint.ticket_id} was already {ticket}"
    ticket_act = desk_service("ticket_act")
    if ticket_act is None:
        return (
            f"ticket {complaint.ticket_id} left as it is (the desk cannot solve it from here yet)"
        )
    try:
        with transaction.atomic():
            # As another app (user None): the complaint's own permission was checked, and
            # handling complaints does not need the desk's.
            who = user.get_username() if user is not None else "the customer"
            ticket_act(
                complaint.ticket_id,
                "solve",
                user=None,
                actor_label=f"complaints ({who})",
                note=note,
            )
    except PatronError as error:
        return f"ticket {complaint.ticket_id} not solved: {error.message}"
    return f"ticket {complaint.ticket_id} solved"


def _finish(
    complaint: Complaint, *, user: Any, action: str, outcome: str, now: datetime
) -> Complaint:
    before = _move(complaint, action, now)
    complaint.outcome = outcome
    complaint.save()
    ticket_note = _solve_ticket(complaint, user=user, note=f"complaint {complaint.pk}: {outcome}")
    _event(
        complaint,
        user=user,
        action=action,
        before=before,
        at=now,
        note=f"{outcome}\n({ticket_note})",
    )
    _tell(complaint, "complaint.closed", key=f"complaint.closed:{complaint.pk}", outcome=outcome)
    _audit(user, complaint, f"complaint {action} ({ticket_note})"[:300])
    return complaint


@transaction.atomic
def complaint_close(
    *, user: Any, complaint_id: int, outcome: str, now: datetime | None = None
) -> Complaint:
    """Close after the follow-up visit: the ticket is solved and the customer told."""
    outcome = _text(outcome, "outcome")
    complaint = _staff(user, complaint_id)
    return _finish(
        complaint, user=user, action=rules.Action.CLOSE, outcome=outcome, now=now or timezone.now()
    )


@transaction.atomic
def complaint_withdraw(
    *, user: Any, complaint_id: int, reason: str, now: datetime | None = None
) -> Complaint:
    """The customer withdrew the complaint before accepting a resolution (staff record it with
    the customer's reason): closed, the ticket solved, the customer told."""
    reason = _text(reason, "reason")
    complaint = _staff(user, complaint_id)
    return _finish(
        complaint,
        user=user,
        action=rules.Action.WITHDRAW,
        outcome=f"withdrawn by the customer: {reason}",
        now=now or timezone.now(),
    )


@transaction.atomic
def complaint_answer_link_issue(*, user: Any, complaint_id: int) -> str:
    """The customer's link to answer the current proposal, for staff to send again. The link
    answers for the customer, so handing it out is audited."""
    complaint = _staff(user, complaint_id)
    if complaint.stage != rules.Stage.RESOLUTION_PROPOSED:
        raise Conflict(
            f"complaint {complaint_id} is {complaint.stage.replace('_', ' ')}: "
            "there is no proposal waiting for the customer's answer"
        )
    from patron.audit.services import AuditEntry, audit_record

    audit_record(
        AuditEntry(
            action="access",
            entity_type="complaints.answer_link",
            entity_id=str(complaint.pk),
            customer_id=complaint.customer_id,
            summary=f"answer link issued for round {complaint.proposals}",
        ),
        actor=user,
    )
    return tokens.answer_url(complaint.pk, complaint.proposals)


# ---------------------------------------------------------------------- the steps by name


@dataclass(frozen=True)
class StepInput:
    """What a step may carry; each step reads the fields it needs."""

    team_id: int | None = None
    handler_id: int | None = None
    note: str = ""
    findings: str = ""
    resolution: str = ""
    reason: str = ""
    follow_up_at: datetime | None = None
    notes: str = ""
    outcome: str = ""


def complaint_act(*, user: Any, complaint_id: int, action: str, data: StepInput) -> Complaint:
    """Carry out one step by its name (the pages' forms): the service of that step."""
    if action == rules.Action.ASSIGN:
        if data.team_id is None:
            raise ValidationFailed("team_id: choose the department that investigates")
        return complaint_assign(
            user=user,
            complaint_id=complaint_id,
            team_id=data.team_id,
            handler_id=data.handler_id,
            note=data.note,
        )
    if action == rules.Action.PROPOSE:
        return complaint_propose(
            user=user, complaint_id=complaint_id, findings=data.findings, resolution=data.resolution
        )
    if action == rules.Action.ACCEPT:
        return complaint_accept(user=user, complaint_id=complaint_id, note=data.note)
    if action == rules.Action.REJECT:
        return complaint_reject(user=user, complaint_id=complaint_id, reason=data.reason)
    if action == rules.Action.SCHEDULE_FOLLOW_UP:
        if data.follow_up_at is None:
            raise ValidationFailed("follow_up_at: the date and time of the visit is required")
        return complaint_schedule_follow_up(
            user=user, complaint_id=complaint_id, follow_up_at=data.follow_up_at, note=data.note
        )
    if action == rules.Action.COMPLETE_FOLLOW_UP:
        return complaint_complete_follow_up(user=user, complaint_id=complaint_id, notes=data.notes)
    if action == rules.Action.CLOSE:
        return complaint_close(user=user, complaint_id=complaint_id, outcome=data.outcome)
    if action == rules.Action.WITHDRAW:
        return complaint_withdraw(user=user, complaint_id=complaint_id, reason=data.reason)
    raise ValidationFailed(f"action: one of {', '.join(rules.ACTIONS)}; got {action!r}")
