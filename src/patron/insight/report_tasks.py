"""The monthly value report as a background job (``patron.jobs.schedule``: the 1st of each
month, after the nightly scoring has scored the month just ended)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.tasks import task


@task()
def generate_monthly_report(as_of: str) -> dict[str, Any]:
    """Generate the value report of the month before ``as_of`` (``YYYY-MM-DD``).

    Safe to run twice: a report is kept per month, and generating it again replaces it.
    """
    from patron.insight.report import previous_month, report_generate

    month = previous_month(date.fromisoformat(as_of))
    snapshot = report_generate(month)
    totals = snapshot.data["totals"]
    movers = snapshot.data["movers"]
    return {
        "month": snapshot.data["month"],
        "customers": totals["customers"],
        "scores_as_of": snapshot.data["scores"]["as_of"],
        "moved_up": movers["up"],
        "moved_down": movers["down"],
    }
