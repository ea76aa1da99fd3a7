"""The service desk: tickets from every channel, their conversations, SLA clocks, teams,
routing and escalation.

A ``Ticket`` is either imported (history from the shop's old helpdesk: ``source`` names the
file) or opened here (``source = "patron"``) from a channel: the web form, the chat widget,
e-mail, or the signed webhook that WeChat, app, phone-log and social connectors post to. Only
tickets opened here have SLA clocks; imported ones are history for the scores.

The rules (state machine, business calendar, clocks, priority) are pure functions in
``patron.service.rules``; ``patron.service.services`` applies them inside transactions.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.utils import timezone

from patron.commerce.models import Order
from patron.customer.models import Customer, Imported
from patron.privacy.fields import EncryptedTextField

PATRON_SOURCE = "patron"


class Team(models.Model):
    """A queue of people: first-line service, a department (logistics, finance, quality) or an
    expert group that escalations go to."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    is_escalation_target = models.BooleanField(
        default=False, help_text="Offered as a department or expert queue to escalate to"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    """What routing needs to know about a person who answers tickets."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    skills = models.JSONField(default=list, blank=True, help_text="Category slugs they handle")
    max_open = models.PositiveSmallIntegerField(
        default=30, help_text="Routing gives them no more open tickets than this"
    )
    is_available = models.BooleanField(default=True)
    languages = models.JSONField(
        default=list, blank=True, help_text='Languages they answer in ("zh", "en"); empty: any'
    )
    shift_starts = models.TimeField(
        null=True, blank=True, help_text="Local time their shift starts; empty: no shift set"
    )
    shift_ends = models.TimeField(
        null=True, blank=True, help_text="Local time it ends (may be past midnight)"
    )

    def __str__(self) -> str:
        return f"agent {self.user}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from patron.service.rules import LANGUAGES

        errors = {}
        languages = self.languages
        if not isinstance(languages, list) or any(code not in LANGUAGES for code in languages):
            errors["languages"] = (
                f"a list of {', '.join(LANGUAGES)} or empty (any), not {languages!r}"
            )
        if (self.shift_starts is None) != (self.shift_ends is None):
            errors["shift_ends"] = "give both ends of the shift, or neither"
        if errors:
            raise ValidationError(errors)


class DedicatedAgent(models.Model):
    """A core customer's own agent (R-E8): their tickets go to this person first."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="dedicated_agent"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    assigned_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} for customer {self.customer_id}"


class Category(models.Model):
    """What a ticket is about; carries the default priority and the team that handles it."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    priority = models.CharField(max_length=10, default="normal")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    escalation_team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where a breached ticket of this category is escalated",
    )
    has_sla = models.BooleanField(
        default=True,
        help_text="Off: its tickets are tasks for the team (e.g. follow-up visits), with no SLA "
        "clocks, warnings or escalation",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """One rule of the routing list, read top to bottom: the first whose conditions all hold
    sends a new ticket to its team (and, with a language, to agents who speak it). No rule
    matching: the category's team. A core customer's dedicated agent still comes first."""

    position = models.PositiveSmallIntegerField(default=100, help_text="Lower is read first")
    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=10, blank=True, help_text="Empty: any channel")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: any"
    )
    grade = models.CharField(max_length=12, blank=True, help_text="Empty: any grade")
    priority = models.CharField(max_length=10, blank=True, help_text="Empty: any priority")
    language = models.CharField(
        max_length=5, blank=True, help_text="zh or en, read from the message; empty: any"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from patron.service.rules import LANGUAGES

        allowed = {
            "channel": Ticket.Channel.values,
            "grade": ["core", "potential", "ordinary"],
            "priority": Ticket.Priority.values,
            "language": list(LANGUAGES),
        }
        errors = {
            name: f"{getattr(self, name)!r} is not one of {', '.join(values)} (or empty: any)"
            for name, values in allowed.items()
            if getattr(self, name) and getattr(self, name) not in values
        }
        if errors:
            raise ValidationError(errors)


class SlaPolicy(models.Model):
    """One row of the SLA table: the most specific row (grade and priority, then grade, then
    priority, then the default with neither) gives a ticket its targets."""

    name = models.CharField(max_length=100)
    priority = models.CharField(max_length=10, blank=True, help_text="Empty: any priority")
    grade = models.CharField(max_length=12, blank=True, help_text="Empty: any grade")
    first_reply_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    business_hours = models.BooleanField(
        default=True, help_text="Count only business hours (else around the clock)"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["priority", "grade"], name="sla_policy_scope"),
        ]

    def __str__(self) -> str:
        return self.name


class BusinessHours(models.Model):
    """The week's opening hours, one row per weekday interval (0 = Monday)."""

    weekday = models.PositiveSmallIntegerField()  # closes at 00:00: open until midnight
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["weekday", "opens"]
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="hours_weekday"),
            models.CheckConstraint(
                condition=models.Q(opens__lt=models.F("closes")) | models.Q(closes=time(0)),
                name="hours_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.opens:%H:%M}-{self.closes:%H:%M}"


class Holiday(models.Model):
    """A day the desk is closed, or (``is_workday``) a weekend day it works: China moves
    working days around public holidays (调休). Seeded from the holiday calendars, editable."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)
    is_workday = models.BooleanField(default=False)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class Ticket(Imported):
    class Channel(models.TextChoices):
        WEB = "web", "网页 Web"
        CHAT = "chat", "在线客服 Chat"
        WECHAT = "wechat", "微信 WeChat"
        PHONE = "phone", "电话 Phone"
        APP = "app", "App"
        EMAIL = "email", "邮件 E-mail"
        SOCIAL = "social", "社交媒体 Social media"

    class Status(models.TextChoices):
        NEW = "new", "新建 New"
        OPEN = "open", "处理中 Open"
        PENDING = "pending", "待客户回复 Pending customer"
        ON_HOLD = "on_hold", "挂起 On hold"
        SOLVED = "solved", "已解决 Solved"
        CLOSED = "closed", "已关闭 Closed"

    class Priority(models.TextChoices):
        URGENT = "urgent", "紧急 Urgent"
        HIGH = "high", "高 High"
        NORMAL = "normal", "普通 Normal"
        LOW = "low", "低 Low"

    # Indexed through (customer, opened_at) below.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="tickets", db_index=False
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    category = models.CharField(max_length=40, blank=True)
    subject = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    is_complaint = models.BooleanField(default=False)
    opened_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True, help_text="CSAT 1–5")

    # ---- the desk (tickets opened here) ----
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    contact = EncryptedTextField(
        help_text="Where replies go on the ticket's channel (e-mail address, phone, openid …)"
    )
    priority_reasons = models.JSONField(default=list, blank=True)
    sentiment = models.FloatField(null=True, blank=True, help_text="Of the customer's words, -1..1")
    sla_policy = models.CharField(max_length=100, blank=True)
    sla_business_hours = models.BooleanField(default=True)
    first_reply_target = models.PositiveIntegerField(null=True, blank=True, help_text="minutes")
    resolution_target = models.PositiveIntegerField(null=True, blank=True, help_text="minutes")
    first_reply_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while the clock is paused or stopped"
    )
    due_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The earliest running deadline: the queue sorts by it",
    )
    sla_check_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When the SLA watch must next look: a warning or a breach is due then",
    )
    sla_pauses = models.JSONField(
        default=list, blank=True, help_text="[[paused at, resumed at or null], …] ISO times"
    )
    sla_fired = models.JSONField(
        default=list, blank=True, help_text="Warnings and escalations already done"
    )
    first_reply_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    thread_key = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="The channel's conversation id (a connector's thread, a chat session)",
    )
    auto_answered = models.BooleanField(
        default=False, help_text="The FAQ answered it without a person"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="ticket_source_ext")
        ]
        indexes = [
            models.Index(fields=["customer", "opened_at"]),
            # the desk's queue: its filter (source, status) and its order (due_at, opened_at)
            # in one index, so a page's ids come from the index alone
            models.Index(fields=["source", "status", "due_at", "opened_at"], name="ticket_queue"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee"),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_desk(self) -> bool:
        return self.source == PATRON_SOURCE


class ChannelIdentity(models.Model):
    """How a customer is known on a channel: an e-mail address, a phone number, a WeChat
    OpenID, an app user id, a social handle. Looked up by a keyed hash; the value itself is
    encrypted. One identity names one customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=20)
    value = EncryptedTextField()
    value_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value_hash"], name="identity_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of customer {self.customer_id}"


class PossibleDuplicate(models.Model):
    """A new contact that may be an existing customer: shown to a person, never merged by
    itself."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "candidate"], name="duplicate_pair"),
        ]

    def __str__(self) -> str:
        return f"customer {self.customer_id} may be {self.candidate_id}"


class TicketMessage(models.Model):
    """One entry of a ticket's conversation. Internal notes are never sent to the customer."""

    class Direction(models.TextChoices):
        INBOUND = "in", "客户 Customer"
        OUTBOUND = "out", "回复 Reply"
        NOTE = "note", "内部备注 Internal note"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=4, choices=Direction.choices)
    channel = models.CharField(max_length=10, choices=Ticket.Channel.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    author_label = models.CharField(max_length=100, blank=True, help_text="When no person wrote it")
    body = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    email_message_id = models.CharField(max_length=250, blank=True, db_index=True)
    external_id = models.CharField(
        max_length=200, blank=True, help_text="The connector's id (idempotent posting)"
    )
    outbox_message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    faq_article_id = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="ticket_message_external",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} on ticket {self.ticket_id}"


class TicketEvent(models.Model):
    """What happened to a ticket, in order: status changes, assignment, priority overrides
    with their reason, SLA warnings and breaches, escalations."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=40)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10, blank=True)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action} on ticket {self.ticket_id}"
