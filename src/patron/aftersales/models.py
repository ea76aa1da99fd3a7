"""After-sales and logistics (R-F1, R-F2).

After-sales: a customer's request for a return, an exchange, a repair or a compensation on
lines of one order, checked against the after-sales policy (``AfterSalesPolicy``, data staff
edit) when it is filed, then carried through its states (``patron.aftersales.rules``) to its
closure. Each step leaves an ``AfterSalesEvent`` (the timeline, timed) and an audit entry;
money goes back as ``Refund`` rows, never more than was paid; an exchange ships a
``Replacement``. A request that ends in a refund, a replacement or a repair is also written to
``commerce.ReturnRequest`` (source ``patron``, external id ``AS<id>``), so that the scores and
the risk rules see it like the imported history.

Logistics: the carriers' scans (``ShipmentEvent``) arrive through a signed webhook and move the
``commerce.Shipment``; a periodic job finds the shipments in trouble and records one
``LogisticsException`` per shipment and kind, with the proactive ticket it opened.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patron.commerce.models import Order, OrderLine, Shipment
from patron.customer.models import Customer


class Kind(models.TextChoices):
    """The same values as ``commerce.ReturnRequest.Kind`` (a test keeps them the same)."""

    RETURN = "return", "退货 Return"
    EXCHANGE = "exchange", "换货 Exchange"
    REPAIR = "repair", "维修 Repair"
    COMPENSATION = "compensation", "补偿 Compensation"


class ReasonCode(models.TextChoices):
    NO_REASON = "no_reason", "七天无理由 No reason (changed my mind)"
    DEFECTIVE = "defective", "质量问题 Defective"
    DAMAGED = "damaged", "运输破损 Damaged in transit"
    WRONG_ITEM = "wrong_item", "发错货 Wrong item sent"
    NOT_AS_DESCRIBED = "not_as_described", "与描述不符 Not as described"
    MISSING_PARTS = "missing_parts", "少件漏发 Missing parts"
    SIZE_OR_FIT = "size_or_fit", "尺码不合适 Size or fit"
    LATE_DELIVERY = "late_delivery", "物流延误 Late delivery"
    OTHER = "other", "其他 Other"


class AfterSalesPolicy(models.Model):
    """One row of the after-sales policy: for a kind, and a product category (its code as the
    shop knows it, ``commerce.Category.external_id``) or every category (empty), how many days
    after delivery a request is within policy, whether it needs a reason other than "no
    reason", and the largest compensation. The most specific active row applies; outside it a
    request can still be filed, but approving it is a supervisor's exception."""

    kind = models.CharField(max_length=14, choices=Kind.choices)
    category_code = models.CharField(
        max_length=100, blank=True, help_text="commerce.Category.external_id; empty: every one"
    )
    days_after_delivery = models.PositiveSmallIntegerField(
        help_text="Counted from the day after delivery, in the merchant's time zone"
    )
    requires_reason = models.BooleanField(
        default=False, help_text="A reason other than 'no reason' is needed"
    )
    max_compensation = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Compensation only: the most one request may ask (empty: up to what was paid)",
    )
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "category_code"]
        verbose_name_plural = "after-sales policies"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "category_code"], name="aftersales_policy_scope"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.category_code or '*'}: {self.days_after_delivery} days"


class AfterSalesRequest(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "已申请 Requested"
        APPROVED = "approved", "已同意 Approved"
        REJECTED = "rejected", "已拒绝 Rejected"
        APPEALED = "appealed", "申诉中 Appealed"
        AWAITING_GOODS = "awaiting_goods", "待寄回 Awaiting goods"
        RECEIVED = "received", "已收货 Received"
        REFUNDED = "refunded", "已退款 Refunded"
        REPLACED = "replaced", "已换新 Replaced"
        REPAIRED = "repaired", "已维修 Repaired"
        CLOSED = "closed", "已关闭 Closed"
        CANCELLED = "cancelled", "已撤销 Cancelled"

    class Channel(models.TextChoices):
        STAFF = "staff", "客服代办 Staff"
        PUBLIC = "public", "客户自助 Customer's link"
        API = "api", "API"

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="aftersales_requests"
    )
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="aftersales_requests")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.STAFF)
    reason_code = models.CharField(max_length=20, choices=ReasonCode.choices)
    reason = models.TextField(blank=True, help_text="The customer's own words")
    requested_amount = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="Compensation asked"
    )
    currency = models.CharField(max_length=3, default="CNY")
    requested_at = models.DateTimeField()
    # The policy verdict, judged when the request was filed (a slow decision must not push a
    # request filed in time out of its window).
    delivered_at = models.DateTimeField(
        null=True, blank=True, help_text="The delivery the window was counted from"
    )
    is_within_policy = models.BooleanField(default=True)
    policy_reasons = models.JSONField(
        default=list, blank=True, help_text="Stored reasons ({template, params}) of the verdict"
    )
    policy_deadline = models.DateTimeField(null=True, blank=True)
    is_exception = models.BooleanField(
        default=False, help_text="Approved outside policy by a supervisor"
    )
    exception_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    appeal_reason = models.TextField(blank=True)
    appealed_at = models.DateTimeField(null=True, blank=True)
    appeal_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appeal_decided_at = models.DateTimeField(null=True, blank=True)
    appeal_decision_reason = models.TextField(blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="Refunded, replaced or repaired"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "requested_at"]),
            models.Index(fields=["customer", "requested_at"]),
        ]
        permissions = [
            ("approve_exception", "Can approve an after-sales request outside the policy")
        ]

    def __str__(self) -> str:
        return f"AS{self.pk} {self.kind} ({self.status})"

    @property
    def number(self) -> str:
        """How the request is named to customers and in ``commerce.ReturnRequest``."""
        return f"AS{self.pk}"


class AfterSalesLine(models.Model):
    """An order line the request covers, with how many units and the share of the line's
    paid amount they stand for."""

    request = models.ForeignKey(AfterSalesRequest, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        OrderLine, on_delete=models.CASCADE, related_name="aftersales_lines"
    )
    quantity = models.PositiveIntegerField()
    paid_amount = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="The line's amount for these units"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "order_line"], name="aftersales_line_once"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="aftersales_line_quantity"),
        ]

    def __str__(self) -> str:
        return f"{self.order_line_id} × {self.quantity}"


class AfterSalesEvent(models.Model):
    """One step of a request: the timeline, and what the process times are measured from."""

    request = models.ForeignKey(AfterSalesRequest, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status} -> {self.to_status}"


class RefundMethod(models.TextChoices):
    ORIGINAL = "original", "原路退回 To the original payment"
    ALIPAY = "alipay", "支付宝 Alipay"
    WECHAT_PAY = "wechat_pay", "微信支付 WeChat Pay"
    BANK_TRANSFER = "bank_transfer", "银行转账 Bank transfer"
    VOUCHER = "voucher", "代金券 Voucher"
    OTHER = "other", "其他 Other"


class Refund(models.Model):
    """Money paid back on a request. The sum on a line never exceeds what was paid for it
    (``patron.aftersales.services.aftersales_refund`` checks under row locks)."""

    request = models.ForeignKey(AfterSalesRequest, on_delete=models.CASCADE, related_name="refunds")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    method = models.CharField(max_length=16, choices=RefundMethod.choices)
    reference = models.CharField(
        max_length=100, blank=True, help_text="The payment provider's refund number"
    )
    at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="aftersales_refund_positive")
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on AS{self.request_id}"


class Replacement(models.Model):
    """The new goods of an exchange, with their shipment (a ``commerce.Shipment`` of source
    ``patron``, tracked like any other)."""

    request = models.ForeignKey(
        AfterSalesRequest, on_delete=models.CASCADE, related_name="replacements"
    )
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    carrier = models.CharField(max_length=40)
    tracking_number = models.CharField(max_length=60)
    at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number} for AS{self.request_id}"


# ---------------------------------------------------------------------- logistics


class ScanStatus(models.TextChoices):
    """What a carrier's scan says; the webhook maps each to the shipment's status."""

    PICKED_UP = "picked_up", "已揽收 Picked up"
    IN_TRANSIT = "in_transit", "运输中 In transit"
    OUT_FOR_DELIVERY = "out_for_delivery", "派送中 Out for delivery"
    DELIVERED = "delivered", "已签收 Delivered"
    FAILED_DELIVERY = "failed_delivery", "派送失败 Delivery failed"
    EXCEPTION = "exception", "异常 Exception"
    RETURNED = "returned", "已退回 Returned to sender"


class ShipmentEvent(models.Model):
    """One scan of a shipment, as the carrier reported it. ``carrier_event_id`` makes a
    replayed webhook harmless: one row per (shipment, carrier event)."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="scan_events")
    carrier_event_id = models.CharField(max_length=100)
    at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=ScanStatus.choices)
    location = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=40, default="carrier_webhook")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shipment", "carrier_event_id"], name="shipment_event_once"
            )
        ]
        indexes = [models.Index(fields=["shipment", "at"])]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M}"


class LogisticsException(models.Model):
    """A shipment in trouble, found by the ``logistics-exceptions`` job: one per shipment and
    kind, with the proactive ticket opened for it and the message sent to the customer."""

    class Kind(models.TextChoices):
        NO_SCAN = "no_scan", "长时间无物流更新 No scan for too long"
        LATE = "late", "超过承诺时效 Late against the promised date"
        FAILED_DELIVERY = "failed_delivery", "派送失败 Delivery failed"

    class Status(models.TextChoices):
        OPEN = "open", "待处理 Open"
        RESOLVED = "resolved", "已解决 Resolved"

    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="logistics_exceptions"
    )
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    detected_at = models.DateTimeField()
    detail = models.TextField(help_text="What was found, in English (the ticket says the same)")
    last_scan_at = models.DateTimeField(null=True, blank=True)
    ticket = models.ForeignKey(
        "service.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket_error = models.TextField(
        blank=True, help_text="Why no ticket could be opened yet (the job tries again)"
    )
    is_customer_notified = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "kind"], name="logistics_exception_once")
        ]
        indexes = [models.Index(fields=["status", "detected_at"])]

    def __str__(self) -> str:
        return f"{self.kind} on shipment {self.shipment_id} ({self.status})"
