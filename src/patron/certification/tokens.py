"""The applicant's link (``/apply/<token>/``): it names one customer, so a customer can apply,
upload, answer questions and follow their application without an account.

The link is the credential: whoever holds it acts as that customer for certification only, so
it expires (``PATRON_CERT_LINK_DAYS``, 30 by default) and is sent only through the customer's
own channels. See ``patron.signedlink``.
"""

from __future__ import annotations

from patron.signedlink import SignedLink, public_link

LINK = SignedLink(
    salt="patron.certification.applicant-link",
    days_setting="PATRON_CERT_LINK_DAYS",
    default_days=30,
)


def link_days() -> int:
    return LINK.days()


def applicant_token(customer_id: int) -> str:
    return LINK.make(customer=customer_id)


def applicant_customer(token: str) -> int:
    """The customer the link was issued for, or an error the page shows as it is."""
    (customer,) = LINK.read(token, "customer")
    return customer


def applicant_path(customer_id: int) -> str:
    return f"/apply/{applicant_token(customer_id)}/"


def applicant_url(customer_id: int) -> str:
    return public_link(applicant_path(customer_id))
