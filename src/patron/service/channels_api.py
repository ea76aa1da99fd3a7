"""REST endpoints of the desk's channels, under ``/api/service``.

- ``POST /inbound/webhook``: connectors (WeChat, app, phone-call logs, social media) post a
  customer's message, signed with the shared secret (no token: the signature is the
  credential; ``patron.service.webhook``). 503 while ``PATRON_SERVICE_WEBHOOK_SECRET`` is unset.
- ``POST /inbound``: the same JSON with an API token holding ``service.add_ticketmessage``.
- ``POST /inbound/email``: one raw e-mail (``message/rfc822``) with the same permission, for a
  mail server that pipes mail to a URL.
- ``POST /chat/start``, ``POST /chat/{token}/messages``, ``GET /chat/{token}/messages``: the
  chat widget, no login (the chat token names one ticket), limited per address.

Thin: each endpoint parses, calls one function of ``patron.service.channels``, ``.mail``,
``.webhook`` or ``.public``, and answers. Errors: 403 signature or permission, 404 unknown
ticket or token, 409 a ticket that can no longer be written to, 422 invalid input (naming the
field), 429 too many requests from one address, 503 webhook not configured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from patron.account.roles import POST_INBOUND
from patron.account.services import require_permission
from patron.customer.api import ErrorOut
from patron.errors import ValidationFailed
from patron.service import links, mail, public, throttle, webhook
from patron.service.channels import Received
from patron.service.webhook import ServiceInboundIn

router = Router(tags=["service channels"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
PUBLIC_ERRORS: dict[int, Any] = {**ERRORS, 429: ErrorOut}


class ServiceInboundOut(Schema):
    ticket_id: int
    message_id: int = Field(description="The message on the ticket")
    new_ticket: bool = Field(description="The message opened a new ticket")
    duplicate: bool = Field(
        description="The channel had posted this message before: nothing was filed again"
    )


def _out(received: Received) -> dict[str, Any]:
    return {
        "ticket_id": received.ticket_id,
        "message_id": received.message.pk,
        "new_ticket": received.new_ticket,
        "duplicate": received.duplicate,
    }


def _body(request: HttpRequest) -> bytes:
    try:
        return bytes(request.body)
    except RequestDataTooBig as error:
        raise ValidationFailed("body: larger than the server accepts") from error


# ---------------------------------------------------------------------- connectors


@router.post(
    "/inbound/webhook",
    auth=None,
    response={200: ServiceInboundOut, 503: ErrorOut, **ERRORS},
    summary="A connector posts a customer's message (signed with the shared secret)",
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": webhook.TIMESTAMP_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "Unix time in seconds; refused more than 5 minutes off",
            },
            {
                "in": "header",
                "name": webhook.SIGNATURE_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "sha256=<hex HMAC-SHA256(secret, timestamp + '.' + body)>",
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ServiceInboundIn"}}
            },
        },
    },
)
def inbound_webhook(request: HttpRequest) -> Any:
    secret = webhook.webhook_secret()
    if not secret:
        return 503, {
            "code": "not_configured",
            "message": "the service webhook is not configured: set PATRON_SERVICE_WEBHOOK_SECRET",
            "details": None,
        }
    body = _body(request)
    webhook.webhook_verify(
        secret,
        request.headers.get(webhook.TIMESTAMP_HEADER, ""),
        body,
        request.headers.get(webhook.SIGNATURE_HEADER, ""),
    )
    return 200, _out(webhook.payload_receive(webhook.payload_parse(body)))


@router.post(
    "/inbound",
    response={200: ServiceInboundOut, **ERRORS},
    summary="Post a customer's message with an API token (service.add_ticketmessage)",
)
def inbound_post(request: HttpRequest, payload: ServiceInboundIn) -> Any:
    require_permission(request.user, POST_INBOUND)
    return 200, _out(webhook.payload_receive(payload))


@router.post(
    "/inbound/email",
    response={200: ServiceInboundOut, **ERRORS},
    summary="Post one raw e-mail (message/rfc822); automatic mail and bounces are refused (422)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def inbound_email(request: HttpRequest) -> Any:
    require_permission(request.user, POST_INBOUND)
    if (request.content_type or "").startswith("multipart/"):
        raise ValidationFailed(
            "body: send the raw message as the body (Content-Type: message/rfc822), "
            "not as a form upload"
        )
    return 200, _out(mail.mail_file(_body(request)))


# ---------------------------------------------------------------------- the chat widget


class ServiceChatStartIn(Schema):
    name: str = Field("", max_length=public.MAX_NAME)
    email: str = Field("", max_length=254, description="E-mail or phone: at least one")
    phone: str = Field("", max_length=30)
    subject: str = Field("", max_length=200, description="Default: the text's first line")
    text: str = Field(min_length=1, max_length=webhook.MAX_TEXT)


class ServiceChatStartOut(Schema):
    ticket_id: int
    message_id: int
    new_ticket: bool
    token: str = Field(description="The chat token: send it back to write and to read")
    link: str = Field(description="The ticket's page, to follow it after the chat")


class ServiceChatMessageIn(Schema):
    text: str = Field(min_length=1, max_length=webhook.MAX_TEXT)
    client_id: str = Field(
        "",
        max_length=public.MAX_CLIENT_ID,
        description="The widget's id for the message: a retry with the same one is filed once",
    )


class ServiceChatMessageOut(Schema):
    id: int
    from_customer: bool
    author: str
    text: str
    at: datetime
    is_automatic: bool = Field(description="An answer from the FAQ, not a person")


class ServiceChatConversationOut(Schema):
    ticket_id: int
    status: str
    status_label: str
    status_text: str
    may_write: bool
    messages: list[ServiceChatMessageOut]


class ServiceChatPostedOut(Schema):
    ticket_id: int
    message_id: int
    duplicate: bool


@router.post(
    "/chat/start",
    auth=None,
    response={200: ServiceChatStartOut, **PUBLIC_ERRORS},
    summary="Start a chat (no login): a ticket on channel chat; answers the chat token",
)
def chat_start(request: HttpRequest, payload: ServiceChatStartIn) -> Any:
    throttle.rate_limit(request, "chat_start")
    received, token = public.chat_start(
        name=payload.name,
        email=payload.email,
        phone=payload.phone,
        subject=payload.subject,
        text=payload.text,
    )
    return 200, {
        "ticket_id": received.ticket_id,
        "message_id": received.message.pk,
        "new_ticket": received.new_ticket,
        "token": token,
        "link": links.ticket_path(received.ticket_id),
    }


@router.post(
    "/chat/{token}/messages",
    auth=None,
    response={200: ServiceChatPostedOut, **PUBLIC_ERRORS},
    summary="Write in a chat (no login: the chat token)",
)
def chat_write(request: HttpRequest, token: str, payload: ServiceChatMessageIn) -> Any:
    throttle.rate_limit(request, "chat_message")
    ticket_id = public.ticket_of_chat_token(token)
    received = public.chat_write(ticket_id, text=payload.text, client_id=payload.client_id)
    return 200, {
        "ticket_id": received.ticket_id,
        "message_id": received.message.pk,
        "duplicate": received.duplicate,
    }


class ChatReadParams(Schema):
    after: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Only the messages after this message id"
    )


@router.get(
    "/chat/{token}/messages",
    auth=None,
    response={200: ServiceChatConversationOut, **PUBLIC_ERRORS},
    summary="Read a chat (no login): the conversation without internal notes, for polling",
)
def chat_read(request: HttpRequest, token: str, params: Query[ChatReadParams]) -> Any:
    throttle.rate_limit(request, "chat_poll")
    ticket_id = public.ticket_of_chat_token(token)
    view = public.customer_ticket(ticket_id, after=params.after)
    return 200, {
        "ticket_id": view.id,
        "status": view.status,
        "status_label": view.status_label,
        "status_text": view.status_text,
        "may_write": view.may_write,
        "messages": [
            {
                "id": m.id,
                "from_customer": m.is_customer,
                "author": m.author,
                "text": m.body,
                "at": m.created_at,
                "is_automatic": m.is_automatic,
            }
            for m in view.messages
        ],
    }
