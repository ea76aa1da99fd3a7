"""Filling the KPI tables as a background job (``patron.jobs.schedule``: nightly, after
scoring). Safe to run twice: a second fill finds every past month final and recomputes only the
month still running."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.tasks import task


@task()
def fill_metrics(as_of: str) -> dict[str, Any]:
    """Fill every metric up to the month of ``as_of`` (``YYYY-MM-DD``)."""
    from patron.insight.services import metrics_fill

    summary = metrics_fill(today=date.fromisoformat(as_of))
    return {"months": summary.months, "skipped": summary.skipped, "seconds": summary.seconds}
