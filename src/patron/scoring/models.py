"""The latest scores of every customer, and the runs that produced them.

Money is Decimal here (the OLTP convention); the models compute in floats (analytics).
"""

from __future__ import annotations

from django.db import models

from patron.customer.models import Customer
from patron.scoring.fields import JSONTextField


class ScoreRun(models.Model):
    """One run of the scoring pipeline as of a cut-off date (``patron score``)."""

    class Status(models.TextChoices):
        RUNNING = "running", "进行中 Running"
        COMPLETED = "completed", "已完成 Completed"
        FAILED = "failed", "失败 Failed"

    as_of = models.DateField(help_text="Only data before this date was used")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    customers = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(default=dict, blank=True, help_text="Fitted model parameters")
    seconds = models.JSONField(default=dict, blank=True, help_text="Time per stage")
    is_regrade = models.BooleanField(
        default=False, help_text="A (quarterly) re-grade: every customer's grade was re-decided"
    )
    policy = models.ForeignKey(
        "GradePolicy", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    summary = models.JSONField(
        default=dict, blank=True, help_text="Grade counts and moves, models used, clusters"
    )
    reasons_folder = models.CharField(
        max_length=120,
        blank=True,
        help_text="The run's reasons folder in the lake (reasons/…); blank once pruned",
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"run {self.pk} as of {self.as_of} ({self.status})"


class Grade(models.TextChoices):
    CORE = "core", "核心客户 Core"
    POTENTIAL = "potential", "潜力客户 Potential"
    ORDINARY = "ordinary", "普通客户 Ordinary"


class GradePolicy(models.Model):
    """How grades are decided: weights, thresholds and hard rules, as data staff edit.

    Versions are immutable once saved: an edit saves a new version, and exactly one version is
    active. ``rules`` is validated by ``patron.intelligence.grading.GradePolicy``.
    """

    version = models.PositiveIntegerField(unique=True)
    rules = models.JSONField(help_text="Weights, thresholds, hard rules, hysteresis")
    note = models.CharField(max_length=200, blank=True, help_text="What changed and why")
    is_active = models.BooleanField(default=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="one_active_grade_policy",
            )
        ]

    def __str__(self) -> str:
        return f"grade policy v{self.version}" + (" (active)" if self.is_active else "")


class GradeHistory(models.Model):
    """A customer's grade over time: one row per period with the same grade, no gaps.

    The open row (``valid_to`` null) is the current grade; a change closes it on the day the
    new one starts.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="grade_history")
    grade = models.CharField(max_length=10, choices=Grade.choices)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    run = models.ForeignKey(ScoreRun, on_delete=models.PROTECT, related_name="grade_changes")
    policy_version = models.PositiveIntegerField()
    reasons = JSONTextField(default=list, blank=True)

    class Meta:
        ordering = ["customer_id", "valid_from"]
        indexes = [models.Index(fields=["customer", "valid_from"])]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(valid_to__isnull=True),
                name="one_open_grade_per_customer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.grade} from {self.valid_from}"


class CustomerScore(models.Model):
    """A customer's latest scores. The reasons behind each are in the run's reasons folder in
    the lake (``patron.scoring.writeback.reasons_of``), not here: a million customers' reasons
    are about 1 GB of text, written every night and read a few at a time."""

    # No foreign-key constraints in the database: every run replaces all the rows at once,
    # and PostgreSQL checked the two deferred constraints row by row at the commit (8.8 s
    # of a million-row write-back). ``scores_replace`` removes, in one statement, any row
    # whose customer was deleted while the run scored; Django still cascades deletions.
    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="score", db_constraint=False
    )
    run = models.ForeignKey(
        ScoreRun, on_delete=models.CASCADE, related_name="scores", db_constraint=False
    )
    as_of = models.DateField()
    # Customers who never bought still get a row (credit, grade); their purchase-model fields
    # are null: BG/NBD and RFM describe buyers only.
    purchase_days = models.PositiveIntegerField(
        default=0, help_text="Days with a purchase before the cut-off"
    )
    days_since_last_purchase = models.PositiveIntegerField(null=True, blank=True)
    p_alive = models.FloatField(
        null=True, blank=True, help_text="Probability the customer is still active (BG/NBD)"
    )
    expected_orders_90d = models.FloatField(
        null=True, blank=True, help_text="Expected purchases in the next 90 days"
    )
    expected_order_value = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True
    )
    clv_12m = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Expected spend in the next 12 months",
    )
    currency = models.CharField(max_length=3, default="CNY")
    rfm_r = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Recency quintile, 5 = most recent"
    )
    rfm_f = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Frequency quintile, 5 = most frequent"
    )
    rfm_m = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Monetary quintile, 5 = highest spend"
    )
    rfm_segment = models.CharField(
        max_length=24, blank=True, help_text="One of the eight RFM classes"
    )
    credit_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="350–950, higher is better"
    )
    credit_model = models.CharField(max_length=16, blank=True, help_text="lightgbm or scorecard")
    churn_probability = models.FloatField(null=True, blank=True)
    churn_model = models.CharField(max_length=16, blank=True, help_text="lightgbm or bgnbd")
    cluster = models.PositiveSmallIntegerField(null=True, blank=True)
    cluster_name = models.CharField(max_length=80, blank=True)
    potential_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    word_of_mouth = models.FloatField(null=True, blank=True)
    certification_rank = models.PositiveSmallIntegerField(
        default=0, help_text="Rank of the certification level in force at the cut-off (0: none)"
    )
    grade = models.CharField(max_length=10, choices=Grade.choices, blank=True)
    grade_composite = models.FloatField(null=True, blank=True)

    class Meta:
        # Plain indexes: ``db_index=True`` on a text column also gave PostgreSQL a LIKE index,
        # which no query uses and every write-back maintained.
        indexes = [
            models.Index(fields=["grade"], name="scoring_score_grade"),
            models.Index(fields=["rfm_segment"], name="scoring_score_rfm_segment"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} as of {self.as_of}: grade {self.grade or '-'}"
