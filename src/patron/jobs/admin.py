from __future__ import annotations

from django.contrib import admin
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend
from django.urls import reverse
from django.utils.html import format_html
from django_tasks_db import DatabaseBackend

from patron.jobs.models import ScheduledSlot
from patron.jobs.selectors import slot_task_status
from patron.web.adminkit import ReadOnlyAdmin


@admin.register(ScheduledSlot)
class ScheduledSlotAdmin(ReadOnlyAdmin):
    """Slots are written by ``patron scheduler`` only. The tasks themselves, with their return
    values and tracebacks, are under "Tasks Database Backend › Task results"."""

    list_display = ("job", "slot_time", "enqueued_at", "task_status", "task", "scheduler_id")
    list_filter = ("job",)
    search_fields = ("job", "task_result_id", "scheduler_id")
    date_hierarchy = "slot_time"

    @admin.display(description="task status")
    def task_status(self, slot: ScheduledSlot) -> str:
        return slot_task_status(slot)

    @admin.display(description="task result")
    def task(self, slot: ScheduledSlot) -> str:
        if not slot.task_result_id:
            return "—"
        try:
            is_database = isinstance(task_backends[slot.task_backend], DatabaseBackend)
        except InvalidTaskBackend:
            is_database = False
        if not is_database:
            return slot.task_result_id
        url = reverse("admin:django_tasks_database_dbtaskresult_change", args=[slot.task_result_id])
        return format_html('<a href="{}">{}</a>', url, slot.task_result_id)
