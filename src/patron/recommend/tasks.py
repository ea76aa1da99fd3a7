"""Recommendations as a background job: refresh every customer's suggested products.

The lead wires it into the schedule (``patron.jobs.schedule``): daily, after the nightly
scoring, with ``as_of`` the slot's date (the data up to midnight). The task takes the cut-off
as an ISO string (task arguments are JSON), returns a small JSON summary, and is safe to run
twice: each run replaces the whole set in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.tasks import task
from django.utils import timezone

REFRESH_TASK_PATH = "patron.recommend.tasks.refresh_recommendations"


def _moment(text: str) -> datetime | None:
    """``YYYY-MM-DD`` (start of that day, merchant's time) or a full ISO timestamp; '' = now."""
    if not text:
        return None
    if len(text) <= 10:
        return timezone.make_aware(datetime.combine(date.fromisoformat(text), datetime.min.time()))
    moment = datetime.fromisoformat(text)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


@task()
def refresh_recommendations(as_of: str = "") -> dict[str, Any]:
    """Recompute every customer's suggestions from the orders and events before ``as_of``."""
    from patron.recommend.services import recommendations_refresh

    return recommendations_refresh(as_of=_moment(as_of)).as_dict()
