import logging
from typing import Any

from django.apps import AppConfig

log = logging.getLogger(__name__)


class SatisfactionConfig(AppConfig):
    name = "patron.satisfaction"
    label = "satisfaction"
    verbose_name = "Satisfaction (CSAT, surveys, suggestions, improvement plans)"

    def ready(self) -> None:
        from patron.service.signals import ticket_solved

        ticket_solved.connect(_ask_for_csat, dispatch_uid="satisfaction-csat-after-solved")


def _ask_for_csat(sender: Any, *, ticket_id: int, **_: Any) -> None:
    """A ticket was solved (the desk sends this after its transaction commits): ask the
    customer how satisfied they are. Idempotent: a second solve asks nothing more. A failure
    here must not turn the agent's finished action into an error page, so it is logged."""
    from patron.satisfaction.services import csat_request_for_ticket

    try:
        csat_request_for_ticket(ticket_id=ticket_id)
    except Exception:
        log.exception("CSAT request for ticket %s failed", ticket_id)
