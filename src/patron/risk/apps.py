from typing import Any

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "patron.risk"
    label = "risk"
    verbose_name = "Risk control"

    def ready(self) -> None:
        from patron.ingest.signals import batch_committed

        batch_committed.connect(_detect_after_import, dispatch_uid="risk-detect-after-import")


def _detect_after_import(sender: Any, *, batch_id: int, kinds: set[str], **_: Any) -> None:
    """Rules run as new data arrives: queue a detection run after each committed batch."""
    from patron.risk.tasks import enqueue_after_import

    enqueue_after_import(kinds)
