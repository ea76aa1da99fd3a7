"""Signed links for customers without an account: ONE way to make and read them.

A public page (a ticket to follow, a complaint's proposal to answer, an after-sales or an
application form, a survey) is opened by a link whose token names what it is for: a few whole
numbers signed with the site's key (``django.core.signing``) and a salt used for nothing else,
so a token made for one purpose does not open another, and any change to it breaks it. The link
is the credential, so it expires after a number of days a setting can change. Reading a token
gives the page its error to show as it is: 404 for a link that is not valid (cut short,
changed, made for something else), 403 for one that has expired.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from patron.errors import NotFound, PermissionDenied

INVALID = "this link is not valid: check that it was copied whole"
EXPIRED = "this link has expired: ask the shop's customer service for a new one"


@dataclass(frozen=True)
class SignedLink:
    """One kind of link: its salt, and how long it lasts (``days_setting`` in the settings,
    else ``default_days``)."""

    salt: str
    days_setting: str
    default_days: int
    expired: str = EXPIRED

    def days(self) -> int:
        return int(getattr(settings, self.days_setting, self.default_days))

    def make(self, **fields: int) -> str:
        return signing.dumps(fields, salt=self.salt, compress=True)

    def read(self, token: str, *names: str) -> tuple[int, ...]:
        """The whole numbers ``names`` the token carries, in that order, or the page's error."""
        try:
            data = signing.loads(token, salt=self.salt, max_age=self.days() * 86400)
        except signing.SignatureExpired as exc:
            raise PermissionDenied(self.expired) from exc
        except (signing.BadSignature, ValueError, TypeError, UnicodeError) as exc:
            raise NotFound(INVALID) from exc
        if not isinstance(data, dict):
            raise NotFound(INVALID)
        values = tuple(data.get(name) for name in names)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise NotFound(INVALID)
        return values  # type: ignore[return-value]


def public_link(path: str) -> str:
    """The full link for messages (``PATRON_PUBLIC_URL``: where customers reach this site)."""
    from patron.outbox.links import public_url

    return public_url(path)
