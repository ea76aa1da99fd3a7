from typing import Any

from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "patron.marketing"
    label = "marketing"
    verbose_name = "Marketing (segments, coupons, campaigns)"

    def ready(self) -> None:
        from patron.ingest.signals import batch_committed

        batch_committed.connect(
            _reconcile_after_import, dispatch_uid="marketing-reconcile-after-import"
        )


def _reconcile_after_import(sender: Any, *, batch_id: int, kinds: set[str], **_: Any) -> None:
    from patron.marketing.tasks import reconcile_after_import

    reconcile_after_import(kinds)
