"""Marketing as background jobs: refresh the segments' sizes after each scoring run, expire
coupons, redeem coupons from imported orders.

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


def reconcile_after_import(kinds: set[str]) -> bool:
    """Orders just imported may carry coupon codes: redeem them."""
    if "orders" not in kinds:
        return False
    reconcile_coupons.enqueue()
    return True
