"""The surveys as a daily job (``surveys-send`` in ``patron.jobs.schedule``): end the runs
whose time is up, open the surveys that are due and invite their audience. Safe to run twice
(``services.surveys_send``)."""

from __future__ import annotations

from typing import Any

from django.tasks import task

from patron.risk.tasks import parse_as_of


@task()
def send_surveys(as_of: str = "") -> dict[str, Any]:
    from patron.satisfaction.services import surveys_send

    return surveys_send(now=parse_as_of(as_of) if as_of else None).as_dict()
