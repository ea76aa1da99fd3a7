from __future__ import annotations

from django.db import models
from django.utils import timezone


class ScheduledSlot(models.Model):
    """One due time ("slot") of a periodic job that a scheduler enqueued.

    The unique (job, slot_time) pair is the exactly-once guarantee: a scheduler inserts this row
    in the same transaction as the task it enqueues, and a second scheduler that raced it for the
    same slot fails the insert and skips. The newest row of a job is where the next scheduler
    pass starts counting due slots from.
    """

    job = models.CharField(max_length=64, help_text="Name in patron.jobs.schedule.SCHEDULE")
    slot_time = models.DateTimeField(help_text="The cron time this run is for")
    enqueued_at = models.DateTimeField(default=timezone.now)
    task_path = models.CharField(max_length=200)
    task_backend = models.CharField(max_length=32, help_text="Alias in settings.TASKS")
    task_arguments = models.JSONField(default=dict, blank=True)
    task_result_id = models.CharField(
        max_length=64, blank=True, help_text="Empty when the slot was claimed but not enqueued"
    )
    scheduler_id = models.CharField(max_length=100, blank=True, help_text="host:pid")

    class Meta:
        ordering = ["-slot_time", "job"]
        constraints = [
            models.UniqueConstraint(fields=["job", "slot_time"], name="jobs_one_enqueue_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {timezone.localtime(self.slot_time):%Y-%m-%d %H:%M %Z}"
