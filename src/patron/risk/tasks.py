"""Detection as a background job: on a schedule (``patron.jobs.schedule``) and after every
import batch that brings orders, payments, returns, reviews or customers (``patron.risk.apps``).

The task takes the cut-off as an ISO string (task arguments are JSON) and returns a small JSON
summary of the run. It is safe to run twice: alerts are kept to one live alert per customer and
rule, so a second run refreshes them instead of raising more.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.tasks import task
from django.utils import timezone

#: Import kinds whose rows rules read: a committed batch of one of them triggers detection.
TRIGGERING_KINDS = frozenset({"customers", "orders", "payments", "returns", "reviews"})
TASK_PATH = "patron.risk.tasks.detect_risk"


def parse_as_of(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight, merchant's time) or a full ISO timestamp, made aware."""
    moment = datetime.fromisoformat(text)
    if len(text) <= 10:
        moment = datetime.combine(moment.date(), time())
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


@task()
def detect_risk(as_of: str = "", trigger: str = "schedule") -> dict[str, Any]:
    """Run every enabled rule and the anomaly model with the data before ``as_of`` (default
    now)."""
    from patron.risk.detect import detection_run

    run = detection_run(as_of=parse_as_of(as_of) if as_of else None, trigger=trigger)
    return {
        "detection_run": run.pk,
        "as_of": run.as_of.isoformat(),
        "customers": run.customers,
        "alerts_new": run.alerts_new,
        "alerts_updated": run.alerts_updated,
    }


def enqueue_after_import(kinds: set[str]) -> bool:
    """Queue one detection run for a committed import batch, unless one is already waiting."""
    if not kinds & TRIGGERING_KINDS:
        return False
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(task_path=TASK_PATH, status="READY")
    if waiting.exists():
        return False
    detect_risk.enqueue(trigger="import")
    return True
