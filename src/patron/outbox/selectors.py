"""Reading the outbox: every message, a customer's messages, one message, and what an
unsubscribe link will withdraw.

Staff need ``outbox.view_message``. The address a message went to is masked unless the caller
may see personal data (``account.view_pii``); subject and body are shown, since they are what
the customer was told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from patron.account.roles import VIEW_MESSAGES
from patron.account.services import may_see_pii, require_permission
from patron.customer.models import Consent, Customer
from patron.customer.selectors import Page, page_bounds
from patron.errors import NotFound, ValidationFailed
from patron.outbox import links, rules
from patron.outbox.models import Message
from patron.privacy import crypto

MAX_CUSTOMER_MESSAGES = 500
_MASK_KIND = {rules.EMAIL: "email", rules.SMS: "phone", rules.PHONE: "phone"}


@dataclass(frozen=True)
class MessageView:
    id: int
    customer_id: int
    customer_name: str
    channel: str
    channel_label: str
    purpose: str
    purpose_label: str
    template: str
    language: str
    recipient: str  # masked unless the caller may see personal data
    subject: str
    body: str
    status: str
    status_label: str
    reason: str
    last_error: str
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    key: str
    source: str
    provider_message_id: str
    cancelled_by: str


def _label(choices: Any, value: str) -> str:
    return str(dict(choices.choices).get(value, value))


def _recipient(message: Message, *, visible: bool) -> str:
    if visible or message.channel not in _MASK_KIND:
        return message.recipient
    return crypto.mask(message.recipient, kind=_MASK_KIND[message.channel])


def _view(message: Message, *, visible: bool) -> MessageView:
    return MessageView(
        id=message.pk,
        customer_id=message.customer_id,
        customer_name=message.customer.name,
        channel=message.channel,
        channel_label=_label(Consent.Channel, message.channel),
        purpose=message.purpose,
        purpose_label=_label(Consent.Purpose, message.purpose),
        template=message.template,
        language=message.language,
        recipient=_recipient(message, visible=visible),
        subject=message.subject,
        body=message.body,
        status=message.status,
        status_label=_label(Message.Status, message.status),
        reason=message.reason,
        last_error=message.last_error,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at,
        sent_at=message.sent_at,
        created_at=message.created_at,
        key=message.key,
        source=message.source,
        provider_message_id=message.provider_message_id,
        cancelled_by=message.cancelled_by.get_username() if message.cancelled_by else "",
    )


def _messages() -> QuerySet[Message]:
    return Message.objects.select_related("customer", "cancelled_by").order_by("-created_at", "-id")


def message_list(
    *,
    user: Any,
    status: str | None = None,
    channel: str | None = None,
    customer_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[MessageView]:
    """Every message, newest first, optionally of one status, channel or customer; paged."""
    require_permission(user, VIEW_MESSAGES)
    page, page_size = page_bounds(page, page_size)
    queryset = _messages()
    if status:
        if status not in Message.Status.values:
            raise ValidationFailed(
                f"status: one of {', '.join(Message.Status.values)}; got {status!r}"
            )
        queryset = queryset.filter(status=status)
    if channel:
        if channel not in rules.CHANNELS:
            raise ValidationFailed(f"channel: one of {', '.join(rules.CHANNELS)}; got {channel!r}")
        queryset = queryset.filter(channel=channel)
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    visible = may_see_pii(user)
    offset = (page - 1) * page_size
    items = tuple(_view(m, visible=visible) for m in queryset[offset : offset + page_size])
    return Page(items=items, count=queryset.count(), page=page, page_size=page_size)


def messages_for_customer(*, user: Any, customer_id: int, limit: int = 100) -> list[MessageView]:
    """The customer's messages, newest first (404 for an unknown customer)."""
    require_permission(user, VIEW_MESSAGES)
    if limit < 1 or limit > MAX_CUSTOMER_MESSAGES:
        raise ValidationFailed(f"limit must be between 1 and {MAX_CUSTOMER_MESSAGES}, got {limit}")
    if not (0 < customer_id < 2**63) or not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"customer {customer_id} not found")
    visible = may_see_pii(user)
    return [_view(m, visible=visible) for m in _messages().filter(customer_id=customer_id)[:limit]]


def message_get(*, user: Any, message_id: int) -> MessageView:
    require_permission(user, VIEW_MESSAGES)
    message = _messages().filter(pk=message_id).first() if 0 < message_id < 2**63 else None
    if message is None:
        raise NotFound(f"message {message_id} not found")
    return _view(message, visible=may_see_pii(user))


def message_recent(*, status: str | None = None, limit: int = 50) -> list[MessageView]:
    """The newest messages for the operator's command line (``patron outbox list``): whoever
    runs it holds the database already, so there is no user to check; addresses are masked."""
    queryset = _messages()
    if status:
        if status not in Message.Status.values:
            raise ValidationFailed(
                f"status: one of {', '.join(Message.Status.values)}; got {status!r}"
            )
        queryset = queryset.filter(status=status)
    return [_view(m, visible=False) for m in queryset[:limit]]


# ---------------------------------------------------------------------- unsubscribe


@dataclass(frozen=True)
class UnsubscribePreview:
    """What the unsubscribe page shows before the customer confirms (no login)."""

    customer_name: str  # masked: the link may have been forwarded
    purpose: str
    purpose_label: str
    channel: str
    channel_label: str
    is_withdrawn: bool  # consent is already withdrawn: nothing left to do


def _masked_name(name: str) -> str:
    name = name.strip()
    if len(name) <= 1:
        return name or "—"
    return name[0] + "*" * min(len(name) - 1, 3)


def unsubscribe_preview(token: str) -> UnsubscribePreview:
    """404 for a bad or tampered token, or a customer no longer on file."""
    request = links.unsubscribe_read(token)
    customer = Customer.objects.filter(pk=request.customer_id).first()
    if customer is None:
        raise NotFound(links.INVALID)
    latest = (
        Consent.objects.filter(customer=customer, purpose=request.purpose, channel=request.channel)
        .order_by("-recorded_at", "-id")
        .values_list("is_granted", flat=True)
        .first()
    )
    return UnsubscribePreview(
        customer_name=_masked_name(customer.name),
        purpose=request.purpose,
        purpose_label=_label(Consent.Purpose, request.purpose),
        channel=request.channel,
        channel_label=_label(Consent.Channel, request.channel),
        is_withdrawn=latest is False,
    )
