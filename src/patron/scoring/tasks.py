"""Scoring as background jobs (``django.tasks``), scheduled by ``patron.jobs.schedule``.

Both tasks take the cut-off date as an ISO string (task arguments are JSON) and return a small
JSON summary of the run, kept with the task result. The pipeline is imported when a task runs,
not when this module is: the scheduler imports it to enqueue, and stays small.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.tasks import task

# Scoring runs for minutes on a large merchant: its own queue lets a deployment give it a
# worker of its own, so that short jobs are not stuck behind it.
QUEUE = "scoring"


@task(queue_name=QUEUE)
def score_nightly(as_of: str) -> dict[str, Any]:
    """Score every customer with the data before ``as_of`` (``YYYY-MM-DD``).

    Safe to run twice: each run records its own ``ScoreRun`` and replaces the latest scores of
    every customer wholesale in one transaction, so a second run for the same ``as_of`` leaves
    the same latest scores (and an extra run on record), and a run that fails leaves the previous
    scores in place.
    """
    from patron.scoring import services

    run = services.score_customers(as_of=date.fromisoformat(as_of))
    return _summary(run)


@task(queue_name=QUEUE)
def regrade_quarterly(as_of: str) -> dict[str, Any]:
    """Score every customer as of ``as_of`` and re-decide every grade (the quarterly regrade).

    Safe to run twice: scores are replaced as in ``score_nightly``, and the grade history keeps
    one period per grade, so re-grading on the same day with the same data changes no grade and
    a same-day re-run replaces that day's decision instead of adding one.
    """
    from patron.scoring import services

    run = services.score_customers(  # type: ignore[call-arg, unused-ignore]
        as_of=date.fromisoformat(as_of), regrade=True
    )
    return _summary(run)


def _summary(run: Any) -> dict[str, Any]:
    return {
        "score_run": run.pk,
        "as_of": str(run.as_of),
        "status": str(run.status),
        "customers": run.customers,
    }
