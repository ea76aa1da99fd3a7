"""Risk control: rules analysts edit, the alerts they raise, the restrictions and blacklist
entries people decide on, and the appeals customers file against them.

No row here is ever the decision of a rule or a model alone: rules and models raise alerts and
*suggest* an action; a person applies a restriction, and blacklisting needs one or two people
besides whoever proposed it (``RiskPolicy.blacklist_approvals``). The allowed transitions of
alerts, blacklist entries and appeals are in ``patron.risk.rules``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import translation

from patron.customer.models import Customer


class Severity(models.TextChoices):
    LOW = "low", "低 Low"
    MEDIUM = "medium", "中 Medium"
    HIGH = "high", "高 High"


class RestrictionKind(models.TextChoices):
    PAYMENT_METHOD = "payment_method", "限制支付方式 Payment methods limited"
    CREDIT_LIMIT = "credit_limit", "信用额度 Credit limit"
    ORDER_REVIEW = "order_review", "订单人工审核 Orders reviewed"
    COUPON_BAN = "coupon_ban", "禁用优惠券 No coupons"
    ACCOUNT_FREEZE = "account_freeze", "冻结账户 Account frozen"


class SuggestedAction(models.TextChoices):
    WATCH = "watch", "观察 Watch"
    ORDER_REVIEW = "order_review", "订单人工审核 Review orders"
    PAYMENT_METHOD = "payment_method", "限制支付方式 Limit payment methods"
    CREDIT_LIMIT = "credit_limit", "降低信用额度 Lower the credit limit"
    COUPON_BAN = "coupon_ban", "禁用优惠券 Ban coupons"
    ACCOUNT_FREEZE = "account_freeze", "冻结账户 Freeze the account"
    BLACKLIST = "blacklist", "拉黑 Blacklist"


class RiskPolicy(models.Model):
    """How restrictions, scores and grades become a checkout policy, and how many people a
    blacklisting needs. Versioned like grade policies: an edit is a new version, one active."""

    version = models.PositiveIntegerField(unique=True)
    rules = models.JSONField(help_text="See patron.risk.rules.CheckoutPolicyRules")
    note = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="risk_policy_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"risk policy v{self.version}"


def rule_display_name(name: str, name_zh: str) -> str:
    """A rule's name in the active language (the English one when no Chinese name is set)."""
    chinese = (translation.get_language() or "").startswith("zh")
    return name_zh if chinese and name_zh else name


class RiskRule(models.Model):
    """A detection rule, as analysts edit it: a measure (``patron.risk.detection.MEASURES``)
    over a window, a threshold, a minimum volume, and the action it suggests."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120, help_text="English name")
    name_zh = models.CharField(max_length=120, blank=True, help_text="Chinese name")
    measure = models.CharField(max_length=40)
    window_days = models.PositiveIntegerField(default=180)
    threshold = models.FloatField()
    min_volume = models.PositiveIntegerField(default=1)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    action = models.CharField(
        max_length=16, choices=SuggestedAction.choices, default=SuggestedAction.WATCH
    )
    is_enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every edit")
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def display_name(self) -> str:
        """The name in the active language: Chinese when the page is, and a Chinese name is set."""
        return rule_display_name(self.name, self.name_zh)


class DetectionRun(models.Model):
    """One pass of the rules and the anomaly model over every customer."""

    as_of = models.DateTimeField(help_text="Only data before this instant was read")
    trigger = models.CharField(max_length=20, help_text="schedule, import, cli or api")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    customers = models.PositiveIntegerField(default=0)
    hits = models.JSONField(default=dict, blank=True, help_text="Rule code -> customers hit")
    alerts_new = models.PositiveIntegerField(default=0)
    alerts_updated = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"detection run {self.pk} as of {self.as_of:%Y-%m-%d %H:%M}"


class Alert(models.Model):
    """An early warning about one customer from one rule or the anomaly model.

    While an alert is open or watched, a later run updates its value and evidence instead of
    raising another one for the same customer and rule.
    """

    class Status(models.TextChoices):
        OPEN = "open", "待处理 Open"
        WATCHING = "watching", "观察中 Watching"
        DISMISSED = "dismissed", "已驳回 Dismissed"
        RESTRICTED = "restricted", "已限制 Restricted"
        ESCALATED = "escalated", "已提议拉黑 Blacklist proposed"

    class Source(models.TextChoices):
        RULE = "rule", "规则 Rule"
        MODEL = "model", "模型 Model"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="risk_alerts")
    source = models.CharField(max_length=6, choices=Source.choices)
    rule = models.ForeignKey(
        RiskRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    rule_code = models.CharField(
        max_length=60, help_text="The rule's code, or 'model:isolation_forest'"
    )
    rule_version = models.PositiveIntegerField(default=1)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    value = models.FloatField(help_text="The measure's value, or the anomaly score")
    threshold = models.FloatField(null=True, blank=True)
    volume = models.PositiveIntegerField(default=0)
    evidence = models.JSONField(default=list, blank=True, help_text="[{type, id}]")
    reasons = models.JSONField(default=list, blank=True, help_text="Model alerts: features")
    suggested_action = models.CharField(
        max_length=16, choices=SuggestedAction.choices, default=SuggestedAction.WATCH
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    run = models.ForeignKey(
        DetectionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "rule_code"],
                condition=Q(status__in=["open", "watching"]),
                name="risk_alert_one_live_per_rule",
            )
        ]
        indexes = [models.Index(fields=["status", "severity"])]

    def __str__(self) -> str:
        return f"alert {self.pk} {self.rule_code} on {self.customer_id}"


class Restriction(models.Model):
    """A limit a person put on a customer. Active from ``starts_at`` until lifted or expired."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="risk_restrictions"
    )
    kind = models.CharField(max_length=16, choices=RestrictionKind.choices)
    scope = models.JSONField(
        default=dict,
        blank=True,
        help_text="payment_method: {methods: [...]} barred; credit_limit: {limit: '500.00'}",
    )
    reason = models.TextField()
    evidence = models.JSONField(default=list, blank=True)
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="restrictions"
    )
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["customer", "lifted_at"])]

    def __str__(self) -> str:
        return f"{self.kind} on {self.customer_id}"


class BlacklistEntry(models.Model):
    """A proposal to blacklist a customer and the people who decided on it."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "待确认 Proposed"
        CONFIRMED = "confirmed", "待复核 Awaiting second approval"
        ACTIVE = "active", "生效 Active"
        REJECTED = "rejected", "已否决 Rejected"
        LIFTED = "lifted", "已解除 Lifted"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="blacklist")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    reason = models.TextField()
    evidence = models.JSONField(default=list, blank=True)
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="blacklist"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when a rule or the model proposed it",
    )
    proposed_at = models.DateTimeField()
    approvals = models.JSONField(
        default=list, blank=True, help_text="[{user_id, username, at, reason}] in order"
    )
    approvals_needed = models.PositiveSmallIntegerField(default=2)
    decided_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rejection_reason = models.TextField(blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "blacklist entries"
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["proposed", "confirmed", "active"]),
                name="risk_blacklist_one_live_per_customer",
            )
        ]

    def __str__(self) -> str:
        return f"blacklist {self.pk} on {self.customer_id} ({self.status})"


class Appeal(models.Model):
    """A customer's objection to a restriction, a blacklisting, or the checkout terms their
    credit score decided automatically (PIPL Art. 24, GDPR Art. 22): a case with its own SLA,
    decided by a person other than whoever decided what is appealed."""

    class Status(models.TextChoices):
        OPEN = "open", "待受理 Open"
        IN_REVIEW = "in_review", "复核中 In review"
        UPHELD = "upheld", "维持 Upheld"
        OVERTURNED = "overturned", "撤销 Overturned"

    class Subject(models.TextChoices):
        RESTRICTION = "restriction", "限制措施 A restriction"
        BLACKLIST = "blacklist", "黑名单 A blacklisting"
        AUTOMATED = "automated", "自动决策 Checkout terms set by the credit score"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="risk_appeals")
    subject = models.CharField(max_length=12, choices=Subject.choices, default=Subject.RESTRICTION)
    restriction = models.ForeignKey(
        Restriction, null=True, blank=True, on_delete=models.CASCADE, related_name="appeals"
    )
    blacklist = models.ForeignKey(
        BlacklistEntry, null=True, blank=True, on_delete=models.CASCADE, related_name="appeals"
    )
    statement = models.TextField(help_text="The customer's words")
    channel = models.CharField(max_length=20, default="staff", help_text="staff, api, web, …")
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    filed_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="Decision due by (the appeal SLA)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_started_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    subject="restriction", restriction__isnull=False, blacklist__isnull=True
                )
                | Q(subject="blacklist", restriction__isnull=True, blacklist__isnull=False)
                | Q(subject="automated", restriction__isnull=True, blacklist__isnull=True),
                name="risk_appeal_one_target",
            ),
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(subject="automated", status__in=["open", "in_review"]),
                name="risk_appeal_one_live_automated",
            ),
            models.UniqueConstraint(
                fields=["restriction"],
                condition=Q(status__in=["open", "in_review"]),
                name="risk_appeal_one_live_per_restriction",
            ),
            models.UniqueConstraint(
                fields=["blacklist"],
                condition=Q(status__in=["open", "in_review"]),
                name="risk_appeal_one_live_per_blacklist",
            ),
        ]

    def __str__(self) -> str:
        return f"appeal {self.pk} ({self.status})"


class CreditOverride(models.Model):
    """Checkout terms a person granted after reviewing what the credit score decided
    automatically (an overturned appeal): deferred payment and a credit limit. Restrictions a
    person applied still come on top."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="risk_credit_overrides"
    )
    credit_limit = models.DecimalField(max_digits=14, decimal_places=2)
    allow_deferred = models.BooleanField(
        default=True, help_text="Offer cash on delivery and pay later whatever the score"
    )
    reason = models.TextField()
    appeal = models.ForeignKey(
        Appeal, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrides"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["customer", "revoked_at"])]

    def __str__(self) -> str:
        return f"credit override {self.pk} on {self.customer_id}"
