"""Unsubscribe links: a signed token for (customer, purpose, channel), no login needed.

The token is signed with the site's secret key and a salt used for nothing else, so a token
made for another purpose of ``django.core.signing`` does not work here, and any change to it
breaks the signature. It does not expire: the law wants withdrawing consent to stay as easy as
giving it, and a link in an old message must still work.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_noop

from patron.errors import NotFound
from patron.outbox import rules

SALT = "patron.outbox.unsubscribe"
#: Shown on the page in the visitor's language (``gettext`` at render time).
INVALID = gettext_noop("This unsubscribe link is not valid: it may have been cut short or changed.")


@dataclass(frozen=True)
class UnsubscribeRequest:
    customer_id: int
    purpose: str
    channel: str


def unsubscribe_token(*, customer_id: int, purpose: str, channel: str) -> str:
    return signing.dumps({"c": customer_id, "p": purpose, "ch": channel}, salt=SALT, compress=True)


def unsubscribe_read(token: str) -> UnsubscribeRequest:
    """What ``token`` asks to withdraw; ``NotFound`` for a bad, tampered or foreign token."""
    try:
        data = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError) as error:
        raise NotFound(INVALID) from error
    if not isinstance(data, dict):
        raise NotFound(INVALID)
    customer_id, purpose, channel = data.get("c"), data.get("p"), data.get("ch")
    if (
        not isinstance(customer_id, int)
        or purpose not in rules.PURPOSES
        or channel not in rules.CHANNELS
    ):
        raise NotFound(INVALID)
    return UnsubscribeRequest(customer_id=customer_id, purpose=purpose, channel=channel)


def public_url(path: str) -> str:
    """``path`` on the address customers reach Patron at (``settings.PATRON_PUBLIC_URL``)."""
    base = str(getattr(settings, "PATRON_PUBLIC_URL", "") or "http://127.0.0.1:8000")
    return base.rstrip("/") + path


def unsubscribe_url(*, customer_id: int, purpose: str, channel: str) -> str:
    token = unsubscribe_token(customer_id=customer_id, purpose=purpose, channel=channel)
    return public_url(reverse("outbox:unsubscribe", args=[token]))
