"""Complaints: a ticket type with its own workflow (R-E5), and the complaint-risk scores of
open tickets and customers (R-D6).

A ``Complaint`` belongs to exactly one service-desk ticket (``is_complaint``); the complainant
is the ticket's customer. Every step goes through ``patron.complaints.services`` (the stages
and steps are a table in ``patron.complaints.rules``) and leaves a ``ComplaintEvent`` — the
timeline staff read, and where the time spent in each stage comes from. The customer's own
words (the matter, their answer) are encrypted at rest like the ticket's messages.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from patron.commerce.models import Order
from patron.complaints import rules
from patron.customer.models import Customer
from patron.privacy.fields import EncryptedTextField
from patron.service.models import Team, Ticket


class Complaint(models.Model):
    class Stage(models.TextChoices):
        RECORDED = rules.Stage.RECORDED.value, "已登记 Recorded"
        INVESTIGATING = rules.Stage.INVESTIGATING.value, "调查中 Investigating"
        RESOLUTION_PROPOSED = (
            rules.Stage.RESOLUTION_PROPOSED.value,
            "已提出处理方案 Resolution proposed",
        )
        ACCEPTED = rules.Stage.ACCEPTED.value, "客户已接受 Accepted"
        FOLLOW_UP_SCHEDULED = (
            rules.Stage.FOLLOW_UP_SCHEDULED.value,
            "已安排回访 Follow-up scheduled",
        )
        FOLLOW_UP_DONE = rules.Stage.FOLLOW_UP_DONE.value, "已回访 Follow-up done"
        CLOSED = rules.Stage.CLOSED.value, "已结案 Closed"

    class Severity(models.TextChoices):
        MINOR = rules.Severity.MINOR.value, "一般 Minor"
        MAJOR = rules.Severity.MAJOR.value, "严重 Major"
        CRITICAL = rules.Severity.CRITICAL.value, "重大 Critical"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="complaint")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="complaints")
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="complaints"
    )
    matter = EncryptedTextField(help_text="What the customer complains about, in their words")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MINOR)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.RECORDED)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The department that investigates",
    )
    handler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person in the department who handles it (optional)",
    )
    findings = models.TextField(blank=True, help_text="What the investigation found")
    resolution = models.TextField(blank=True, help_text="The resolution proposed to the customer")
    proposals = models.PositiveSmallIntegerField(
        default=0, help_text="Resolutions proposed so far (the current round)"
    )
    rejections = models.PositiveSmallIntegerField(
        default=0, help_text="Proposals the customer rejected (rounds of re-work)"
    )
    customer_answer = EncryptedTextField(help_text="The customer's last answer, in their words")
    answered_at = models.DateTimeField(null=True, blank=True)
    follow_up_at = models.DateTimeField(
        null=True, blank=True, help_text="When the follow-up visit is scheduled"
    )
    follow_up_notes = models.TextField(blank=True)
    outcome = models.TextField(blank=True, help_text="How it ended (closing note, or withdrawal)")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When each stage was (last) entered; ``stage_entered_at`` is the current one's.
    recorded_at = models.DateTimeField()
    investigating_at = models.DateTimeField(null=True, blank=True)
    proposed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    follow_up_scheduled_at = models.DateTimeField(null=True, blank=True)
    follow_up_done_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    stage_entered_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["stage", "stage_entered_at"], name="complaint_queue"),
            models.Index(fields=["customer", "recorded_at"], name="complaint_customer"),
        ]

    def __str__(self) -> str:
        return f"complaint {self.pk} ({self.stage})"


class ComplaintEvent(models.Model):
    """One step of a complaint: who did what, when, from which stage to which, in which round
    (the number of the proposal being worked on)."""

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=24)
    from_stage = models.CharField(max_length=20, blank=True)
    to_stage = models.CharField(max_length=20)
    round = models.PositiveSmallIntegerField(default=1)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_stage} -> {self.to_stage}"


class ComplaintRiskRun(models.Model):
    """One refresh of the complaint-risk scores: the model used, how well it ranked on the
    time-based holdout, and its weights (so a page can show why)."""

    class Method(models.TextChoices):
        LOGISTIC = "logistic", "逻辑回归 Logistic regression"
        HAND_WEIGHTED = "hand_weighted", "人工权重 Hand-weighted score"

    scored_at = models.DateTimeField(db_index=True)
    as_of = models.DateTimeField(help_text="Features see only what happened before this")
    method = models.CharField(max_length=16, choices=Method.choices)
    tickets_scored = models.PositiveIntegerField(default=0)
    customers_scored = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="AUC, precision@k, sizes")
    weights = models.JSONField(default=dict, blank=True, help_text="Feature -> weight")
    note = models.TextField(blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-scored_at", "-id"]

    def __str__(self) -> str:
        return f"complaint risk run {self.pk} ({self.method})"


class ComplaintRiskScore(models.Model):
    """The latest complaint-risk score of an open ticket or of a customer, with its reasons.
    Each refresh replaces the previous scores (``scored_at`` says when)."""

    class Kind(models.TextChoices):
        TICKET = "ticket", "工单 Ticket"
        CUSTOMER = "customer", "客户 Customer"

    run = models.ForeignKey(ComplaintRiskRun, on_delete=models.CASCADE, related_name="scores")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField(help_text="Estimated chance of a complaint, 0..1")
    rank = models.PositiveIntegerField(help_text="1 = most at risk, among its kind")
    features = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list, blank=True, help_text="Top contributing features")
    scored_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "rank"]
        indexes = [models.Index(fields=["kind", "rank"], name="complaint_risk_rank")]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"],
                condition=models.Q(kind="ticket"),
                name="complaint_risk_one_per_ticket",
            ),
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(kind="customer"),
                name="complaint_risk_one_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} risk {self.probability:.2f}"
