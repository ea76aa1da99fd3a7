"""The hourly complaint-risk job (``patron.jobs.schedule``: ``complaint-risk``): record the
complaints of desk tickets whose signal was missed, then refresh the complaint-risk scores of
open tickets and customers. Safe to run twice: recording is idempotent and a refresh replaces
the previous scores."""

from __future__ import annotations

from typing import Any

from django.tasks import task

from patron.risk.tasks import parse_as_of


@task()
def refresh_complaint_risk(as_of: str = "") -> dict[str, Any]:
    from patron.complaints.risk import complaint_risk_refresh
    from patron.complaints.services import complaints_reconcile

    recorded = complaints_reconcile()
    run = complaint_risk_refresh(as_of=parse_as_of(as_of) if as_of else None)
    return {
        "complaints_recorded": recorded,
        "run": run.pk,
        "method": run.method,
        "tickets_scored": run.tickets_scored,
        "customers_scored": run.customers_scored,
        "auc": run.metrics.get("auc"),
    }
