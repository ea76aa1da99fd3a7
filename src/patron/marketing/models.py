"""Marketing: saved segments (rules over customers) and coupons.

A ``Segment`` is a named rule (``patron.marketing.rules``); every edit is a new version, kept in
``SegmentVersion``. ``segments_refresh`` stores each segment's size after a scoring run; a
``SegmentSnapshot`` freezes the members at one moment (a campaign's audience).

A ``CouponTemplate`` says what a coupon gives and how many may exist (stock), how much they may
give away in total (budget) and how many one customer may hold; a ``Coupon`` is one code. Every
write goes through ``patron.marketing.services``, with the template's row locked.

A ``Campaign`` sends an offer and a message to a segment's members, keeping a random holdout
that gets nothing, and is evaluated by comparing the two groups' orders (``CampaignMember``
freezes who was in which group at launch). See docs/marketing.md.

A ``WinbackProgramme`` is an always-on retention flow (R-G7): each run enrols the customers
whose churn risk has risen to its threshold (``WinbackEnrolment``, one row per customer and
entry), draws each one's group from the programme's seed, sends the treated their offer and
evaluates reactivation within the measurement window against the holdout (``WinbackRun``
records each run).
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


class Campaign(models.Model):
    """A campaign: a goal, an audience (a segment frozen at launch), a holdout, an offer sent
    with a message over the outbox, a schedule, a budget and a frequency cap. The status moves
    through ``patron.marketing.rules.CAMPAIGN_MACHINE``; only a draft is edited."""

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿 Draft"
        SCHEDULED = "scheduled", "已排期 Scheduled"
        RUNNING = "running", "进行中 Running"
        FINISHED = "finished", "已结束 Finished"
        CANCELLED = "cancelled", "已取消 Cancelled"

    class Goal(models.TextChoices):
        REPURCHASE_RATE = "repurchase_rate", "复购率 Repurchase rate"
        REVENUE_PER_CUSTOMER = "revenue_per_customer", "人均销售额 Revenue per customer"
        REACTIVATION_RATE = "reactivation_rate", "唤醒率 Reactivation rate"

    class Offer(models.TextChoices):
        COUPON = "coupon", "优惠券 Coupon"
        POINTS = "points", "积分 Points"
        GIFT = "gift", "礼品 Gift"
        MESSAGE = "message", "仅消息 Message only"

    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    goal_metric = models.CharField(max_length=24, choices=Goal.choices)
    target_value = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="The uplift aimed for (treatment − holdout): a share for rates (0.03 = 3 "
        "points), CNY for revenue per customer",
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns")
    snapshot = models.ForeignKey(
        SegmentSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    holdout_share = models.DecimalField(max_digits=4, decimal_places=3, default=0.1)
    seed = models.BigIntegerField(help_text="Seed of the holdout draw (reproducible)")
    offer_kind = models.CharField(max_length=10, choices=Offer.choices)
    coupon_template = models.ForeignKey(
        CouponTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    points = models.PositiveIntegerField(null=True, blank=True)
    gift_text = models.CharField(max_length=200, blank=True)
    channels = models.JSONField(default=list, help_text="Channels in order of preference")
    message_template = models.CharField(max_length=80, default="marketing.announcement")
    message_title = models.CharField(max_length=120)
    message_text = models.TextField(max_length=2000)
    send_at = models.DateTimeField(null=True, blank=True)
    budget = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    unit_cost = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Cost of one offer (CNY); empty: an amount-off coupon's face value, else 0",
    )
    spent = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    frequency_cap_messages = models.PositiveIntegerField(null=True, blank=True, default=2)
    frequency_cap_days = models.PositiveIntegerField(null=True, blank=True, default=7)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    scheduled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    launched_by = models.CharField(max_length=150, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    note = models.CharField(
        max_length=500, blank=True, help_text="E.g. why no message went out (a past campaign)"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "send_at"])]

    def __str__(self) -> str:
        return f"campaign {self.pk} {self.name} ({self.status})"


class CampaignMember(models.Model):
    """One customer of a campaign's frozen audience: the group drawn at launch (treatment or
    holdout) and what happened to them (messaged, or skipped and why)."""

    class Group(models.TextChoices):
        TREATMENT = "treatment", "实验组 Treatment"
        HOLDOUT = "holdout", "对照组 Holdout"

    class Outcome(models.TextChoices):
        PENDING = "pending", "待处理 Pending"
        MESSAGED = "messaged", "已发送 Messaged"
        SUPPRESSED = "suppressed", "被拦截 Suppressed by the outbox"
        NO_CONSENT = "no_consent", "未授权 No consent"
        NO_ADDRESS = "no_address", "无联系方式 No address"
        CAPPED = "capped", "频次上限 Frequency cap"
        OVER_BUDGET = "over_budget", "超出预算 Over budget"
        COUPON_LIMIT = "coupon_limit", "已达领券上限 Coupon limit"
        OUT_OF_STOCK = "out_of_stock", "券已发完 Out of stock"
        NOT_SENT = "not_sent", "未发送 Not sent"
        HOLDOUT = "holdout", "对照组不发送 Held out"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    group = models.CharField(max_length=10, choices=Group.choices)
    outcome = models.CharField(max_length=14, choices=Outcome.choices, default=Outcome.PENDING)
    reason = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=20, blank=True)
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    coupon = models.ForeignKey(
        Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points_entry = models.ForeignKey(
        "loyalty.PointsEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="marketing_campaign_once")
        ]
        indexes = [models.Index(fields=["campaign", "group", "outcome"])]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.customer_id} ({self.group}, {self.outcome})"


class WinbackProgramme(models.Model):
    """A retention (win-back) flow staff edit: who enters (the churn threshold, the cool-down),
    what they get (a standard offer and, optionally, a better one for high-value customers),
    on which channels, the holdout and the measurement window. Rules in
    ``patron.marketing.rules`` (``winback_entry``, ``holdout_draw``, ``winback_offer_tier``);
    every write through ``patron.marketing.services``."""

    Offer = Campaign.Offer

    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True, help_text="Only active programmes run")
    churn_threshold = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        help_text="Customers whose churn probability rises to this (0–1) or above enter",
    )
    holdout_share = models.DecimalField(
        max_digits=4, decimal_places=3, default=0.1, help_text="Share held out (0–0.5)"
    )
    seed = models.BigIntegerField(help_text="Seed of the holdout draw (fixed once enrolled)")
    cool_down_days = models.PositiveIntegerField(
        default=90, help_text="A customer is not enrolled again within this many days"
    )
    window_days = models.PositiveIntegerField(
        default=60, help_text="Reactivation: a paid order within this many days of enrolment"
    )
    offer_kind = models.CharField(max_length=10, choices=Offer.choices)
    coupon_template = models.ForeignKey(
        CouponTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points = models.PositiveIntegerField(null=True, blank=True)
    gift_text = models.CharField(max_length=200, blank=True)
    high_value_offer_kind = models.CharField(
        max_length=10,
        choices=Offer.choices,
        blank=True,
        help_text="The offer of high-value customers; empty: everyone gets the standard offer",
    )
    high_value_coupon_template = models.ForeignKey(
        CouponTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    high_value_points = models.PositiveIntegerField(null=True, blank=True)
    high_value_gift_text = models.CharField(max_length=200, blank=True)
    high_value_min_clv = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="High value: CLV over 12 months at least this (CNY)",
    )
    high_value_grades = models.JSONField(
        default=list, blank=True, help_text="High value: or a grade among these"
    )
    channels = models.JSONField(default=list, help_text="Channels in order of preference")
    message_title = models.CharField(max_length=120)
    message_text = models.TextField(
        max_length=2000, help_text="May use {coupon_code}, {points}, {gift}, {top_category}"
    )
    category_fallback = models.CharField(
        max_length=60,
        default="精选好物",
        help_text="Put for {top_category} when the customer bought nothing categorised",
    )
    frequency_cap_messages = models.PositiveIntegerField(null=True, blank=True, default=2)
    frequency_cap_days = models.PositiveIntegerField(null=True, blank=True, default=7)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "win-back programme"

    def __str__(self) -> str:
        return f"win-back {self.name} (≥ {self.churn_threshold})"


class WinbackRun(models.Model):
    """One run of a programme: when, on which threshold, and how many customers entered,
    were held off by the cool-down or were still at risk from an earlier entry."""

    programme = models.ForeignKey(WinbackProgramme, on_delete=models.CASCADE, related_name="runs")
    as_of = models.DateTimeField(help_text="Enrolment time; scores from after it are not used")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    is_placebo = models.BooleanField(
        default=False, help_text="Nothing was sent (a replay on past data, an A/A test)"
    )
    threshold = models.DecimalField(max_digits=4, decimal_places=3)
    at_risk = models.PositiveIntegerField(default=0, help_text="Customers at or above it")
    entered = models.PositiveIntegerField(default=0)
    treatment = models.PositiveIntegerField(default=0)
    holdout = models.PositiveIntegerField(default=0)
    cool_down = models.PositiveIntegerField(default=0, help_text="At risk, but in the cool-down")
    still_at_risk = models.PositiveIntegerField(
        default=0, help_text="At risk since an earlier entry, never seen below it since"
    )
    recovered = models.PositiveIntegerField(
        default=0, help_text="Earlier entrants now seen below the threshold"
    )
    messaged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    run_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-as_of", "-id"]

    def __str__(self) -> str:
        return f"win-back run {self.pk} of {self.programme_id} as of {self.as_of:%Y-%m-%d %H:%M}"


class WinbackEnrolment(models.Model):
    """One customer's entry into a programme: the risk that brought them in, their group,
    the offer chosen for them and why, what happened (messaged, or skipped and why), and the
    end of their measurement window. ``cycle`` counts a customer's entries (1, 2, …): unique
    with the programme and the customer, so a run repeated or racing another enrols nobody
    twice."""

    class Group(models.TextChoices):
        TREATMENT = "treatment", "实验组 Treatment"
        HOLDOUT = "holdout", "对照组 Holdout"

    class Tier(models.TextChoices):
        STANDARD = "standard", "标准 Standard"
        HIGH_VALUE = "high_value", "高价值 High value"

    Outcome = CampaignMember.Outcome

    programme = models.ForeignKey(
        WinbackProgramme, on_delete=models.CASCADE, related_name="enrolments"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    cycle = models.PositiveIntegerField(default=1)
    run = models.ForeignKey(WinbackRun, on_delete=models.CASCADE, related_name="enrolments")
    enrolled_at = models.DateTimeField()
    window_ends_at = models.DateTimeField()
    churn_probability = models.FloatField()
    score_as_of = models.DateField(null=True, blank=True)
    group = models.CharField(max_length=10, choices=Group.choices)
    offer_tier = models.CharField(max_length=10, choices=Tier.choices)
    offer_kind = models.CharField(max_length=10, choices=Campaign.Offer.choices)
    coupon_template = models.ForeignKey(
        CouponTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points = models.PositiveIntegerField(null=True, blank=True)
    offer_reason = models.CharField(max_length=500, help_text="Why this offer, in plain words")
    basis = models.JSONField(
        default=dict, blank=True, help_text="The facts the entry and the offer were decided on"
    )
    outcome = models.CharField(
        max_length=14, choices=CampaignMember.Outcome.choices, default=Outcome.PENDING
    )
    reason = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=20, blank=True)
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    coupon = models.ForeignKey(
        Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points_entry = models.ForeignKey(
        "loyalty.PointsEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The first run after this entry that saw the risk below the threshold",
    )

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "customer", "cycle"], name="marketing_winback_entry_once"
            )
        ]
        indexes = [
            models.Index(fields=["programme", "customer"]),
            models.Index(fields=["programme", "group", "outcome"]),
            models.Index(fields=["programme", "window_ends_at"]),
        ]

    def __str__(self) -> str:
        return f"win-back {self.programme_id}:{self.customer_id}#{self.cycle} ({self.group})"
