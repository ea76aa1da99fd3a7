from typing import Any

from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "patron.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty (points and tiers)"

    def ready(self) -> None:
        from patron.ingest.signals import batch_committed

        batch_committed.connect(_accrue_after_import, dispatch_uid="loyalty-accrue-after-import")


def _accrue_after_import(sender: Any, *, batch_id: int, kinds: set[str], **_: Any) -> None:
    """New orders, refunds and reviews earn or take back points: queue an accrual."""
    from patron.loyalty.tasks import accrue_after_import

    accrue_after_import(kinds)
