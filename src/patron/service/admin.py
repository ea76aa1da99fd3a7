from __future__ import annotations

from django.contrib import admin

from patron.service.models import Ticket
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
