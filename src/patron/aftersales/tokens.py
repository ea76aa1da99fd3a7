"""The customer's after-sales link (``/aftersales/<token>/``): it names one customer, so the
customer can file a return, an exchange, a repair or a compensation, follow it, cancel it and
appeal a rejection without an account.

The link is the credential: whoever holds it acts as that customer for after-sales only, so it
expires (``PATRON_AFTERSALES_LINK_DAYS``, 30 by default) and is sent only through the customer's
own channels (the outbox messages carry it). See ``patron.signedlink``.
"""

from __future__ import annotations

from patron.signedlink import SignedLink, public_link

LINK = SignedLink(
    salt="patron.aftersales.customer-link",
    days_setting="PATRON_AFTERSALES_LINK_DAYS",
    default_days=30,
)


def link_days() -> int:
    return LINK.days()


def customer_token(customer_id: int) -> str:
    return LINK.make(customer=customer_id)


def token_customer(token: str) -> int:
    """The customer the link was issued for, or an error the page shows as it is."""
    (customer,) = LINK.read(token, "customer")
    return customer


def customer_path(customer_id: int) -> str:
    return f"/aftersales/{customer_token(customer_id)}/"


def customer_url(customer_id: int) -> str:
    return public_link(customer_path(customer_id))
