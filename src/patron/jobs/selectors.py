"""Reading the state of the periodic jobs, for ``patron jobs list`` and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend, TaskResultDoesNotExist

from patron.jobs.models import ScheduledSlot
from patron.jobs.rules import next_slot
from patron.jobs.schedule import SCHEDULE, PeriodicJob, merchant_zone

NOT_ENQUEUED = "NOT_ENQUEUED"  # claimed, but the process died before its task was enqueued
PRUNED = "PRUNED"  # the result was deleted (prune_db_task_results) after it finished
UNKNOWN = "UNKNOWN"  # the backend keeps no results (immediate) or is no longer configured


@dataclass(frozen=True)
class JobStatus:
    name: str
    cron: str
    task: str
    description: str
    next_due: datetime  # in the merchant's time zone
    last_slot: datetime | None  # in the merchant's time zone
    last_task_result_id: str
    last_task_status: str | None  # a TaskResultStatus value or one of the constants above


def slot_task_status(slot: ScheduledSlot) -> str:
    """The status of the task a slot enqueued, as its backend reports it now."""
    if not slot.task_result_id:
        return NOT_ENQUEUED
    try:
        backend = task_backends[slot.task_backend]
    except InvalidTaskBackend:
        return UNKNOWN
    if not backend.supports_get_result:
        return UNKNOWN
    try:
        return str(backend.get_result(slot.task_result_id).status)
    except TaskResultDoesNotExist:
        return PRUNED


def job_statuses(*, now: datetime, jobs: tuple[PeriodicJob, ...] = SCHEDULE) -> list[JobStatus]:
    zone = merchant_zone()
    statuses = []
    for job in jobs:
        last = ScheduledSlot.objects.filter(job=job.name).order_by("-slot_time").first()
        statuses.append(
            JobStatus(
                name=job.name,
                cron=job.cron,
                task=job.task,
                description=job.description,
                next_due=next_slot(cron=job.cron, zone=zone, after=now),
                last_slot=last.slot_time.astimezone(zone) if last else None,
                last_task_result_id=last.task_result_id if last else "",
                last_task_status=slot_task_status(last) if last else None,
            )
        )
    return statuses
