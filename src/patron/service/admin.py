from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from patron.account.roles import MANAGE_DESK
from patron.service.models import (
    AgentProfile,
    BusinessHours,
    Category,
    DedicatedAgent,
    Holiday,
    PossibleDuplicate,
    RoutingRule,
    SlaPolicy,
    Team,
    Ticket,
)
from patron.web.adminkit import PatronModelAdmin


@admin.register(Ticket)
class TicketAdmin(PatronModelAdmin):
    list_display = (
        "external_id",
        "subject",
        "customer",
        "channel",
        "status",
        "priority",
        "is_complaint",
        "opened_at",
        "resolved_at",
        "satisfaction",
    )
    list_filter = ("status", "priority", "channel", "is_complaint")
    search_fields = ("external_id", "subject", "customer__name", "customer__external_id")
    raw_id_fields = ("customer", "order")
    list_select_related = ("customer",)
    date_hierarchy = "opened_at"


class DeskSettingsAdmin(PatronModelAdmin):
    """Desk settings are edited by whoever may manage the desk (``service.change_slapolicy``),
    through one permission rather than one per table."""

    def _may_manage(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm(MANAGE_DESK))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_manage(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_manage(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_manage(request)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(DeskSettingsAdmin):
    list_display = (
        "name",
        "priority",
        "grade",
        "first_reply_minutes",
        "resolution_minutes",
        "business_hours",
    )


@admin.register(BusinessHours)
class BusinessHoursAdmin(DeskSettingsAdmin):
    list_display = ("weekday", "opens", "closes")


@admin.register(Holiday)
class HolidayAdmin(DeskSettingsAdmin):
    list_display = ("date", "name", "is_workday")
    list_filter = ("is_workday",)
    date_hierarchy = "date"


@admin.register(Category)
class CategoryAdmin(DeskSettingsAdmin):
    list_display = ("slug", "name", "priority", "team", "escalation_team", "has_sla", "is_active")


@admin.register(Team)
class TeamAdmin(DeskSettingsAdmin):
    list_display = ("slug", "name", "is_escalation_target")


@admin.register(RoutingRule)
class RoutingRuleAdmin(DeskSettingsAdmin):
    list_display = (
        "position",
        "name",
        "channel",
        "category",
        "grade",
        "priority",
        "language",
        "team",
        "is_active",
    )
    list_editable = ("position", "is_active")
    list_display_links = ("name",)


@admin.register(AgentProfile)
class AgentProfileAdmin(DeskSettingsAdmin):
    list_display = (
        "user",
        "team",
        "skills",
        "languages",
        "shift_starts",
        "shift_ends",
        "max_open",
        "is_available",
    )
    list_filter = ("team", "is_available")


@admin.register(DedicatedAgent)
class DedicatedAgentAdmin(DeskSettingsAdmin):
    list_display = ("customer", "user", "assigned_at")
    raw_id_fields = ("customer",)


@admin.register(PossibleDuplicate)
class PossibleDuplicateAdmin(DeskSettingsAdmin):
    list_display = ("customer", "candidate", "reason", "created_at", "resolution")
    raw_id_fields = ("customer", "candidate")
