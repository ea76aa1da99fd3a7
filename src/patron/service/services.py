"""The service desk's actions: open a ticket from any channel, reply, note, move it through its
states, claim and assign, override the priority, escalate, and watch the SLA clocks.

Every action runs in one transaction with the ticket row locked, records a ``TicketEvent`` and
an audit entry, and tells other apps through ``patron.service.signals`` after commit. The rules
(state machine, calendar, clocks, priority) are pure functions in ``patron.service.rules``.

Clocks. The first-reply clock runs from opening to the first reply a person (or the FAQ) sends.
The resolution clock runs from opening to solving and pauses while the ticket waits on the
customer, is on hold, or is solved (a reopen resumes it): ``Ticket.sla_pauses`` keeps the
intervals. ``Ticket.due_at`` is the earliest deadline still running, so the queue sorts by it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from patron.account.roles import MANAGE_DESK, WORK_TICKETS
from patron.account.services import require_permission
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.intelligence.text import sentiment_of
from patron.privacy.crypto import lookup_hash
from patron.scoring.models import CustomerScore
from patron.service import rules, signals
from patron.service.models import (
    PATRON_SOURCE,
    AgentProfile,
    BusinessHours,
    Category,
    ChannelIdentity,
    DedicatedAgent,
    Holiday,
    PossibleDuplicate,
    RoutingRule,
    SlaPolicy,
    Team,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from patron.workflow import audit_update, locked, reason_text, transition

logger = logging.getLogger(__name__)

MAX_SUBJECT = 200
MAX_BODY = 20_000
#: Statuses in which a ticket is waiting for someone at the desk (counted as load).
WORKING = (Ticket.Status.NEW, Ticket.Status.OPEN, Ticket.Status.ON_HOLD)
#: Statuses a ticket can still receive messages in.
LIVE = (Ticket.Status.NEW, Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.ON_HOLD)
#: Ticket channel -> outbox channel its replies go out on (web form and chat: the customer's
#: preferred reachable channel, with the link to the ticket's page).
REPLY_CHANNEL: dict[str, str | None] = {
    Ticket.Channel.EMAIL: "email",
    Ticket.Channel.WECHAT: "wechat",
    Ticket.Channel.APP: "app",
    Ticket.Channel.PHONE: "sms",
    Ticket.Channel.SOCIAL: None,
    Ticket.Channel.WEB: None,
    Ticket.Channel.CHAT: None,
}
#: Identity kinds a channel names its customers by.
IDENTITY_KINDS = ("email", "phone", "wechat", "app", "social")
DEFAULT_HOURS = tuple((day, "09:00", "21:00") for day in range(7))


# ---------------------------------------------------------------------- calendar and clocks


def business_calendar(*, business_hours: bool = True) -> rules.BusinessCalendar:
    """The desk's calendar from its tables (``DEFAULT_HOURS`` while none are set)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    if not business_hours:
        return rules.BusinessCalendar.always_open(zone)
    weekly: dict[int, list[tuple[Any, Any]]] = {day: [] for day in range(7)}
    rows = list(BusinessHours.objects.values_list("weekday", "opens", "closes"))
    if not rows:
        rows = [
            (day, datetime.strptime(a, "%H:%M").time(), datetime.strptime(b, "%H:%M").time())
            for day, a, b in DEFAULT_HOURS
        ]
    for weekday, opens, closes in rows:
        weekly[weekday].append((opens, closes))
    holidays = Holiday.objects.values_list("date", "is_workday")
    return rules.BusinessCalendar(
        zone=zone,
        hours={day: tuple(sorted(spans)) for day, spans in weekly.items()},
        holidays=frozenset(d for d, is_workday in holidays if not is_workday),
        workdays=frozenset(d for d, is_workday in holidays if is_workday),
    )


class Calendars:
    """Both calendars, loaded once per batch of tickets."""

    def __init__(self) -> None:
        self._cache: dict[bool, rules.BusinessCalendar] = {}

    def get(self, business_hours: bool) -> rules.BusinessCalendar:
        if business_hours not in self._cache:
            self._cache[business_hours] = business_calendar(business_hours=business_hours)
        return self._cache[business_hours]


def _pauses(ticket: Ticket) -> tuple[tuple[datetime, datetime | None], ...]:
    return tuple(
        (
            datetime.fromisoformat(start),
            datetime.fromisoformat(end) if end else None,
        )
        for start, end in ticket.sla_pauses or []
    )


def clocks_of(ticket: Ticket) -> tuple[rules.Clock | None, rules.Clock | None]:
    """The first-reply and resolution clocks of a desk ticket (None without a target)."""
    first = (
        rules.Clock(
            target_minutes=ticket.first_reply_target,
            started_at=ticket.opened_at,
            pauses=(),
            stopped_at=ticket.first_response_at,
        )
        if ticket.first_reply_target
        else None
    )
    resolution = (
        rules.Clock(
            target_minutes=ticket.resolution_target,
            started_at=ticket.opened_at,
            pauses=_pauses(ticket),
            stopped_at=ticket.closed_at,
        )
        if ticket.resolution_target
        else None
    )
    return first, resolution


@dataclass(frozen=True)
class Clocks:
    first_reply: rules.ClockStatus | None
    resolution: rules.ClockStatus | None


def clock_statuses(ticket: Ticket, now: datetime, calendars: Calendars | None = None) -> Clocks:
    calendar = (calendars or Calendars()).get(ticket.sla_business_hours)
    first, resolution = clocks_of(ticket)
    return Clocks(
        first_reply=rules.clock_status(first, now, calendar) if first else None,
        resolution=rules.clock_status(resolution, now, calendar) if resolution else None,
    )


def _refresh_due(ticket: Ticket, now: datetime, calendars: Calendars | None = None) -> None:
    """Recompute the deadlines after anything that moves them: ``due_at`` (the queue's sort
    key) and ``sla_check_at`` (when the watch must next look: a warning or breach not yet
    fired)."""
    if not ticket.is_desk:
        return
    clocks = clock_statuses(ticket, now, calendars)
    fired = set(ticket.sla_fired or [])
    first = clocks.first_reply
    resolution = clocks.resolution
    ticket.first_reply_due_at = first.due_at if first and not first.stopped else None
    ticket.resolution_due_at = (
        resolution.due_at
        if resolution and not resolution.stopped and not resolution.paused
        else None
    )
    running = [d for d in (ticket.first_reply_due_at, ticket.resolution_due_at) if d is not None]
    ticket.due_at = min(running) if running else None
    checks = []
    for name, status in (("first_reply", first), ("resolution", resolution)):
        if status is None or status.stopped or status.paused:
            continue
        if f"{name}:{rules.WARN}" not in fired and status.warning_at is not None:
            checks.append(status.warning_at)
        if f"{name}:{rules.ESCALATE}" not in fired and status.due_at is not None:
            checks.append(status.due_at)
    ticket.sla_check_at = min(checks) if checks else None


def _pause(ticket: Ticket, now: datetime) -> None:
    pauses = list(ticket.sla_pauses or [])
    if not pauses or pauses[-1][1] is not None:
        pauses.append([now.isoformat(), None])
    ticket.sla_pauses = pauses


def _resume(ticket: Ticket, now: datetime) -> None:
    pauses = list(ticket.sla_pauses or [])
    if pauses and pauses[-1][1] is None:
        pauses[-1] = [pauses[-1][0], now.isoformat()]
    ticket.sla_pauses = pauses


# ---------------------------------------------------------------------- facts about the customer


def grade_of(customer_id: int) -> str | None:
    """The customer's latest grade, or None before the first scoring run (the desk works
    without scores: no grade means no grade-based priority or SLA)."""
    grade = (
        CustomerScore.objects.filter(customer_id=customer_id)
        .values_list("grade", flat=True)
        .first()
    )
    return grade or None


@dataclass(frozen=True)
class GradeService:
    """What the measures by grade (R-G2, ``patron.care``) promise a grade at the desk."""

    priority_handling: bool
    dedicated_line: bool


def grade_service(grade: str | None) -> GradeService:
    """The care policy's row for the grade, as staff set it; its shipped defaults (core only)
    while the row does not exist yet; nothing for a customer with no grade."""
    if grade is None:
        return GradeService(priority_handling=False, dedicated_line=False)
    from patron.care.models import GradeMeasure
    from patron.care.rules import DEFAULT_MEASURES

    row = (
        GradeMeasure.objects.filter(grade=grade)
        .values_list("has_priority_handling", "has_dedicated_line")
        .first()
    )
    if row is None:
        default = DEFAULT_MEASURES.get(grade)
        row = (default.has_priority_handling, default.has_dedicated_line) if default else None
    return GradeService(*row) if row else GradeService(False, False)


def sla_rows() -> list[rules.SlaPolicyRow]:
    rows = [
        rules.SlaPolicyRow(
            name=p.name,
            priority=p.priority or None,
            grade=p.grade or None,
            first_reply_minutes=p.first_reply_minutes,
            resolution_minutes=p.resolution_minutes,
            business_hours=p.business_hours,
        )
        for p in SlaPolicy.objects.all()
    ]
    return rows or list(rules.DEFAULT_POLICIES)


# ---------------------------------------------------------------------- contacts


def _identity_canon(kind: str, value: str) -> str:
    value = (value or "").strip()
    return value.lower() if kind == "email" else value


def contact_resolve(*, kind: str, value: str, name: str = "") -> Customer:
    """The customer a channel identity names; a new contact when none does.

    Looked up in this order: the identity table, then the customer file's e-mail or phone
    (an imported customer writing in for the first time). A new contact whose name matches an
    existing customer is flagged as a possible duplicate for a person to merge; nothing is
    merged by itself."""
    if kind not in IDENTITY_KINDS:
        raise ValidationFailed(
            f"identity kind {kind!r} is unknown; use one of {', '.join(IDENTITY_KINDS)}"
        )
    for what, text in (("identity value", value), ("name", name)):
        if "\x00" in (text or ""):  # PostgreSQL refuses NUL in text: a 422, not a 500
            raise ValidationFailed(f"{what}: contains a NUL character")
    value = _identity_canon(kind, value)
    if not value:
        raise ValidationFailed(f"identity {kind}: a value is required")
    if len(value) > 320:
        raise ValidationFailed(f"identity {kind}: longer than 320 characters")
    hash_kind = kind if kind in ("email", "phone") else "exact"  # an OpenID's case matters
    digest = lookup_hash(value, kind=hash_kind)
    found = ChannelIdentity.objects.filter(kind=kind, value_hash=digest).first()
    if found is not None:
        return found.customer
    customer = None
    if kind == "email":
        customer = Customer.objects.filter(email_hash=digest).order_by("id").first()
    elif kind == "phone":
        customer = Customer.objects.filter(phone_hash=digest).order_by("id").first()
    is_new = customer is None
    if customer is None:
        customer = Customer.objects.create(
            source="service",
            external_id=f"{kind}-{digest[:24]}",
            name=(name or "").strip()[:200] or value[:40],
            email=value if kind == "email" else "",
            email_hash=digest if kind == "email" else "",
            phone=value if kind == "phone" else "",
            phone_hash=digest if kind == "phone" else "",
        )
    with transaction.atomic():
        ChannelIdentity.objects.get_or_create(
            kind=kind, value_hash=digest, defaults={"customer": customer, "value": value}
        )
    if is_new and name.strip():
        for other in Customer.objects.filter(name=name.strip()).exclude(pk=customer.pk)[:5]:
            PossibleDuplicate.objects.get_or_create(
                customer=customer,
                candidate=other,
                defaults={"reason": f"same name as customer {other.pk}, new {kind} contact"},
            )
    return customer


# ---------------------------------------------------------------------- opening


def _text(value: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(f"{what}: required")
    if len(text) > limit:
        raise ValidationFailed(f"{what}: longer than {limit} characters")
    if "\x00" in text:
        raise ValidationFailed(f"{what}: contains a NUL character")
    return text


def _category(slug: str) -> Category | None:
    if not slug:
        return None
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        known = ", ".join(Category.objects.values_list("slug", flat=True)) or "none yet"
        raise ValidationFailed(f"category {slug!r} is unknown; known: {known}")
    return category


#: Certified customers of this rank or above (verified with good credit, verified business)
#: are served one step sooner: certification feeds service priority (R-H2).
CERTIFIED_PRIORITY_RANK = 2


def _certified(
    customer_id: int, priority: str, reasons: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    from patron.certification.selectors import certification_of

    held = certification_of(customer_id)
    if held is None or held.rank < CERTIFIED_PRIORITY_RANK or priority == "urgent":
        return priority, reasons
    raised = rules.PRIORITIES[rules.PRIORITIES.index(priority) + 1]
    reasons.append(
        {
            "template": "Certified customer ({level}): raised one step to {priority}.",
            "params": {"level": held.level_name_en or held.level_name, "priority": raised},
        }
    )
    return raised, reasons


def _routing_rows() -> list[rules.RouteRow]:
    return [
        rules.RouteRow(
            position=row.position,
            team=str(row.team_id),
            channel=row.channel,
            category=row.category.slug if row.category else "",
            grade=row.grade,
            priority=row.priority,
            language=row.language,
            name=row.name,
        )
        for row in RoutingRule.objects.filter(is_active=True).select_related("category")
    ]


def _route(
    ticket: Ticket,
    *,
    grade: str | None,
    category: Category | None,
    text: str,
    now: datetime,
    dedicated_line: bool,
) -> str:
    """Assign a new ticket: a core customer's dedicated agent; else the team of the first
    routing rule that matches (channel, category, grade, priority, language), or the category's
    team; there, the least-loaded available agent on shift now, with the category among their
    skills (or no skills listed) and the message's language among theirs (or none listed).
    Returns why, for the ticket's history; no one free leaves it in the team's queue."""
    ticket.team = category.team if category else None
    language = rules.language_of(text)
    rule = rules.route_for(
        _routing_rows(),
        channel=ticket.channel,
        category=ticket.category,
        grade=grade,
        priority=ticket.priority,
        language=language,
    )
    why = ""
    if rule is not None:
        ticket.team = Team.objects.get(pk=int(rule.team))
        why = f"routing rule “{rule.name}” → {ticket.team.name}; "
    if dedicated_line:
        dedicated = (
            DedicatedAgent.objects.select_related("user")
            .filter(customer_id=ticket.customer_id, user__is_active=True)
            .first()
        )
        if dedicated is not None:
            ticket.assignee = dedicated.user
            return why + (
                f"{grade} customer with a dedicated line: to their agent {dedicated.user.username}"
            )
    agents = AgentProfile.objects.filter(is_available=True, user__is_active=True)
    if ticket.team is not None:
        agents = agents.filter(team=ticket.team)
    loads = agents.annotate(
        load=Count("user__assigned_tickets", filter=Q(user__assigned_tickets__status__in=WORKING))
    ).order_by("load", "user_id")
    local = timezone.localtime(now, ZoneInfo(settings.TIME_ZONE)).time()
    for profile in loads.select_related("user"):
        skills = profile.skills or []
        if skills and ticket.category and ticket.category not in skills:
            continue
        if profile.languages and language not in profile.languages:
            continue
        if not rules.on_shift(profile.shift_starts, profile.shift_ends, local):
            continue
        if profile.load >= profile.max_open:
            continue
        ticket.assignee = profile.user
        return why + (
            f"least loaded agent with the skill and language ({language}) on shift: "
            f"{profile.user.username} ({profile.load} open)"
        )
    return why + (
        "no agent free: waits in the " + (ticket.team.name if ticket.team else "general") + " queue"
    )


def _event(
    ticket: Ticket,
    action: str,
    *,
    user: Any = None,
    actor_label: str = "",
    from_status: str = "",
    to_status: str = "",
    note: str = "",
    now: datetime | None = None,
    **data: Any,
) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        at=now or timezone.now(),
        actor=user if getattr(user, "pk", None) else None,
        actor_label="" if getattr(user, "pk", None) else (actor_label or "system"),
        action=action,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=data,
    )


def _notify_opened(ticket_id: int) -> None:
    transaction.on_commit(lambda: signals.ticket_opened.send(sender=Ticket, ticket_id=ticket_id))


def _notify_status(ticket_id: int, from_status: str, to_status: str, action: str) -> None:
    def send() -> None:
        signals.ticket_status_changed.send(
            sender=Ticket,
            ticket_id=ticket_id,
            from_status=from_status,
            to_status=to_status,
            action=action,
        )
        if to_status == Ticket.Status.SOLVED:
            signals.ticket_solved.send(sender=Ticket, ticket_id=ticket_id)

    transaction.on_commit(send)


def ticket_open(
    *,
    customer_id: int,
    channel: str,
    subject: str,
    body: str,
    category: str = "",
    order_id: int | None = None,
    is_complaint: bool = False,
    user: Any = None,
    actor_label: str = "",
    contact: str = "",
    external_id: str = "",
    thread_key: str = "",
    email_message_id: str = "",
    now: datetime | None = None,
    auto_reply: bool = True,
) -> Ticket:
    """Open a ticket with the customer's first message: priority from the category, keywords,
    grade and sentiment; SLA targets from the policy table; routed to an agent; and, when the
    FAQ knows the answer with confidence, answered at once (the ticket then waits on the
    customer, who can say it did not help). ``user`` is the staff member filing it (checked for
    ``service.change_ticket``), or None for a channel or a job (``actor_label`` names it)."""
    if user is not None:
        require_permission(user, WORK_TICKETS)
    if channel not in Ticket.Channel.values:
        raise ValidationFailed(
            f"channel {channel!r} is unknown; use one of {', '.join(Ticket.Channel.values)}"
        )
    subject = _text(subject, "subject", MAX_SUBJECT)
    body = _text(body, "message", MAX_BODY)
    now = now or timezone.now()
    with transaction.atomic():
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        if order_id is not None and not customer.orders.filter(pk=order_id).exists():
            raise ValidationFailed(f"order {order_id} is not an order of customer {customer_id}")
        found = _category(category)
        grade = grade_of(customer_id)
        mood = sentiment_of(f"{subject}\n{body}")
        measures = grade_service(grade)
        decided = rules.priority_for(
            category_priority=found.priority if found else None,
            text=f"{subject}\n{body}",
            grade=grade,
            sentiment=mood,
            keywords=rules.DEFAULT_KEYWORDS,
            priority_handling=measures.priority_handling,
        )
        priority, reasons = _certified(customer_id, decided.priority, list(decided.reason_records))
        ticket = Ticket(
            source=PATRON_SOURCE,
            external_id=uuid.uuid4().hex,
            customer=customer,
            order_id=order_id,
            channel=channel,
            category=found.slug if found else "",
            subject=subject,
            status=Ticket.Status.NEW,
            priority=priority,
            priority_reasons=reasons,
            is_complaint=is_complaint,
            opened_at=now,
            contact=(contact or "").strip()[:320],
            sentiment=mood,
            thread_key=(thread_key or "")[:200],
            updated_at=now,
        )
        _set_targets(ticket, has_sla=found.has_sla if found else True, grade=grade)
        routed = _route(
            ticket,
            grade=grade,
            category=found,
            text=f"{subject}\n{body}",
            now=now,
            dedicated_line=measures.dedicated_line,
        )
        _refresh_due(ticket, now)
        ticket.save()
        ticket.external_id = f"T{ticket.pk}"
        ticket.save(update_fields=["external_id"])
        TicketMessage.objects.create(
            ticket=ticket,
            direction=TicketMessage.Direction.INBOUND,
            channel=channel,
            author=user if user is not None else None,
            author_label="" if user is not None else (actor_label or customer.name),
            body=body,
            created_at=now,
            external_id=(external_id or "")[:200],
            email_message_id=(email_message_id or "")[:250],
        )
        _event(
            ticket,
            "opened",
            user=user,
            actor_label=actor_label or f"{channel} channel",
            to_status=ticket.status,
            now=now,
            priority=ticket.priority,
            priority_reasons=ticket.priority_reasons,
            sla_policy=ticket.sla_policy,
            routed=routed,
        )
        audit_update(
            user,
            entity_type="service.ticket",
            pk=ticket.pk,
            customer_id=customer.pk,
            summary=f"opened ticket {ticket.pk} ({channel}): {subject}",
            system_label=actor_label or f"{channel} channel",
            priority=ticket.priority,
            assignee=ticket.assignee.username if ticket.assignee else None,
        )
        _notify_opened(ticket.pk)
        if auto_reply and user is None:
            _auto_answer(ticket, f"{subject}\n{body}", now)
    return ticket


# ---------------------------------------------------------------------- FAQ automatic answers


def _auto_answer(ticket: Ticket, text: str, now: datetime) -> bool:
    """Send the FAQ's answer when it is confident enough; the ticket then waits on the
    customer (their "that did not help" reopens it to a person)."""
    try:
        from patron.knowledge.services import decide_auto_reply
    except ImportError:  # the knowledge base is optional
        return False
    suggestion = decide_auto_reply(text)
    if suggestion is None:
        return False
    _reply(
        ticket,
        body=suggestion.answer,
        user=None,
        actor_label="FAQ",
        now=now,
        faq_article_id=suggestion.article_id,
        wait_for_customer=True,
    )
    ticket.auto_answered = True
    ticket.save(update_fields=["auto_answered"])
    return True


# ---------------------------------------------------------------------- inbound messages


def _thread_of(
    *, customer: Customer, channel: str, thread_key: str, references: Sequence[str]
) -> Ticket | None:
    """The live (or recently solved) ticket a new message continues, if any: the e-mail it
    answers, the connector's conversation, or a ``[#123]`` in the subject."""
    if references:
        message = (
            TicketMessage.objects.filter(email_message_id__in=list(references)[:50])
            .select_related("ticket")
            .order_by("-id")
            .first()
        )
        if message is not None and message.ticket.customer_id == customer.pk:
            return message.ticket
    if thread_key:
        ticket = (
            Ticket.objects.filter(
                customer=customer, channel=channel, thread_key=thread_key, source=PATRON_SOURCE
            )
            .exclude(status=Ticket.Status.CLOSED)
            .order_by("-id")
            .first()
        )
        if ticket is not None:
            return ticket
    return None


@dataclass(frozen=True)
class Inbound:
    """A customer's message as a channel hands it over."""

    channel: str
    identity_kind: str
    identity_value: str
    body: str
    name: str = ""
    subject: str = ""
    external_id: str = ""
    thread_key: str = ""
    references: tuple[str, ...] = ()
    email_message_id: str = ""
    ticket_id: int | None = None
    order_id: int | None = None
    category: str = ""


def inbound_receive(
    inbound: Inbound, *, actor_label: str = "", now: datetime | None = None
) -> TicketMessage:
    """File a customer's message: on the ticket it continues, else on a new ticket. Idempotent
    on the channel's message id: posting the same message twice files it once."""
    now = now or timezone.now()
    body = _text(inbound.body, "message", MAX_BODY)
    for what, value in (
        ("message id", inbound.external_id),
        ("conversation id", inbound.thread_key),
        ("identity value", inbound.identity_value),
        ("name", inbound.name),
        ("subject", inbound.subject),
        ("e-mail Message-ID", inbound.email_message_id),
        *(("e-mail reference", ref) for ref in inbound.references),
    ):
        if "\x00" in (value or ""):
            raise ValidationFailed(f"{what}: contains a NUL character")
    if inbound.channel not in Ticket.Channel.values:
        raise ValidationFailed(
            f"channel {inbound.channel!r} is unknown; use one of {', '.join(Ticket.Channel.values)}"
        )
    if inbound.external_id:
        seen = TicketMessage.objects.filter(
            channel=inbound.channel, external_id=inbound.external_id[:200]
        ).first()
        if seen is not None:
            return seen
    with transaction.atomic():
        customer = contact_resolve(
            kind=inbound.identity_kind, value=inbound.identity_value, name=inbound.name
        )
        ticket = None
        if inbound.ticket_id is not None:
            ticket = Ticket.objects.filter(
                pk=inbound.ticket_id, customer=customer, source=PATRON_SOURCE
            ).first()
            if ticket is None:
                raise NotFound(f"ticket {inbound.ticket_id} not found for this contact")
        else:
            ticket = _thread_of(
                customer=customer,
                channel=inbound.channel,
                thread_key=inbound.thread_key,
                references=inbound.references,
            )
        if ticket is not None and _may_continue(ticket, now):
            return _customer_message(ticket.pk, inbound, body=body, now=now)
        subject = (inbound.subject or "").strip() or body.splitlines()[0][:80]
        opened = ticket_open(
            customer_id=customer.pk,
            channel=inbound.channel,
            subject=subject[:MAX_SUBJECT],
            body=body,
            category=inbound.category,
            order_id=inbound.order_id,
            actor_label=actor_label or inbound.name or f"{inbound.channel} channel",
            contact=inbound.identity_value,
            external_id=inbound.external_id,
            thread_key=inbound.thread_key,
            email_message_id=inbound.email_message_id,
            now=now,
        )
        return opened.messages.order_by("id").first()  # type: ignore[return-value]


def _may_continue(ticket: Ticket, now: datetime) -> bool:
    if ticket.status in LIVE:
        return True
    if ticket.status == Ticket.Status.SOLVED and ticket.solved_at is not None:
        return now - ticket.solved_at <= timedelta(days=rules.REOPEN_DAYS)
    return False


def _customer_message(
    ticket_id: int, inbound: Inbound, *, body: str, now: datetime
) -> TicketMessage:
    ticket = locked(Ticket, ticket_id, "ticket")
    message = TicketMessage.objects.create(
        ticket=ticket,
        direction=TicketMessage.Direction.INBOUND,
        channel=inbound.channel,
        author_label=inbound.name or ticket.customer.name,
        body=body,
        created_at=now,
        external_id=inbound.external_id[:200],
        email_message_id=inbound.email_message_id[:250],
    )
    if ticket.status in (Ticket.Status.PENDING, Ticket.Status.ON_HOLD, Ticket.Status.SOLVED):
        _move(ticket, "customer_reply", user=None, actor_label="customer", note="", now=now)
    else:
        ticket.updated_at = now
        ticket.save(update_fields=["updated_at"])
    return message


# ---------------------------------------------------------------------- state changes


def _move(
    ticket: Ticket,
    action: str,
    *,
    user: Any,
    actor_label: str,
    note: str,
    now: datetime,
    calendars: Calendars | None = None,
) -> Ticket:
    """Apply one state-machine action to a locked ticket: pause or resume the resolution
    clock, stamp the times, recompute the deadlines, record and tell."""
    before = ticket.status
    after = transition(
        rules.ticket_next,
        before,
        action,
        solved_at=ticket.solved_at,
        now=now,
        reopen_days=rules.REOPEN_DAYS,
    )
    paused_before = before in rules.SLA_PAUSED_STATES
    paused_after = after in rules.SLA_PAUSED_STATES
    if paused_after and not paused_before:
        _pause(ticket, now)
    elif paused_before and not paused_after:
        _resume(ticket, now)
    ticket.status = after
    if after == Ticket.Status.SOLVED:
        ticket.solved_at = now
        ticket.resolved_at = now
    elif before == Ticket.Status.SOLVED:
        ticket.solved_at = None
        ticket.resolved_at = None
    if after == Ticket.Status.CLOSED:
        ticket.closed_at = now
    ticket.updated_at = now
    _refresh_due(ticket, now, calendars)
    ticket.save()
    _event(
        ticket,
        action,
        user=user,
        actor_label=actor_label,
        from_status=before,
        to_status=after,
        note=note,
        now=now,
    )
    audit_update(
        user,
        entity_type="service.ticket",
        pk=ticket.pk,
        customer_id=ticket.customer_id,
        summary=f"ticket {ticket.pk}: {action.replace('_', ' ')} ({before} → {after})",
        system_label=actor_label or "service desk",
        note=note or None,
    )
    _notify_status(ticket.pk, before, after, action)
    return ticket


#: Actions staff take through ``ticket_act`` (the others follow from messages).
STAFF_ACTIONS = ("open", "hold", "resume", "solve", "close", "reopen", "reply_wait")


def ticket_act(
    ticket_id: int,
    action: str,
    *,
    user: Any = None,
    actor_label: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Ticket:
    """Move a ticket: open, hold, resume, solve, close, reopen (within the window), or
    reply_wait. Illegal moves are refused with 409. ``user`` None is a job or another app
    (``actor_label`` names it)."""
    if user is not None:
        require_permission(user, WORK_TICKETS)
    if action not in (*STAFF_ACTIONS, "customer_reply"):
        raise ValidationFailed(
            f"action {action!r} is unknown; use one of {', '.join(STAFF_ACTIONS)}"
        )
    note = (note or "").strip()[:2000]
    with transaction.atomic():
        ticket = locked(Ticket, ticket_id, "ticket")
        if not ticket.is_desk:
            raise Conflict(f"ticket {ticket_id} is imported history: it has no workflow here")
        return _move(
            ticket, action, user=user, actor_label=actor_label, note=note, now=now or timezone.now()
        )


def customer_says_not_helped(ticket_id: int, *, now: datetime | None = None) -> Ticket:
    """The customer says the automatic answer did not help: back to a person."""
    now = now or timezone.now()
    with transaction.atomic():
        ticket = locked(Ticket, ticket_id, "ticket")
        last = ticket.messages.filter(direction=TicketMessage.Direction.OUTBOUND).last()
        if (
            not ticket.is_desk
            or ticket.status != Ticket.Status.PENDING
            or last is None
            or last.faq_article_id is None
        ):
            raise Conflict(
                f"ticket {ticket_id}: the last answer was not an automatic one awaiting the "
                "customer"
            )
        _faq_feedback(last.faq_article_id, ticket.pk, helped=False)
        TicketMessage.objects.create(
            ticket=ticket,
            direction=TicketMessage.Direction.INBOUND,
            channel=ticket.channel,
            author_label=ticket.customer.name,
            body="(the automatic answer did not help)",
            created_at=now,
        )
        return _move(ticket, "customer_reply", user=None, actor_label="customer", note="", now=now)


def _faq_feedback(article_id: int, ticket_id: int, *, helped: bool) -> None:
    try:
        from patron.knowledge.services import feedback_record
    except ImportError:
        return
    try:
        feedback_record(
            article_id=article_id, ticket_id=ticket_id, helped=helped, is_auto_reply=True
        )
    except Exception:  # feedback must never lose the customer's message
        logger.exception("FAQ feedback for article %s was not recorded", article_id)


# ---------------------------------------------------------------------- replies and notes


def _reply(
    ticket: Ticket,
    *,
    body: str,
    user: Any,
    actor_label: str,
    now: datetime,
    faq_article_id: int | None = None,
    wait_for_customer: bool = True,
) -> TicketMessage:
    from patron.outbox.services import message_queue

    previous = list(
        ticket.messages.exclude(email_message_id="")
        .order_by("id")
        .values_list("email_message_id", flat=True)
    )
    message_id = f"<ticket-{ticket.pk}-{uuid.uuid4().hex[:12]}@{_mail_domain()}>"
    headers = {"Message-ID": message_id}
    if previous:
        headers["In-Reply-To"] = previous[-1]
        headers["References"] = " ".join(previous[-20:])
    message = TicketMessage.objects.create(
        ticket=ticket,
        direction=TicketMessage.Direction.OUTBOUND,
        channel=ticket.channel,
        author=user if getattr(user, "pk", None) else None,
        author_label="" if getattr(user, "pk", None) else actor_label,
        body=body,
        created_at=now,
        email_message_id=message_id,
        faq_article_id=faq_article_id,
    )
    from patron.service.links import ticket_url

    queued = message_queue(
        customer_id=ticket.customer_id,
        template="service.reply",
        purpose="service",
        channel=REPLY_CHANNEL.get(ticket.channel),
        context={
            "subject": ticket.subject,
            "ticket": str(ticket.pk),
            "body": body,
            "link": ticket_url(ticket.pk),
        },
        key=f"service.reply:{message.pk}",
        source=f"service.ticket:{ticket.pk}",
        headers=headers,
    )
    message.outbox_message = queued
    message.save(update_fields=["outbox_message"])
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.updated_at = now
    if ticket.status == Ticket.Status.NEW:
        _move(ticket, "open", user=user, actor_label=actor_label, note="", now=now)
    if wait_for_customer and ticket.status in (Ticket.Status.OPEN, Ticket.Status.ON_HOLD):
        _move(ticket, "reply_wait", user=user, actor_label=actor_label, note="", now=now)
    else:
        _refresh_due(ticket, now)
        ticket.save()
    return message


def _mail_domain() -> str:
    sender = str(getattr(settings, "DEFAULT_FROM_EMAIL", "") or "")
    return sender.rpartition("@")[2].strip(">") or "patron.localhost"


def ticket_reply(
    ticket_id: int,
    *,
    user: Any,
    body: str,
    wait_for_customer: bool = True,
    now: datetime | None = None,
) -> TicketMessage:
    """Reply to the customer through the channel they used (e-mail replies thread onto their
    mail). Stops the first-reply clock; by default the ticket then waits on the customer."""
    require_permission(user, WORK_TICKETS)
    body = _text(body, "reply", MAX_BODY)
    now = now or timezone.now()
    with transaction.atomic():
        ticket = locked(Ticket, ticket_id, "ticket")
        if not ticket.is_desk:
            raise Conflict(f"ticket {ticket_id} is imported history: replies go through its source")
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict(f"ticket {ticket_id} is closed: open a new ticket to write again")
        message = _reply(
            ticket,
            body=body,
            user=user,
            actor_label="",
            now=now,
            wait_for_customer=wait_for_customer,
        )
        audit_update(
            user,
            entity_type="service.ticket",
            pk=ticket.pk,
            customer_id=ticket.customer_id,
            summary=f"ticket {ticket.pk}: replied to the customer",
            system_label="service desk",
        )
    return message


def ticket_note(
    ticket_id: int, *, user: Any, body: str, now: datetime | None = None
) -> TicketMessage:
    """An internal note: on the ticket for colleagues, never sent to the customer."""
    require_permission(user, WORK_TICKETS)
    body = _text(body, "note", MAX_BODY)
    with transaction.atomic():
        ticket = locked(Ticket, ticket_id, "ticket")
        return TicketMessage.objects.create(
            ticket=ticket,
            direction=TicketMessage.Direction.NOTE,
            channel=ticket.channel,
            author=user,
            body=body,
            created_at=now or timezone.now(),
        )


# ---------------------------------------------------------------------- claiming and assigning


def ticket_claim(ticket_id: int, *, user: Any, now: datetime | None = None) -> Ticket:
    """Take an unassigned ticket. Race-safe: one conditional update, so of two agents clicking
    at once exactly one gets it and the other is told who did (409)."""
    require_permission(user, WORK_TICKETS)
    now = now or timezone.now()
    with transaction.atomic():
        taken = Ticket.objects.filter(
            pk=ticket_id, assignee__isnull=True, source=PATRON_SOURCE
        ).update(assignee=user, updated_at=now)
        ticket = Ticket.objects.select_related("assignee").filter(pk=ticket_id).first()
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} not found")
        if not taken:
            if ticket.assignee_id == user.pk:
                return ticket
            if not ticket.is_desk:
                raise Conflict(f"ticket {ticket_id} is imported history: it cannot be claimed")
            holder = ticket.assignee.username if ticket.assignee else "someone"
            raise Conflict(f"ticket {ticket_id} was already taken by {holder}")
        _event(ticket, "claimed", user=user, now=now)
        if ticket.status == Ticket.Status.NEW:
            ticket = locked(Ticket, ticket_id, "ticket")
            _move(ticket, "open", user=user, actor_label="", note="", now=now)
    return ticket


def ticket_assign(
    ticket_id: int, *, user: Any, assignee_id: int | None, reason: str, now: datetime | None = None
) -> Ticket:
    """Give a ticket to someone (or back to the queue), with the reason recorded."""
    require_permission(user, WORK_TICKETS)
    reason = reason_text(reason, f"assigning ticket {ticket_id}")
    from django.contrib.auth import get_user_model

    now = now or timezone.now()
    with transaction.atomic():
        ticket = locked(Ticket, ticket_id, "ticket")
        assignee = None
        if assignee_id is not None:
            assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first()
            if assignee is None:
                raise ValidationFailed(f"assignee {assignee_id}: no active user has that id")
            if not assignee.has_perm(WORK_TICKETS):
                raise ValidationFailed(f"assignee {assignee.username}: may not work tickets")
        before = ticket.assignee.username if ticket.assignee else ""
        ticket.assignee = assignee
        ticket.updated_at = now
        ticket.save(update_fields=["assignee", "updated_at"])
        _event(
            ticket,
            "assigned",
            user=user,
            note=reason,
            now=now,
            before=before,
            after=assignee.username if assignee else "",
        )
        audit_update(
            user,
            entity_type="service.ticket",
            pk=ticket.pk,
            customer_id=ticket.customer_id,
            summary=f"ticket {ticket.pk} assigned to {assignee.username if assignee else 'the queue'}",
            system_label="service desk",
            reason=reason,
        )
    return ticket


def ticket_set_priority(
    ticket_id: int, *, user: Any, priority: str, reason: str, now: datetime | None = None
) -> Ticket:
    """Override the computed priority, with the reason recorded; the SLA targets follow."""
    require_permission(user, WORK_TICKETS)
    if priority not in Ticket.Priority.values:
        raise ValidationFailed(
            f"priority {priority!r} is unknown; use one of {', '.join(Ticket.Priority.values)}"
        )
    reason = reason_text(reason, f"changing the priority of ticket {ticket_id}")
    now = now or timezone.now()
    with transaction.atomic():
        ticket = locked(Ticket, ticket_id, "ticket")
        before = ticket.priority
        _retarget(ticket, priority, now)
        ticket.priority_reasons = [
            *ticket.priority_reasons,
            {
                "template": "Set to {priority} by {user}: {reason}",
                "params": {"priority": priority, "user": user.username, "reason": reason},
            },
        ]
        ticket.save()
        _event(ticket, "priority", user=user, note=reason, now=now, before=before, after=priority)
        audit_update(
            user,
            entity_type="service.ticket",
            pk=ticket.pk,
            customer_id=ticket.customer_id,
            summary=f"ticket {ticket.pk} priority {before} → {priority}",
            system_label="service desk",
            reason=reason,
        )
    return ticket


def _set_targets(ticket: Ticket, *, has_sla: bool, grade: str | None) -> None:
    """The SLA table's targets for the ticket's priority and the customer's grade, or none at
    all for a category without SLA (its tickets are tasks, such as follow-up visits)."""
    if not has_sla:
        ticket.sla_policy = "no SLA (the category's tickets are tasks)"
        ticket.first_reply_target = ticket.resolution_target = None
        return
    targets = rules.sla_targets(sla_rows(), priority=ticket.priority, grade=grade)
    ticket.sla_policy = targets.policy_name
    ticket.sla_business_hours = targets.business_hours
    ticket.first_reply_target = targets.first_reply_minutes
    ticket.resolution_target = targets.resolution_minutes


def _retarget(ticket: Ticket, priority: str, now: datetime) -> None:
    ticket.priority = priority
    if ticket.is_desk:
        has_sla = not Category.objects.filter(slug=ticket.category, has_sla=False).exists()
        _set_targets(ticket, has_sla=has_sla, grade=grade_of(ticket.customer_id))
        _refresh_due(ticket, now)
    ticket.updated_at = now


def ticket_escalate(
    ticket_id: int,
    *,
    user: Any = None,
    team_slug: str,
    reason: str,
    actor_label: str = "",
    now: datetime | None = None,
) -> Ticket:
    """Hand a ticket to a department or expert queue, one level up; the customer is told it
    is being looked at by specialists (R-E4)."""
    if user is not None:
        require_permission(user, WORK_TICKETS)
    reason = reason_text(reason, f"escalating ticket {ticket_id}")
    now = now or timezone.now()
    with transaction.atomic():
        team = Team.objects.filter(slug=team_slug).first()
        if team is None:
            raise ValidationFailed(f"team {team_slug!r} is unknown")
        ticket = locked(Ticket, ticket_id, "ticket")
        if ticket.status == Ticket.Status.CLOSED:
            raise Conflict(f"ticket {ticket_id} is closed")
        _escalate(ticket, team=team, reason=reason, user=user, actor_label=actor_label, now=now)
    return ticket


def _escalate(
    ticket: Ticket, *, team: Team | None, reason: str, user: Any, actor_label: str, now: datetime
) -> None:
    from patron.outbox.services import message_queue
    from patron.service.links import ticket_url

    ticket.escalation_level += 1
    if team is not None:
        ticket.team = team
        ticket.assignee = None
    ticket.updated_at = now
    ticket.save()
    _event(
        ticket,
        "escalated",
        user=user,
        actor_label=actor_label,
        note=reason,
        now=now,
        team=team.slug if team else "",
        level=ticket.escalation_level,
    )
    audit_update(
        user,
        entity_type="service.ticket",
        pk=ticket.pk,
        customer_id=ticket.customer_id,
        summary=f"ticket {ticket.pk} escalated to level {ticket.escalation_level}"
        + (f" ({team.name})" if team else ""),
        system_label=actor_label or "SLA watch",
        reason=reason,
    )
    message_queue(
        customer_id=ticket.customer_id,
        template="service.escalated",
        purpose="service",
        channel=REPLY_CHANNEL.get(ticket.channel),
        context={
            "subject": ticket.subject,
            "ticket": str(ticket.pk),
            "link": ticket_url(ticket.pk),
        },
        key=f"service.escalated:{ticket.pk}:{ticket.escalation_level}",
        source=f"service.ticket:{ticket.pk}",
    )


# ---------------------------------------------------------------------- the SLA watch


@dataclass
class WatchResult:
    checked: int = 0
    warned: int = 0
    breached: int = 0
    escalated: int = 0


def sla_watch(*, now: datetime | None = None, batch: int = 500) -> WatchResult:
    """Run by the scheduler every minute: warn before a deadline, and on a breach record it,
    raise the priority one step, and escalate to the category's escalation team (or one level
    up in place). Idempotent: each warning and breach fires once per clock (``sla_fired``)."""
    now = now or timezone.now()
    result = WatchResult()
    calendars = Calendars()
    candidates = list(
        Ticket.objects.filter(source=PATRON_SOURCE, sla_check_at__lte=now)
        .order_by("sla_check_at")
        .values_list("pk", flat=True)[:batch]
    )
    categories = {c.slug: c for c in Category.objects.select_related("escalation_team")}
    for ticket_id in candidates:
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
            if ticket is None:
                continue
            result.checked += 1
            _watch_one(ticket, now, calendars, categories, result)
    return result


def _watch_one(
    ticket: Ticket,
    now: datetime,
    calendars: Calendars,
    categories: dict[str, Category],
    result: WatchResult,
) -> None:
    clocks = clock_statuses(ticket, now, calendars)
    fired = set(ticket.sla_fired or [])
    for name, status in (("first_reply", clocks.first_reply), ("resolution", clocks.resolution)):
        if status is None:
            continue
        already = frozenset(step.split(":", 1)[1] for step in fired if step.startswith(name + ":"))
        for step in rules.escalation_steps(status, already=already):
            fired.add(f"{name}:{step}")
            label = "first reply" if name == "first_reply" else "resolution"
            if step == "warn":
                result.warned += 1
                _event(
                    ticket,
                    "sla_warning",
                    actor_label="SLA watch",
                    now=now,
                    clock=name,
                    due_at=status.due_at.isoformat() if status.due_at else None,
                )
            elif step == "escalate":
                result.breached += 1
                breached_at = status.breached_at or now
                if name == "first_reply":
                    ticket.first_reply_breached_at = breached_at
                else:
                    ticket.resolution_breached_at = breached_at
                _event(
                    ticket,
                    "sla_breached",
                    actor_label="SLA watch",
                    now=now,
                    clock=name,
                    breached_at=breached_at.isoformat(),
                )
                ticket.priority = rules.PRIORITIES[
                    min(rules.PRIORITIES.index(ticket.priority) + 1, len(rules.PRIORITIES) - 1)
                ]
                category = categories.get(ticket.category)
                team = category.escalation_team if category else None
                _escalate(
                    ticket,
                    team=team,
                    reason=f"the {label} target was missed",
                    user=None,
                    actor_label="SLA watch",
                    now=now,
                )
                result.escalated += 1
    ticket.sla_fired = sorted(fired)
    _refresh_due(ticket, now, calendars)
    ticket.save()


# ---------------------------------------------------------------------- desk settings


def holidays_seed(years: Iterable[int]) -> int:
    """Fill the holiday table for the years from China's official calendar (make-up working
    days included) where it is known, else from the lunar calendar. Existing rows (edited by
    staff) are kept. Returns how many were added."""
    added = 0
    for day, name, is_workday in rules.china_holidays(list(years)):
        _, created = Holiday.objects.get_or_create(
            date=day, defaults={"name": name[:100], "is_workday": is_workday}
        )
        added += int(created)
    return added


DEFAULT_TEAMS = (
    ("frontline", "一线客服 Front line", False),
    ("logistics", "物流组 Logistics", True),
    ("aftersales", "售后组 After-sales", True),
    ("quality", "质量与投诉 Quality and complaints", True),
    ("experts", "专家组 Experts", True),
)
#: (position, name, conditions, team): read top to bottom, first match wins.
DEFAULT_ROUTES: tuple[tuple[int, str, dict[str, str], str], ...] = (
    (
        10,
        "紧急（法律、监管、媒体）→ 质量与投诉 Urgent to quality",
        {"priority": "urgent"},
        "quality",
    ),
)
DEFAULT_CATEGORIES = (
    ("order", "订单 Order", "normal", "frontline", "experts"),
    ("shipping", "物流 Shipping", "normal", "frontline", "logistics"),
    ("logistics", "物流异常 Logistics exception", "high", "logistics", "experts"),
    ("return", "退换货 Returns and exchanges", "normal", "aftersales", "experts"),
    ("payment", "支付与发票 Payment and invoices", "normal", "frontline", "experts"),
    ("product", "商品咨询 Product question", "low", "frontline", "experts"),
    ("account", "账户与隐私 Account and privacy", "normal", "frontline", "experts"),
    ("complaint", "投诉 Complaint", "high", "quality", "experts"),
)


def desk_seed(*, user: Any = None, years: Iterable[int] | None = None) -> dict[str, int]:
    """The desk's defaults (teams, categories, SLA policies, opening hours, holidays),
    idempotent: rows staff have edited are left as they are."""
    if user is not None:
        require_permission(user, MANAGE_DESK)
    counts = {
        "teams": 0,
        "categories": 0,
        "sla_policies": 0,
        "routing_rules": 0,
        "hours": 0,
        "holidays": 0,
    }
    with transaction.atomic():
        teams: dict[str, Team] = {}
        for slug, name, is_target in DEFAULT_TEAMS:
            team, created = Team.objects.get_or_create(
                slug=slug, defaults={"name": name, "is_escalation_target": is_target}
            )
            teams[slug] = team
            counts["teams"] += int(created)
        for slug, name, priority, team_slug, escalation in DEFAULT_CATEGORIES:
            _, created = Category.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "priority": priority,
                    "team": teams[team_slug],
                    "escalation_team": teams[escalation],
                },
            )
            counts["categories"] += int(created)
        for row in rules.DEFAULT_POLICIES:
            _, created = SlaPolicy.objects.get_or_create(
                priority=row.priority or "",
                grade=row.grade or "",
                defaults={
                    "name": row.name,
                    "first_reply_minutes": row.first_reply_minutes,
                    "resolution_minutes": row.resolution_minutes,
                    "business_hours": row.business_hours,
                },
            )
            counts["sla_policies"] += int(created)
        if not RoutingRule.objects.exists():
            for position, name, conditions, team_slug in DEFAULT_ROUTES:
                RoutingRule.objects.create(
                    position=position, name=name, team=teams[team_slug], **conditions
                )
                counts["routing_rules"] += 1
        if not BusinessHours.objects.exists():
            for day, opens, closes in DEFAULT_HOURS:
                BusinessHours.objects.create(weekday=day, opens=opens, closes=closes)
                counts["hours"] += 1
        this_year = timezone.localdate().year
        counts["holidays"] = holidays_seed(years or (this_year - 1, this_year, this_year + 1))
    return counts
