"""Loyalty: the points ledger and membership tiers.

The ledger is append-only. A ``PointsEntry`` is never deleted and never changed, except the
``remaining`` count of an earning lot as later debits consume it; ``PointsAccount.balance`` is
the sum of the entries, and also the sum of the lots' ``remaining`` counts. The rules (how much
an order earns, how refunds take points back, FIFO, expiry, tiers) are in
``patron.loyalty.rules``; every write goes through ``patron.loyalty.services`` or
``patron.loyalty.tiers``. See docs/loyalty.md.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from patron.customer.models import Customer
from patron.loyalty.rules import LoyaltyRules


class LoyaltyPolicy(models.Model):
    """How points are earned and how long they last. Versioned: an edit saves a new version,
    exactly one is in force, and every change is audited with the old and new values."""

    version = models.PositiveIntegerField(unique=True)
    points_per_cny = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("1.00"),
        help_text="Points per CNY paid, rounded down per order",
    )
    review_points = models.PositiveIntegerField(default=10, help_text="Points per review")
    review_min_length = models.PositiveIntegerField(
        default=15, help_text="Characters a review's text needs to earn points"
    )
    expiry_months = models.PositiveSmallIntegerField(
        default=24, help_text="Points expire this many months after they were earned"
    )
    tier_window_months = models.PositiveSmallIntegerField(
        default=12, help_text="Tiers look at spend over this many months"
    )
    note = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "loyalty policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="loyalty_policy_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"loyalty policy v{self.version}"

    def rules(self) -> LoyaltyRules:
        return LoyaltyRules(
            points_per_cny=Decimal(self.points_per_cny),
            review_points=self.review_points,
            review_min_length=self.review_min_length,
            expiry_months=self.expiry_months,
            tier_window_months=self.tier_window_months,
        )


class PointsAccount(models.Model):
    """A customer's points balance. Changed only with the row locked (``select_for_update``),
    together with the entry that explains the change; the database refuses a negative one."""

    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="points_account"
    )
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="loyalty_account_balance_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"points of {self.customer_id}: {self.balance}"


class EntryKind(models.TextChoices):
    EARN_ORDER = "earn_order", "订单积分 Earned on an order"
    REVERSE_RETURN = "reverse_return", "退款扣回 Taken back on a refund"
    REVERSE_CANCEL = "reverse_cancel", "取消扣回 Taken back on a cancelled order"
    EARN_REVIEW = "earn_review", "评价积分 Earned on a review"
    REDEEM = "redeem", "兑换 Redeemed"
    EXPIRE = "expire", "过期 Expired"
    ADJUST = "adjust", "人工调整 Adjusted by staff"


#: Entries that open a lot (points that can later be spent, taken back or expire).
LOT_KINDS = frozenset({EntryKind.EARN_ORDER, EntryKind.EARN_REVIEW, EntryKind.ADJUST})


class PointsEntry(models.Model):
    """One line of the ledger: points in (positive) or out (negative), and the balance after.

    ``idempotency_key`` is unique: the same order, return, review, lot expiry or redemption
    request never posts twice. A crediting entry (and a positive adjustment) is a *lot*: it
    has ``expires_on`` and ``remaining``, the points of it not yet spent, taken back or expired;
    debits record which lots they took from in ``consumed``.
    """

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    points = models.BigIntegerField(help_text="Signed: positive in, negative out")
    balance_after = models.BigIntegerField()
    shortfall = models.PositiveBigIntegerField(
        default=0,
        help_text="Points a reversal was due but could not take: the balance stops at zero",
    )
    amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The money the points were computed from (order total, refund)",
    )
    source_type = models.CharField(
        max_length=12, help_text="order, return, review, lot, request or staff"
    )
    source_id = models.BigIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=160, unique=True)
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        help_text="For reversals and expiries: the earning entry (lot) concerned",
    )
    expires_on = models.DateField(null=True, blank=True, help_text="Lots: first day they're lost")
    remaining = models.BigIntegerField(
        null=True, blank=True, help_text="Lots: points still unspent"
    )
    consumed = models.JSONField(
        default=list, blank=True, help_text="Debits: [[lot entry id, points]] taken, in order"
    )
    reason = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(help_text="When it happened (payment, refund, request)")
    posted_at = models.DateTimeField(help_text="When it was written to the ledger")
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "points entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="loyalty_entry_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(remaining__isnull=True)
                | Q(remaining__gte=0, remaining__lte=F("points"), expires_on__isnull=False),
                name="loyalty_entry_lot_remaining_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "id"]),
            models.Index(fields=["source_type", "source_id"]),
            models.Index(
                fields=["expires_on"], condition=Q(remaining__gt=0), name="loyalty_open_lots"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d} ({self.idempotency_key})"


class Tier(models.Model):
    """A membership tier: its names, rank and the rules to reach and keep it (staff edit them;
    see ``patron.loyalty.rules.TierRule`` for how the criteria combine)."""

    class Needs(models.TextChoices):
        ANY = "any", "满足任一条件 Any criterion"
        ALL = "all", "满足全部条件 All criteria"

    class MinGrade(models.TextChoices):
        CORE = "core", "核心客户 Core"
        POTENTIAL = "potential", "潜力客户 Potential"
        ORDINARY = "ordinary", "普通客户 Ordinary"

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=60, help_text="Chinese name")
    name_en = models.CharField(max_length=60)
    rank = models.PositiveSmallIntegerField(unique=True, help_text="0 is the entry tier")
    min_spend = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Net spend over the policy's window (CNY)",
    )
    min_grade = models.CharField(
        max_length=10, choices=MinGrade.choices, blank=True, default="", help_text="Empty: any"
    )
    min_points = models.PositiveIntegerField(null=True, blank=True, help_text="Points balance")
    needs = models.CharField(max_length=3, choices=Needs.choices, default=Needs.ANY)
    grace_days = models.PositiveIntegerField(
        default=30, help_text="Days a member keeps the tier after no longer qualifying"
    )
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every edit")
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rank"]

    def __str__(self) -> str:
        return f"{self.name} {self.name_en}"


class TierMembership(models.Model):
    """A customer's tier over time: periods ``[valid_from, valid_to)`` with no gaps and no
    overlaps; the open one (``valid_to`` null) is the tier now."""

    class Move(models.TextChoices):
        JOIN = "join", "加入 Joined"
        UP = "up", "升级 Moved up"
        DOWN = "down", "降级 Moved down"

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="tier_memberships"
    )
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="memberships")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    move = models.CharField(max_length=4, choices=Move.choices)
    reason = models.CharField(max_length=300, blank=True)
    facts = models.JSONField(default=dict, blank=True, help_text="Spend, grade, points decided on")
    below_since = models.DateField(
        null=True,
        blank=True,
        help_text="Open period: first evaluation on which the customer no longer qualified",
    )

    class Meta:
        ordering = ["customer_id", "valid_from"]
        indexes = [models.Index(fields=["customer", "valid_from"])]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(valid_to__isnull=True),
                name="loyalty_one_open_tier_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")),
                name="loyalty_tier_period_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.tier_id} from {self.valid_from}"
