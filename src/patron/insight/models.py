"""Insights: KPI values pre-aggregated per month, how far each metric has been filled, and the
targets staff set against them. The metrics themselves are declared once, in
``patron.insight.metrics.METRICS``; rows here name them by key."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class MetricValue(models.Model):
    """One metric for one month, as ``patron.insight.metrics.compute`` gave it."""

    metric = models.CharField(max_length=40)
    period = models.DateField(help_text="First day of the month")
    value = models.FloatField(null=True, blank=True, help_text="None: no data that month")
    numerator = models.FloatField(null=True, blank=True)
    denominator = models.FloatField(null=True, blank=True)
    is_final = models.BooleanField(
        default=True, help_text="False for the month still running: recomputed on every fill"
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["metric", "period"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "period"], name="insight_metric_period")
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.period:%Y-%m}: {self.value}"


class FillState(models.Model):
    """How far a metric has been filled: every month up to and including ``filled_through``
    is final. A fill killed half-way resumes from here."""

    metric = models.CharField(max_length=40, unique=True)
    filled_through = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.metric} through {self.filled_through}"


class Target(models.Model):
    """A goal on one metric (R-J2): from a baseline to a target value, or by a relative change,
    by a deadline, owned by someone."""

    metric = models.CharField(max_length=40)
    name = models.CharField(max_length=120)
    baseline = models.FloatField(help_text="The metric's value when the target was set")
    baseline_period = models.DateField(help_text="The month the baseline was read from")
    target_value = models.FloatField(
        null=True, blank=True, help_text="Reach this value (e.g. CSAT 0.85)"
    )
    target_change = models.FloatField(
        null=True, blank=True, help_text="Or change the baseline by this share (e.g. -0.20)"
    )
    starts_on = models.DateField()
    deadline = models.DateField()
    owner = models.CharField(max_length=150, blank=True)
    note = models.CharField(max_length=300, blank=True)
    is_default = models.BooleanField(default=False, help_text="Shipped from the seed documents")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(target_value__isnull=False, target_change__isnull=True)
                | models.Q(target_value__isnull=True, target_change__isnull=False),
                name="insight_target_value_or_change",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Snapshot(models.Model):
    """A small computed table the dashboard reads whole (cohort retention, grade movement),
    replaced by each fill."""

    kind = models.CharField(max_length=40, unique=True)
    data = models.JSONField()
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind} at {self.computed_at:%Y-%m-%d %H:%M}"
