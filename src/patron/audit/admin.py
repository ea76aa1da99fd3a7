from __future__ import annotations

from django.contrib import admin

from patron.audit.models import AuditEvent
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log is append-only: no add, change or delete, not even for superusers."""

    list_display = (
        "id",
        "occurred_at",
        "actor_label",
        "action",
        "entity_type",
        "entity_id",
        "customer_id",
        "summary",
    )
    list_filter = ("action", "entity_type")
    search_fields = ("summary", "actor_label", "entity_id")
    date_hierarchy = "occurred_at"
