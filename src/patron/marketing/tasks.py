"""Marketing as background jobs: refresh the segments' sizes after each scoring run, expire
coupons, redeem coupons from imported orders, run the due campaigns, run the win-back
programmes.

The lead wires them into the schedule and the scoring hook (``patron.jobs``). Each returns a
small JSON summary and is safe to run twice (the services are idempotent).
"""

from __future__ import annotations

from typing import Any

from django.tasks import task


@task()
def refresh_segments() -> dict[str, Any]:
    """Count every saved segment's members now (run after each scoring run)."""
    from patron.marketing.services import segments_refresh

    return segments_refresh().as_dict()


@task()
def expire_coupons() -> dict[str, Any]:
    """Mark the issued coupons whose expiry has come as expired."""
    from patron.marketing.services import coupons_expire

    return {"expired": coupons_expire()}


@task()
def reconcile_coupons() -> dict[str, Any]:
    """Redeem the coupons whose codes imported orders carry."""
    from patron.marketing.services import coupons_reconcile_imports

    return coupons_reconcile_imports().as_dict()


@task()
def marketing_nightly() -> dict[str, Any]:
    """The nightly round (after the scoring): segment sizes on the new scores, expired coupons,
    coupons redeemed by orders imported since."""
    from patron.marketing.services import (
        coupons_expire,
        coupons_reconcile_imports,
        segments_refresh,
    )

    return {
        "segments": segments_refresh().as_dict(),
        "coupons_expired": coupons_expire(),
        "coupons_redeemed": coupons_reconcile_imports().as_dict(),
    }


@task()
def run_campaigns() -> dict[str, Any]:
    """Launch the scheduled campaigns whose send time has come, resume half-done launches,
    finish the campaigns whose period is over (every five minutes)."""
    from patron.marketing.services import campaigns_run_due

    return campaigns_run_due().as_dict()


@task()
def run_winback(as_of: str | None = None) -> dict[str, Any]:
    """Run every active win-back programme as of ``as_of`` (an ISO timestamp with its zone,
    the schedule's slot; default now): enrol the customers whose churn risk has newly risen
    to a programme's threshold, send the treated their offer. Safe to run twice: a second run
    enrols nobody again and only resumes sending a stopped run left."""
    from datetime import datetime

    from django.utils import timezone

    from patron.marketing.services import winback_run

    moment = datetime.fromisoformat(as_of) if as_of else None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)  # the merchant's time zone
    return winback_run(as_of=moment).as_dict()


def reconcile_after_import(kinds: set[str]) -> bool:
    """Orders just imported may carry coupon codes: redeem them."""
    if "orders" not in kinds:
        return False
    reconcile_coupons.enqueue()
    return True
