"""The applicant's link: a signed token naming one customer, so a customer can apply, upload,
answer questions and follow their application on the public page without an account.

The link is the credential: whoever holds it acts as that customer for certification only, so
it expires (``PATRON_CERT_LINK_DAYS``, 30 by default) and is sent only through the customer's
own channels. A tampered or expired link names no customer.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from patron.errors import NotFound, PermissionDenied

SALT = "patron.certification.applicant-link"


def link_days() -> int:
    return int(getattr(settings, "PATRON_CERT_LINK_DAYS", 30))


def applicant_token(customer_id: int) -> str:
    return signing.dumps({"customer": customer_id}, salt=SALT, compress=True)


def applicant_customer(token: str) -> int:
    """The customer the link was issued for, or an error the page shows as it is."""
    try:
        data = signing.loads(token, salt=SALT, max_age=link_days() * 86400)
    except signing.SignatureExpired as exc:
        raise PermissionDenied(
            "this link has expired: ask the shop's customer service for a new one"
        ) from exc
    except signing.BadSignature as exc:
        raise NotFound("this link is not valid: check that it was copied whole") from exc
    customer = data.get("customer") if isinstance(data, dict) else None
    if not isinstance(customer, int):
        raise NotFound("this link is not valid: check that it was copied whole")
    return customer


def applicant_path(customer_id: int) -> str:
    return f"/apply/{applicant_token(customer_id)}/"


def applicant_url(customer_id: int) -> str:
    """The full link for messages (``PATRON_PUBLIC_URL``: where customers reach this site)."""
    from patron.outbox.links import public_url

    return public_url(applicant_path(customer_id))
