"""Re-verification as a daily job (``patron.jobs.schedule``): remind customers whose
certification expires soon, and at expiry downgrade to the level's fallback or end the
certification. Safe to run twice: a reminder is sent once per certification, and an expired or
downgraded one is no longer active."""

from __future__ import annotations

from typing import Any

from django.tasks import task

from patron.risk.tasks import parse_as_of


@task()
def reverify_certifications(as_of: str = "") -> dict[str, Any]:
    from patron.certification.services import certifications_reverify

    result = certifications_reverify(now=parse_as_of(as_of) if as_of else None)
    return {
        "reminded": result.reminded,
        "expired": result.expired,
        "downgraded": result.downgraded,
    }


@task()
def detect_certified_changes() -> dict[str, Any]:
    """After an import of customers: its changes to certified facts become change requests."""
    from patron.certification.services import certified_changes_detect

    return {"change_requests": certified_changes_detect()}


def enqueue_after_import(kinds: set[str]) -> bool:
    if "customers" not in kinds:
        return False
    detect_certified_changes.enqueue()
    return True
