"""Care as a background job: the daily run (birthdays, holidays, follow-up visits).

The lead wires it into the schedule (``patron.jobs.schedule``) as ``patron.care.tasks.care_daily``
with ``as_of_slot_date``, in the morning of the merchant's day (greetings are sent when they
are queued). The task takes the day as an ISO string (task arguments are JSON), returns a small
JSON summary, and is safe to run twice: a day already done sends nothing again.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.tasks import task

CARE_TASK_PATH = "patron.care.tasks.care_daily"


@task()
def care_daily(as_of: str = "") -> dict[str, Any]:
    """``care_run`` for the day ``as_of`` (``YYYY-MM-DD``; '' = today in the merchant's zone)."""
    from patron.care.services import care_run

    return care_run(day=date.fromisoformat(as_of[:10]) if as_of else None).as_dict()
