"""Loyalty as background jobs: accrue points, expire lots, evaluate tiers.

The lead wires them into the schedule (``patron.jobs.schedule``); accrual also runs after every
committed import batch that brought orders, returns or reviews (``patron.loyalty.apps``).
Tasks take the cut-off as an ISO string (task arguments are JSON), return a small JSON summary,
and are safe to run twice: every service they call is idempotent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.tasks import task
from django.utils import timezone

#: Import kinds that can earn or take back points: a committed batch of one triggers accrual.
TRIGGERING_KINDS = frozenset({"orders", "payments", "returns", "reviews"})
ACCRUE_TASK_PATH = "patron.loyalty.tasks.accrue_points"


def _moment(text: str) -> datetime | None:
    """``YYYY-MM-DD`` (start of that day, merchant's time) or a full ISO timestamp; '' = now."""
    if not text:
        return None
    if len(text) <= 10:
        return timezone.make_aware(datetime.combine(date.fromisoformat(text), datetime.min.time()))
    moment = datetime.fromisoformat(text)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _day(text: str) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


@task()
def accrue_points(as_of: str = "") -> dict[str, Any]:
    """Post the points of paid orders, reviews and refunds not in the ledger yet."""
    from patron.loyalty.services import points_accrue

    return points_accrue(as_of=_moment(as_of)).as_dict()


@task()
def expire_points(as_of: str = "") -> dict[str, Any]:
    """Expire the lots whose expiry date is ``as_of`` (default today) or earlier."""
    from patron.loyalty.services import points_expire

    return points_expire(as_of=_day(as_of)).as_dict()


@task()
def evaluate_tiers(as_of: str = "") -> dict[str, Any]:
    """Move customers between tiers as of ``as_of`` (default today); tell those moving up."""
    from patron.loyalty.tiers import tiers_evaluate

    return tiers_evaluate(as_of=_day(as_of)).as_dict()


def enqueue_accrual(kinds: set[str]) -> bool:
    """Queue one accrual for a committed import batch, unless one is already waiting."""
    if not set(kinds) & TRIGGERING_KINDS:
        return False
    from django_tasks_db.models import DBTaskResult

    if DBTaskResult.objects.filter(task_path=ACCRUE_TASK_PATH, status="READY").exists():
        return False
    accrue_points.enqueue()
    return True


def accrue_after_import(kinds: set[str]) -> None:
    """Enqueue once the caller's transaction (if any) has committed."""
    transaction.on_commit(lambda: enqueue_accrual(set(kinds)))
