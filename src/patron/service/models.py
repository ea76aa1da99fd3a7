"""Service tickets. This is the first layer (what the customer file imports and shows); the
service-desk issue adds conversations, SLA policies and escalation on top of it."""

from __future__ import annotations

from django.db import models

from patron.commerce.models import Order
from patron.customer.models import Customer, Imported


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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="ticket_source_ext")
        ]
        indexes = [models.Index(fields=["customer", "opened_at"])]

    def __str__(self) -> str:
        return self.subject
