"""Enqueueing periodic jobs exactly once, and running a job by hand.

A scheduler pass looks at every job of the registry (``patron.jobs.schedule.SCHEDULE``), works
out the slots that fell due since the job's newest ``ScheduledSlot`` (the first time: only the
latest due slot), and enqueues each of them through ``slot_enqueue``:

- the claim is an INSERT of ``ScheduledSlot(job, slot_time)``, unique on the pair: a second
  scheduler racing for the same slot fails that insert and skips the slot;
- with the database task backend the claim and the task row are written in ONE transaction, so
  a slot is either claimed and enqueued, or neither (a crash in between leaves nothing, and the
  next pass enqueues it): exactly once;
- with a backend outside the database (a broker, or the immediate backend) the claim commits
  first and the task is enqueued after it; a failed enqueue releases the claim so the next pass
  tries again. Only a process killed between the two leaves a claimed slot without a task: at
  most once, visible as "not enqueued" in ``patron jobs list`` and the admin.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, close_old_connections, router, transaction
from django.tasks import Task, TaskResult
from django.utils import timezone
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from patron.jobs.models import ScheduledSlot
from patron.jobs.rules import due_slots, next_slot
from patron.jobs.schedule import SCHEDULE, PeriodicJob, merchant_zone

logger = logging.getLogger(__name__)

# settings.TASKS alias whose backend runs a task in the calling process (`jobs run --now`).
INLINE_BACKEND = "immediate"
MAX_SLEEP_SECONDS = 60.0
# How often a sleeping scheduler looks at its stop flag: the bound on shutdown latency.
STOP_CHECK_SECONDS = 1.0


def clock() -> datetime:
    """Now, aware. The clock is the edge of the system: tests replace this function."""
    return timezone.now()


def scheduler_identity() -> str:
    """``host:pid``, recorded on each slot a scheduler enqueues."""
    return f"{socket.gethostname()}:{os.getpid()}"[-100:]


def job_due_slots(*, job: PeriodicJob, now: datetime) -> list[datetime]:
    """The slots of ``job`` due at ``now`` that no scheduler has claimed yet, oldest first."""
    last_slot = (
        ScheduledSlot.objects.filter(job=job.name)
        .order_by("-slot_time")
        .values_list("slot_time", flat=True)
        .first()
    )
    slots, left_out = due_slots(
        cron=job.cron,
        zone=merchant_zone(),
        now=now,
        last_slot=last_slot,
        limit=job.max_catch_up,
    )
    if left_out:
        logger.warning(
            "job %s missed %d slot(s) before %s: only the latest %d are enqueued",
            job.name,
            left_out,
            slots[0].isoformat(),
            len(slots),
        )
    return slots


def slot_enqueue(
    *, job: PeriodicJob, slot_time: datetime, scheduler_id: str = ""
) -> ScheduledSlot | None:
    """Claim ``(job, slot_time)`` and enqueue the job's task for it.

    Returns the claimed slot with its task result id, or ``None`` when the slot was already
    claimed (by another scheduler, or an earlier pass): that is not an error. See the module
    docstring for how the claim and the enqueue are tied together.
    """
    task = job.resolve_task()
    arguments = job.arguments(slot_time.astimezone(merchant_zone()))
    slot = ScheduledSlot(
        job=job.name,
        slot_time=slot_time,
        task_path=job.task,
        task_backend=task.backend,
        task_arguments=arguments,
        scheduler_id=scheduler_id,
    )
    if _enqueues_in_our_database(task):
        with transaction.atomic():
            if not _claim(slot):
                return None
            _enqueue(slot, task)
        return slot
    if not _claim(slot):
        return None
    try:
        _enqueue(slot, task)
    except Exception:
        slot.delete()
        raise
    return slot


def _enqueues_in_our_database(task: Task[..., Any]) -> bool:
    return isinstance(task.get_backend(), DatabaseBackend) and router.db_for_write(
        DBTaskResult
    ) == router.db_for_write(ScheduledSlot)


def _claim(slot: ScheduledSlot) -> bool:
    try:
        with transaction.atomic():
            slot.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _enqueue(slot: ScheduledSlot, task: Task[..., Any]) -> None:
    result = task.enqueue(**slot.task_arguments)
    slot.task_result_id = str(result.id)
    slot.save(update_fields=["task_result_id"])


@dataclass(frozen=True)
class SchedulerPass:
    """What one pass over the registry did."""

    enqueued: list[ScheduledSlot] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job name -> error
    next_due: datetime | None = None


def scheduler_pass(
    *, now: datetime, jobs: tuple[PeriodicJob, ...] = SCHEDULE, scheduler_id: str = ""
) -> SchedulerPass:
    """Enqueue every due slot of every job once. A job that fails (its task cannot be imported,
    its queue is down) is reported and the others still run."""
    enqueued: list[ScheduledSlot] = []
    failed: dict[str, str] = {}
    for job in jobs:
        try:
            for slot_time in job_due_slots(job=job, now=now):
                slot = slot_enqueue(job=job, slot_time=slot_time, scheduler_id=scheduler_id)
                if slot is None:
                    logger.info(
                        "job %s slot %s was enqueued by another scheduler", job.name, slot_time
                    )
                else:
                    enqueued.append(slot)
        except Exception as exc:
            logger.exception("job %s could not be scheduled", job.name)
            failed[job.name] = f"{type(exc).__name__}: {exc}"
    next_due = min(
        (next_slot(cron=job.cron, zone=merchant_zone(), after=now) for job in jobs), default=None
    )
    return SchedulerPass(enqueued=enqueued, failed=failed, next_due=next_due)


def scheduler_run(
    *,
    should_stop: Callable[[], bool],
    jobs: tuple[PeriodicJob, ...] = SCHEDULE,
    scheduler_id: str = "",
    on_pass: Callable[[SchedulerPass], None] | None = None,
    max_sleep: float = MAX_SLEEP_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Pass over the registry, sleep until the next slot is due (at most ``max_sleep``
    seconds, so that a changed clock or a new job is noticed), and again, until
    ``should_stop()``. Stopping never interrupts a pass, so a claim and its enqueue are never
    torn apart by a shutdown."""
    while not should_stop():
        close_old_connections()
        result = scheduler_pass(now=clock(), jobs=jobs, scheduler_id=scheduler_id)
        close_old_connections()
        if on_pass is not None:
            on_pass(result)
        wait = max_sleep
        if result.next_due is not None:
            wait = min(max_sleep, (result.next_due - clock()).total_seconds())
        # Never spin: the wall clock and the sleep timer may disagree by a few milliseconds.
        remaining = max(wait, 0.1)
        while remaining > 0 and not should_stop():
            step = min(STOP_CHECK_SECONDS, remaining)
            sleep(step)
            remaining -= step


def job_slot_for_date(*, day: date) -> datetime:
    """The slot a manual run "as of ``day``" stands for: midnight at the start of that day in the
    merchant's time zone (the arguments of the registry's jobs depend on the date only)."""
    return datetime(day.year, day.month, day.day, tzinfo=merchant_zone())


def job_enqueue(*, job: PeriodicJob, slot_time: datetime) -> TaskResult[..., Any]:
    """Enqueue ``job`` now, with the arguments of ``slot_time``, outside the schedule: nothing is
    claimed, so the scheduler still runs the job's own slots."""
    task = job.resolve_task()
    return task.enqueue(**job.arguments(slot_time.astimezone(merchant_zone())))


def job_run_inline(*, job: PeriodicJob, slot_time: datetime) -> TaskResult[..., Any]:
    """Run ``job`` in this process and return its finished result (status, return value, or the
    error and traceback), through the immediate task backend."""
    task = job.resolve_task().using(backend=INLINE_BACKEND)
    return task.enqueue(**job.arguments(slot_time.astimezone(merchant_zone())))
