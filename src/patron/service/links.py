"""The customer's link to one ticket (``/help/t/<token>/``): the customer follows it, writes
again, or says an automatic answer did not help, without an account. The link is the
credential for that one ticket only and is sent only through the customer's own channel; it
expires after ``PATRON_TICKET_LINK_DAYS`` (90 by default). See ``patron.signedlink``.
"""

from __future__ import annotations

from patron.signedlink import INVALID, SignedLink, public_link

LINK = SignedLink(
    salt="patron.service.ticket-link",
    days_setting="PATRON_TICKET_LINK_DAYS",
    default_days=90,
    expired="this link has expired: write to us again and we will send a new one",
)
__all__ = ["INVALID", "ticket_of_token", "ticket_path", "ticket_token", "ticket_url"]


def link_days() -> int:
    return LINK.days()


def ticket_token(ticket_id: int) -> str:
    return LINK.make(ticket=ticket_id)


def ticket_of_token(token: str) -> int:
    """The ticket the link names, or an error the page shows as it is."""
    (ticket,) = LINK.read(token, "ticket")
    return ticket


def ticket_path(ticket_id: int) -> str:
    return f"/help/t/{ticket_token(ticket_id)}/"


def ticket_url(ticket_id: int) -> str:
    return public_link(ticket_path(ticket_id))
