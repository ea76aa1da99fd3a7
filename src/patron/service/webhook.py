"""The signed webhook that connectors post customers' messages to: WeChat (公众号 / 小程序),
the shop's app, phone-call logs, social media, a third-party chat.

Signing is the outbox's, the other way round (``patron.outbox.adapters.webhook_signature``):
``X-Patron-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-Patron-Timestamp`` the Unix time in seconds. ``webhook_verify`` refuses a bad signature and
a timestamp more than ``MAX_SKEW_SECONDS`` away from now (a replayed or a stale request), and
compares in constant time. A replay inside the window files nothing new: filing is idempotent
on the connector's ``message_id``.

The secret is ``settings.PATRON_SERVICE_WEBHOOK_SECRET``; without it the webhook is off (503).
The payload (``ServiceInboundIn``) is documented with a worked example in
docs/service-channels.md.
"""

from __future__ import annotations

import hmac
import time
from typing import Literal

from django.conf import settings
from ninja import Schema
from pydantic import Field, ValidationError, field_validator

from patron.apitext import NO_NUL, AwareDateTimeText
from patron.errors import PermissionDenied, ValidationFailed
from patron.outbox.adapters import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_signature
from patron.service import services
from patron.service.channels import Received, receive

MAX_SKEW_SECONDS = 300
MAX_TEXT = services.MAX_BODY

__all__ = [
    "MAX_SKEW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ServiceInboundIdentity",
    "ServiceInboundIn",
    "payload_parse",
    "payload_receive",
    "webhook_secret",
    "webhook_sign",
    "webhook_verify",
]


def webhook_secret() -> str:
    return str(getattr(settings, "PATRON_SERVICE_WEBHOOK_SECRET", "") or "")


def webhook_sign(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The two headers a connector sends with ``body`` (the exact bytes it posts)."""
    stamp = str(int(time.time()) if timestamp is None else int(timestamp))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: webhook_signature(secret, stamp, body)}


def webhook_verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None
) -> None:
    """Accept the request or raise ``PermissionDenied`` naming the header at fault: a missing
    or malformed header, a timestamp more than five minutes old or ahead (a replay, or a
    connector whose clock is wrong), a signature that does not match (constant-time compare).
    """
    if not secret:
        raise PermissionDenied("the service webhook is not configured")
    stamp = (timestamp or "").strip()
    if not stamp:
        raise PermissionDenied(f"{TIMESTAMP_HEADER}: missing")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise PermissionDenied(f"{TIMESTAMP_HEADER}: expected Unix time in seconds, got {stamp!r}")
    given = (signature or "").strip()
    if not given:
        raise PermissionDenied(f"{SIGNATURE_HEADER}: missing")
    current = time.time() if now is None else now
    skew = current - int(stamp)
    if skew > MAX_SKEW_SECONDS:
        raise PermissionDenied(
            f"{TIMESTAMP_HEADER}: {round(skew)} seconds old, more than {MAX_SKEW_SECONDS}: "
            "a replayed or delayed request is refused"
        )
    if -skew > MAX_SKEW_SECONDS:
        raise PermissionDenied(
            f"{TIMESTAMP_HEADER}: {round(-skew)} seconds in the future, more than "
            f"{MAX_SKEW_SECONDS}: check the connector's clock"
        )
    expected = webhook_signature(secret, stamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise PermissionDenied(
            f"{SIGNATURE_HEADER}: does not match the body: sign timestamp + '.' + the exact "
            "bytes sent, with HMAC-SHA256 and the shared secret"
        )


# ---------------------------------------------------------------------- the payload

Channel = Literal["wechat", "app", "phone", "social", "chat", "web"]
IdentityKind = Literal["wechat", "app", "phone", "email", "social"]


class ServiceInboundIdentity(Schema):
    kind: IdentityKind = Field(
        description="How the channel knows the customer: wechat (OpenID or UnionID), app (the "
        "app's user id), phone, email, social (platform:handle)"
    )
    value: str = Field(
        min_length=1,
        max_length=320,
        pattern=NO_NUL,
        description="The OpenID, number, address …",
    )

    @field_validator("value")
    @classmethod
    def _words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class ServiceInboundIn(Schema):
    """A customer's message as a connector posts it."""

    channel: Channel = Field(description="The channel the customer wrote on")
    identity: ServiceInboundIdentity
    # Free text never holds NUL (PostgreSQL cannot store it, nor compare with it): said in the
    # spec, so the refusal is a documented 422 before any lookup
    name: str = Field(
        "",
        max_length=200,
        pattern=NO_NUL,
        description="The customer's name as the channel shows it",
    )
    subject: str = Field(
        "", max_length=200, pattern=NO_NUL, description="Default: the text's first line"
    )
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        pattern=NO_NUL,
        description="What the customer wrote; for a phone call, the agent's summary of it",
    )
    message_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="The connector's id of this message: posting it twice files it once",
    )
    conversation_id: str = Field(
        "",
        max_length=200,
        pattern=NO_NUL,
        description="The connector's conversation: messages with the same one go on one ticket",
    )
    ticket_id: int | None = Field(None, ge=1, description="Continue this ticket of the customer")
    order_id: str = Field(
        "",
        max_length=64,
        pattern=NO_NUL,
        description="The shop's order number (its external id) the message is about; it must "
        "be an order of this customer",
    )
    category: str = Field("", max_length=40, pattern=NO_NUL, description="A ticket category slug")
    sent_at: AwareDateTimeText | None = Field(
        None,
        description="When the customer wrote (informative: the desk's clocks run from when "
        "Patron receives the message)",
    )

    @field_validator("text", "message_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("order_id", mode="before")
    @classmethod
    def _order_number(cls, value: object) -> object:
        return "" if value is None else str(value) if isinstance(value, int) else value

    def inbound(self) -> services.Inbound:
        return services.Inbound(
            channel=self.channel,
            identity_kind=self.identity.kind,
            identity_value=self.identity.value,
            name=self.name.strip(),
            subject=self.subject.strip(),
            body=self.text,
            external_id=self.message_id.strip(),
            thread_key=self.conversation_id.strip(),
            ticket_id=self.ticket_id,
            category=self.category.strip(),
        )


def payload_parse(body: bytes) -> ServiceInboundIn:
    """The payload from the request's bytes; 422 naming each field at fault."""
    try:
        return ServiceInboundIn.model_validate_json(body or b"")
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}"
            for e in error.errors(include_url=False)
        ]
        raise ValidationFailed(
            "invalid payload: " + "; ".join(problems),
            details=error.errors(include_url=False, include_context=False, include_input=False),
        ) from error


def payload_receive(payload: ServiceInboundIn, *, actor_label: str = "") -> Received:
    """File a connector's message (idempotent on ``message_id``)."""
    return receive(
        payload.inbound(),
        order_number=payload.order_id,
        actor_label=actor_label or payload.name.strip() or f"{payload.channel} connector",
    )
