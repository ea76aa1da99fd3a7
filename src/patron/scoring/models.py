"""The latest scores of every customer, and the runs that produced them.

Money is Decimal here (the OLTP convention); the models compute in floats (analytics).
"""

from __future__ import annotations

from django.db import models

from patron.customer.models import Customer


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

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"run {self.pk} as of {self.as_of} ({self.status})"


class CustomerScore(models.Model):
    """A customer's latest scores with the reasons behind each, in plain words."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="score")
    run = models.ForeignKey(ScoreRun, on_delete=models.CASCADE, related_name="scores")
    as_of = models.DateField()
    purchase_days = models.PositiveIntegerField(help_text="Days with a purchase before the cut-off")
    days_since_last_purchase = models.PositiveIntegerField()
    p_alive = models.FloatField(help_text="Probability the customer is still active (BG/NBD)")
    expected_orders_90d = models.FloatField(help_text="Expected purchases in the next 90 days")
    expected_order_value = models.DecimalField(max_digits=14, decimal_places=2)
    clv_12m = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="Expected spend in the next 12 months"
    )
    currency = models.CharField(max_length=3, default="CNY")
    rfm_r = models.PositiveSmallIntegerField(help_text="Recency quintile, 5 = most recent")
    rfm_f = models.PositiveSmallIntegerField(help_text="Frequency quintile, 5 = most frequent")
    rfm_m = models.PositiveSmallIntegerField(help_text="Monetary quintile, 5 = highest spend")
    rfm_segment = models.CharField(
        max_length=24, db_index=True, help_text="One of the eight RFM classes"
    )
    reasons = models.JSONField(default=dict, blank=True, help_text="Score name -> sentences")

    def __str__(self) -> str:
        return f"{self.customer_id} as of {self.as_of}: P(alive) {self.p_alive:.2f}"
