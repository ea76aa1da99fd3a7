"""The logistics monitor as a periodic job (``patron.jobs.schedule``: ``logistics-exceptions``,
every 30 minutes). Safe to run twice: an exception is recorded once per shipment and kind, and
its ticket and message once."""

from __future__ import annotations

from typing import Any

from django.tasks import task

from patron.risk.tasks import parse_as_of


@task()
def check_logistics(as_of: str = "") -> dict[str, Any]:
    from patron.aftersales.services import logistics_check

    result = logistics_check(now=parse_as_of(as_of) if as_of else None)
    return result.as_dict()
