"""Satisfaction rows in the admin are read-only: every change goes through
``patron.satisfaction.services`` (state machines, the ticket's score, audit)."""

from __future__ import annotations

from django.contrib import admin

from patron.satisfaction.models import (
    CsatRequest,
    ImprovementPlan,
    PlanLink,
    Suggestion,
    Survey,
    SurveyRun,
)
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(CsatRequest)
class CsatRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "customer", "sent_at", "is_suppressed", "answered_at", "score")
    list_filter = ("score", "is_suppressed")
    exclude = ("token",)  # the link acts as the customer


@admin.register(Survey)
class SurveyAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "status", "audience", "schedule", "next_run_on")
    list_filter = ("status", "schedule")


@admin.register(SurveyRun)
class SurveyRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "survey", "label", "opened_at", "closes_at", "closed_at")


@admin.register(Suggestion)
class SuggestionAdmin(ReadOnlyAdmin):
    list_display = ("id", "channel", "status", "created_at", "customer")
    list_filter = ("status", "channel")


@admin.register(ImprovementPlan)
class ImprovementPlanAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "owner", "deadline", "status")
    list_filter = ("status",)


@admin.register(PlanLink)
class PlanLinkAdmin(ReadOnlyAdmin):
    list_display = ("id", "plan", "kind", "created_at")
