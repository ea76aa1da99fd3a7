from __future__ import annotations

from django.contrib import admin

from patron.ingest.models import ImportBatch
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    """Import runs are written by ``patron import`` only; the admin shows them."""

    list_display = (
        "id",
        "kind",
        "source",
        "path",
        "status",
        "started_at",
        "finished_at",
        "read",
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "started_by",
    )
    list_filter = ("status", "kind", "source")
    search_fields = ("path", "source", "file_digest")
    list_select_related = ("started_by",)
    date_hierarchy = "started_at"
