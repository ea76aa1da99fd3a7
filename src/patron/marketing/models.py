"""Marketing: saved segments (rules over customers) and coupons.

A ``Segment`` is a named rule (``patron.marketing.rules``); every edit is a new version, kept in
``SegmentVersion``. ``segments_refresh`` stores each segment's size after a scoring run; a
``SegmentSnapshot`` freezes the members at one moment (a campaign's audience).

A ``CouponTemplate`` says what a coupon gives and how many may exist (stock), how much they may
give away in total (budget) and how many one customer may hold; a ``Coupon`` is one code. Every
write goes through ``patron.marketing.services``, with the template's row locked. See
docs/marketing.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patron.commerce.models import Order
from patron.customer.models import Customer


class Segment(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=500, blank=True)
    rule = models.JSONField(help_text="The rule in force (the latest version's)")
    version = models.PositiveIntegerField(default=1)
    member_count = models.PositiveIntegerField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluation_error = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class SegmentVersion(models.Model):
    """Every version of a segment's rule, as saved (never changed)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    rule = models.JSONField()
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["segment_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "version"], name="marketing_segment_version")
        ]

    def __str__(self) -> str:
        return f"segment {self.segment_id} v{self.version}"


class SegmentSnapshot(models.Model):
    """The members of a segment at one moment, frozen (a campaign's audience)."""

    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="snapshots")
    version = models.PositiveIntegerField()
    rule = models.JSONField()
    member_count = models.PositiveIntegerField(default=0)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"snapshot {self.pk} of segment {self.segment_id}"


class SegmentMembership(models.Model):
    snapshot = models.ForeignKey(SegmentSnapshot, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "customer"], name="marketing_membership_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id}:{self.customer_id}"


class CouponTemplate(models.Model):
    class Kind(models.TextChoices):
        AMOUNT_OFF = "amount_off", "满减 Amount off"
        PERCENT_OFF = "percent_off", "折扣 Percent off"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    value = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="CNY off, or percent off (0–100)"
    )
    min_order_amount = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, help_text="Threshold: order total at least"
    )
    category_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="Only orders with a line in these categories; empty: any",
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    valid_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days a code stays valid after it is issued"
    )
    per_customer_limit = models.PositiveIntegerField(
        null=True, blank=True, default=1, help_text="Codes one customer may hold; empty: any"
    )
    stock = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most codes ever issued; empty: no limit"
    )
    budget = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Most discount given in total (CNY); empty: no limit",
    )
    is_active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class Coupon(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", "已发放 Issued"
        REDEEMED = "redeemed", "已使用 Redeemed"
        EXPIRED = "expired", "已过期 Expired"
        VOID = "void", "已作废 Void"

    code = models.CharField(max_length=20, unique=True)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    issue_key = models.CharField(max_length=120, blank=True, db_index=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redeemed_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons"
    )
    order_reference = models.CharField(
        max_length=100, blank=True, help_text="The checkout's order number (API redemptions)"
    )
    redeem_key = models.CharField(max_length=120, blank=True)
    order_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    discount_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    ended_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        # Checkout systems redeem coupons: a permission of its own, without the right to issue.
        permissions = [("redeem_coupon", "Can redeem coupons (checkout)")]
        indexes = [
            models.Index(fields=["template", "status"]),
            models.Index(fields=["template", "customer"]),
            models.Index(fields=["status", "expires_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(order__isnull=False), name="marketing_coupon_order"
            ),
            models.CheckConstraint(
                condition=~Q(status="redeemed") | Q(discount_amount__gte=0),
                name="marketing_redeemed_has_discount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"
