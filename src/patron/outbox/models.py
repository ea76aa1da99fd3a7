"""Every message Patron sends to a customer, whether it went out or not.

A message is rendered when it is queued (what staff see is what the customer got) and is then
delivered by ``patron.outbox.services.outbox_deliver``. Subject, body and the address it went to
carry personal data and are encrypted at rest. The allowed transitions of ``status`` are in
``patron.outbox.rules``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from patron.customer.models import Consent, Customer
from patron.privacy.fields import EncryptedTextField


class Message(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "待发送 Queued"
        SENDING = "sending", "发送中 Sending"
        SENT = "sent", "已发送 Sent"
        FAILED = "failed", "发送失败 Failed"
        SUPPRESSED = "suppressed", "未发送 Suppressed"
        CANCELLED = "cancelled", "已取消 Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    channel = models.CharField(max_length=20, choices=Consent.Channel.choices)
    purpose = models.CharField(max_length=20, choices=Consent.Purpose.choices)
    template = models.CharField(max_length=80, help_text="Name in patron.outbox.templates")
    language = models.CharField(max_length=10)
    subject = EncryptedTextField()
    body = EncryptedTextField()
    recipient = EncryptedTextField(help_text="The address it was (or would have been) sent to")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(
        blank=True, help_text="Why it was suppressed, cancelled or failed for good"
    )
    last_error = models.TextField(blank=True, help_text="The latest delivery error, if any")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Delivery attempts made")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a queued message is due; empty once final"
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a delivery run took it (status sending)"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    key = models.CharField(
        max_length=200, unique=True, help_text="Idempotency key given by the caller"
    )
    source = models.CharField(
        max_length=200, blank=True, help_text="What it is about, e.g. certification.application:12"
    )
    provider_message_id = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(
        default=dict,
        blank=True,
        help_text="E-mail headers the caller sets (Message-ID, In-Reply-To, References)",
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["customer", "-created_at"], name="outbox_customer_recent"),
            models.Index(fields=["status", "claimed_at"], name="outbox_claimed"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} {self.template} to {self.customer_id} ({self.status})"
