"""The customer's link to answer a proposed resolution (``/complaint/<token>/``): it names one
complaint and the round (the proposal) it was sent for, so the customer accepts or rejects that
proposal without an account.

The link answers once: after the answer the complaint has moved on, and a link of an earlier
round (a proposal that was since replaced) answers nothing. It expires after
``PATRON_COMPLAINT_LINK_DAYS`` (30 by default). See ``patron.signedlink``.
"""

from __future__ import annotations

from dataclasses import dataclass

from patron.signedlink import SignedLink, public_link

LINK = SignedLink(
    salt="patron.complaints.answer-link", days_setting="PATRON_COMPLAINT_LINK_DAYS", default_days=30
)


def link_days() -> int:
    return LINK.days()


@dataclass(frozen=True)
class AnswerLink:
    complaint_id: int
    round: int


def answer_token(complaint_id: int, round_number: int) -> str:
    return LINK.make(complaint=complaint_id, round=round_number)


def answer_link(token: str) -> AnswerLink:
    """The complaint and round the link was issued for, or an error the page shows as it is
    (404 not valid, 403 expired)."""
    complaint, round_number = LINK.read(token, "complaint", "round")
    return AnswerLink(complaint_id=complaint, round=round_number)


def answer_path(complaint_id: int, round_number: int) -> str:
    return f"/complaint/{answer_token(complaint_id, round_number)}/"


def answer_url(complaint_id: int, round_number: int) -> str:
    return public_link(answer_path(complaint_id, round_number))
