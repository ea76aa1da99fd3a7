"""Risk rows in the admin are read-only: every decision goes through ``patron.risk.services``
(state machines, separation of duties, audit), on the risk pages or the API."""

from __future__ import annotations

from django.contrib import admin

from patron.risk.models import (
    Alert,
    Appeal,
    BlacklistEntry,
    CreditOverride,
    DetectionRun,
    Restriction,
    RiskPolicy,
    RiskRule,
)
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "rule_code", "severity", "value", "status", "created_at")
    list_filter = ("status", "severity", "source", "rule_code")
    search_fields = ("customer__name", "customer__external_id", "rule_code")
    list_select_related = ("customer",)


@admin.register(Restriction)
class RestrictionAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "kind", "starts_at", "expires_at", "lifted_at", "applied_by")
    list_filter = ("kind",)
    search_fields = ("customer__name", "customer__external_id", "reason")
    list_select_related = ("customer", "applied_by")


@admin.register(BlacklistEntry)
class BlacklistEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "status", "proposed_by", "proposed_at", "decided_at")
    list_filter = ("status",)
    search_fields = ("customer__name", "customer__external_id", "reason")
    list_select_related = ("customer", "proposed_by")


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "status", "filed_at", "due_at", "reviewer", "decided_at")
    list_filter = ("status", "channel")
    search_fields = ("customer__name", "customer__external_id", "statement")
    list_select_related = ("customer", "reviewer")


@admin.register(RiskRule)
class RiskRuleAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "measure", "window_days", "threshold", "min_volume", "action")
    list_filter = ("is_enabled", "severity", "action")


@admin.register(RiskPolicy)
class RiskPolicyAdmin(ReadOnlyAdmin):
    list_display = ("version", "is_active", "note", "created_by", "created_at")


@admin.register(DetectionRun)
class DetectionRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "as_of",
        "trigger",
        "customers",
        "alerts_new",
        "alerts_updated",
        "seconds",
    )


@admin.register(CreditOverride)
class CreditOverrideAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "credit_limit", "granted_by", "granted_at", "revoked_at")
    list_select_related = ("customer", "granted_by")
