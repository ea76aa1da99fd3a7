"""The latest product suggestions of every customer, and the runs that computed them.

Written only by ``services.recommendations_refresh`` (a whole new set per run, in one
transaction: readers see the previous run's rows or the new ones, never a mix). Rows without a
customer are the shop-wide best sellers, shown to customers with no history.
"""

from __future__ import annotations

from django.db import models

from patron.commerce.models import Product
from patron.customer.models import Customer


class RecommendationRun(models.Model):
    """One refresh: what it read, what it wrote, with which settings."""

    as_of = models.DateTimeField(help_text="Only orders and events before this moment were read")
    computed_at = models.DateTimeField()
    seconds = models.FloatField(default=0.0)
    customers = models.PositiveIntegerField(default=0, help_text="Customers given suggestions")
    suggestions = models.PositiveIntegerField(default=0, help_text="Rows written")
    items = models.PositiveIntegerField(default=0, help_text="Distinct products in the baskets")
    pairs = models.PositiveIntegerField(default=0, help_text="(customer, product) pairs read")
    neighbour_pairs = models.PositiveIntegerField(default=0)
    purchase_lines = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0, help_text="Behaviour events read")
    settings = models.JSONField(default=dict)

    class Meta:
        ordering = ["-computed_at", "-id"]

    def __str__(self) -> str:
        return f"suggestions as of {self.as_of:%Y-%m-%d %H:%M} ({self.customers} customers)"


class Recommendation(models.Model):
    class Basis(models.TextChoices):
        TOGETHER = "together", "一起购买 Bought together"
        POPULAR = "popular", "热销 Popular"

    run = models.ForeignKey(
        RecommendationRun, on_delete=models.CASCADE, related_name="recommendations"
    )
    # Indexed through (customer, rank) below. Null: the shop-wide best sellers.
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="recommendations",
        db_index=False,
    )
    rank = models.PositiveSmallIntegerField()
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    product_source = models.CharField(max_length=40)
    product_ref = models.CharField(
        max_length=100, blank=True, help_text="The product's id in its source (catalogue or not)"
    )
    product_name = models.CharField(max_length=200, blank=True)
    score = models.FloatField()
    basis = models.CharField(max_length=10, choices=Basis.choices)
    reason = models.JSONField(
        help_text="patron.intelligence.explain reason: template and parameters"
    )
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["customer", "rank"])]
        ordering = ["customer_id", "rank"]

    def __str__(self) -> str:
        return f"{self.customer_id or '*'}#{self.rank} {self.display_name}"

    @property
    def display_name(self) -> str:
        return self.product_name or f"#{self.product_ref}"
