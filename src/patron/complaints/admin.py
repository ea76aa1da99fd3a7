"""Complaint rows in the admin are read-only: every step goes through
``patron.complaints.services`` (the state machine, the events, the audit), on the complaint
pages or the API; the risk scores are rewritten by the hourly job."""

from __future__ import annotations

from django.contrib import admin

from patron.complaints.models import (
    Complaint,
    ComplaintEvent,
    ComplaintRiskRun,
    ComplaintRiskScore,
)
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "ticket", "severity", "stage", "team", "recorded_at")
    list_filter = ("stage", "severity", "team")
    search_fields = ("customer__name", "customer__external_id")
    list_select_related = ("customer", "ticket", "team")


@admin.register(ComplaintEvent)
class ComplaintEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "complaint", "at", "action", "from_stage", "to_stage", "round")
    list_filter = ("action",)


@admin.register(ComplaintRiskRun)
class ComplaintRiskRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "scored_at", "method", "tickets_scored", "customers_scored", "seconds")
    list_filter = ("method",)


@admin.register(ComplaintRiskScore)
class ComplaintRiskScoreAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "rank", "probability", "customer", "ticket", "scored_at")
    list_filter = ("kind",)
    list_select_related = ("customer", "ticket")
