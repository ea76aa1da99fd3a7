"""REST endpoints of the outbox.

Under ``/api/outbox``: the messages (filtered, paged), one message, and cancelling one before it
is sent. Under ``/api/customers/{id}``: the customer's messages. Thin: each endpoint calls one
selector or service; 403 permission, 404 unknown message or customer, 409 a message no longer
queued, 422 invalid input.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from patron.apitext import TEXT
from patron.customer.api import ErrorOut
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE
from patron.outbox import selectors, services

router = Router(tags=["outbox"])
customer_router = Router(tags=["outbox"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
#: Words, not only spaces, and no NUL (PostgreSQL text cannot hold it).


class MessageStatus(StrEnum):
    """``patron.outbox.models.Message.Status`` (a test keeps the two the same)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


class MessageChannel(StrEnum):
    """``patron.customer.models.Consent.Channel``."""

    SMS = "sms"
    EMAIL = "email"
    WECHAT = "wechat"
    PHONE = "phone"
    APP = "app"


class MessageOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    channel: MessageChannel
    channel_label: str
    purpose: str = Field(description="marketing, service or profiling")
    purpose_label: str
    template: str = Field(description="Name in patron.outbox.templates")
    language: str
    recipient: str = Field(description="Masked unless you may see personal data")
    subject: str
    body: str
    status: MessageStatus
    status_label: str
    reason: str = Field(description="Why it was suppressed, cancelled or failed")
    last_error: str = Field(description="The latest delivery error, if any")
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    key: str
    source: str
    provider_message_id: str
    cancelled_by: str


class MessagePageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[MessageOut]


class MessageFilters(Schema):
    status: MessageStatus | None = None
    channel: MessageChannel | None = None
    customer_id: int | None = Field(None, ge=1, le=2**63 - 1)
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


class CustomerMessagesParams(Schema):
    limit: int = Field(100, ge=1, le=selectors.MAX_CUSTOMER_MESSAGES)


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=services.MAX_REASON, pattern=TEXT)


@router.get(
    "/messages",
    response={200: MessagePageOut, **ERRORS},
    summary="Messages to customers, newest first (filter by status, channel, customer)",
)
def list_messages(request: HttpRequest, filters: Query[MessageFilters]) -> dict[str, Any]:
    page = selectors.message_list(
        user=request.user,
        status=filters.status.value if filters.status else None,
        channel=filters.channel.value if filters.channel else None,
        customer_id=filters.customer_id,
        page=filters.page,
        page_size=filters.page_size,
    )
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": list(page.items),
    }


@router.get("/messages/{message_id}", response={200: MessageOut, **ERRORS}, summary="One message")
def get_message(request: HttpRequest, message_id: int) -> selectors.MessageView:
    return selectors.message_get(user=request.user, message_id=message_id)


@router.post(
    "/messages/{message_id}/cancel",
    response={200: MessageOut, **ERRORS},
    summary="Cancel a queued message before it is sent (the reason is recorded)",
)
def cancel_message(request: HttpRequest, message_id: int, body: CancelIn) -> selectors.MessageView:
    services.message_cancel(user=request.user, message_id=message_id, reason=body.reason)
    return selectors.message_get(user=request.user, message_id=message_id)


@customer_router.get(
    "/{customer_id}/messages",
    response={200: list[MessageOut], **ERRORS},
    summary="The messages sent (or not sent) to this customer, newest first",
)
def customer_messages(
    request: HttpRequest, customer_id: int, params: Query[CustomerMessagesParams]
) -> list[selectors.MessageView]:
    return selectors.messages_for_customer(
        user=request.user, customer_id=customer_id, limit=params.limit
    )
