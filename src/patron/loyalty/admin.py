"""Loyalty rows in the admin are read-only: the ledger is append-only and every change goes
through ``patron.loyalty.services`` / ``patron.loyalty.tiers`` (locks, FIFO, audit), on the API,
the CLI or the jobs."""

from __future__ import annotations

from django.contrib import admin

from patron.loyalty.models import (
    LoyaltyPolicy,
    PointsAccount,
    PointsEntry,
    Tier,
    TierMembership,
)
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(PointsAccount)
class PointsAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "balance", "updated_at")
    search_fields = ("customer__name", "customer__external_id")
    list_select_related = ("customer",)


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "kind",
        "points",
        "balance_after",
        "shortfall",
        "expires_on",
        "remaining",
        "occurred_at",
        "idempotency_key",
    )
    list_filter = ("kind", "source_type")
    search_fields = ("account__customer__name", "account__customer__external_id", "reason")
    list_select_related = ("account",)


@admin.register(LoyaltyPolicy)
class LoyaltyPolicyAdmin(ReadOnlyAdmin):
    list_display = (
        "version",
        "is_active",
        "points_per_cny",
        "review_points",
        "expiry_months",
        "created_by",
        "created_at",
    )


@admin.register(Tier)
class TierAdmin(ReadOnlyAdmin):
    list_display = (
        "rank",
        "code",
        "name",
        "name_en",
        "min_spend",
        "min_grade",
        "min_points",
        "needs",
        "grace_days",
        "version",
    )


@admin.register(TierMembership)
class TierMembershipAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "tier", "valid_from", "valid_to", "move", "below_since")
    list_filter = ("tier", "move")
    search_fields = ("customer__name", "customer__external_id")
    list_select_related = ("customer", "tier")
