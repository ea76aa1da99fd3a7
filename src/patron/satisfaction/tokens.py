"""The customer's links: one CSAT request (``/csat/<token>/``) or one survey invitation
(``/survey/<token>/``), so a customer answers without an account (see ``patron.signedlink``).

A CSAT link expires after ``PATRON_CSAT_LINK_DAYS`` (7 by default): an answer weeks later says
little about the service. A survey link lasts ``PATRON_SURVEY_LINK_DAYS`` (60), and its run
closing ends it earlier.
"""

from __future__ import annotations

from patron.signedlink import SignedLink, public_link

EXPIRED = "this link has expired: ask the shop's customer service if you still want to answer"
CSAT_LINK = SignedLink(
    salt="patron.satisfaction.csat-link",
    days_setting="PATRON_CSAT_LINK_DAYS",
    default_days=7,
    expired=EXPIRED,
)
SURVEY_LINK = SignedLink(
    salt="patron.satisfaction.survey-link",
    days_setting="PATRON_SURVEY_LINK_DAYS",
    default_days=60,
    expired=EXPIRED,
)
__all__ = ["csat_path", "csat_ticket", "csat_token", "public_link", "survey_invitation_key"]


def csat_link_days() -> int:
    return CSAT_LINK.days()


def survey_link_days() -> int:
    return SURVEY_LINK.days()


def csat_token(ticket_id: int) -> str:
    return CSAT_LINK.make(t=ticket_id)


def survey_token(run_id: int, customer_id: int) -> str:
    return SURVEY_LINK.make(r=run_id, c=customer_id)


def csat_ticket(token: str) -> int:
    """The ticket a CSAT link was issued for, or the error the page and the API show."""
    (ticket,) = CSAT_LINK.read(token, "t")
    return ticket


def survey_invitation_key(token: str) -> tuple[int, int]:
    """(run id, customer id) of a survey link, or the error to show."""
    run, customer = SURVEY_LINK.read(token, "r", "c")
    return run, customer


def csat_path(token: str) -> str:
    return f"/csat/{token}/"


def survey_path(token: str) -> str:
    return f"/survey/{token}/"
