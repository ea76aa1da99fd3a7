from typing import Any

from django.apps import AppConfig


class CertificationConfig(AppConfig):
    name = "patron.certification"
    label = "certification"
    verbose_name = "Certification"

    def ready(self) -> None:
        from patron.ingest.signals import batch_committed

        batch_committed.connect(
            _check_after_import, dispatch_uid="certification-check-after-import"
        )


def _check_after_import(sender: Any, *, batch_id: int, kinds: set[str], **_: Any) -> None:
    """An import may change certified facts on a customer's file: have them reviewed."""
    from patron.certification.tasks import enqueue_after_import

    enqueue_after_import(kinds)
