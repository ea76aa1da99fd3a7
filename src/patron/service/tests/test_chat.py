"""The chat widget's endpoints: start, write, read (polling), limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.service import public, services
from patron.service.models import Ticket, TicketMessage
from patron.service.tests.channel_fixtures import URLS, channel_settings

__all__ = ["channel_settings"]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls(URLS),
    pytest.mark.usefixtures("channel_settings"),
]

START = "/api/service/chat/start"


def _start(client: Client | None = None, **changes: Any) -> Any:
    payload = {"name": "陈晨", "email": "chen@example.cn", "text": "这件衣服有 XL 吗？", **changes}
    return (client or Client()).post(START, payload, content_type="application/json")


def _messages(token: str) -> str:
    return f"/api/service/chat/{token}/messages"


def test_starting_a_chat_opens_a_chat_ticket_and_answers_a_token() -> None:
    # when
    response = _start()

    # then
    assert response.status_code == 200, response.content
    answer = response.json()
    ticket = Ticket.objects.get()
    assert (ticket.channel, ticket.subject, ticket.status) == ("chat", "这件衣服有 XL 吗？", "new")
    assert ticket.thread_key.startswith("chat-") and len(ticket.thread_key) == 37
    assert answer["ticket_id"] == ticket.pk
    assert answer["new_ticket"] is True
    assert public.ticket_of_chat_token(answer["token"]) == ticket.pk
    assert answer["link"].startswith("/help/t/")


def test_the_chat_token_is_not_a_ticket_link_and_back() -> None:
    # given
    token = _start().json()["token"]

    # when
    as_link = Client().get(f"/help/t/{token}/")
    forged = Client().get(_messages("not-a-token"))

    # then
    assert as_link.status_code == 404
    assert forged.status_code == 404
    assert forged.json()["message"] == "this chat token is not valid"


def test_writing_and_polling_a_chat_without_notes(user_factory: Callable[..., User]) -> None:
    # given: a chat, an agent's note and reply
    started = _start().json()
    token, ticket_id = started["token"], started["ticket_id"]
    agent = user_factory(Role.SERVICE_AGENT)
    services.ticket_note(ticket_id, user=agent, body="内部：库存系统显示 XL 缺货")
    reply = services.ticket_reply(ticket_id, user=agent, body="XL 明天到货。")
    client = Client()

    # when
    written = client.post(
        _messages(token),
        {"text": "好的，到货提醒我", "client_id": "m-2"},
        content_type="application/json",
    )
    retried = client.post(
        _messages(token),
        {"text": "好的，到货提醒我", "client_id": "m-2"},
        content_type="application/json",
    )
    everything = client.get(_messages(token))
    newer = client.get(_messages(token), {"after": reply.pk})

    # then
    assert written.status_code == 200, written.content
    assert retried.json() == {**written.json(), "duplicate": True}
    assert Ticket.objects.get(pk=ticket_id).status == "open"
    conversation = everything.json()
    assert (conversation["ticket_id"], conversation["status"], conversation["may_write"]) == (
        ticket_id,
        "open",
        True,
    )
    assert [(m["from_customer"], m["text"]) for m in conversation["messages"]] == [
        (True, "这件衣服有 XL 吗？"),
        (False, "XL 明天到货。"),
        (True, "好的，到货提醒我"),
    ]
    assert "内部" not in everything.content.decode()
    assert [m["text"] for m in newer.json()["messages"]] == ["好的，到货提醒我"]
    assert TicketMessage.objects.filter(ticket_id=ticket_id, direction="in").count() == 2


def test_a_chat_needs_an_email_or_a_phone() -> None:
    # when
    response = _start(email="", phone="")
    invalid = _start(email="chen-at-example")

    # then
    assert response.status_code == 422
    assert response.json()["message"] == (
        "email: give an e-mail address or a phone number so we can answer you"
    )
    assert invalid.status_code == 422
    assert invalid.json()["message"] == "email: 'chen-at-example' is not a valid e-mail address"
    assert Ticket.objects.count() == 0


def test_a_chat_by_phone_only() -> None:
    response = _start(email="", phone="13912345678")
    assert response.status_code == 200
    assert Ticket.objects.select_related("customer").get().customer.phone == "13912345678"


def test_a_closed_chat_cannot_be_written_to(user_factory: Callable[..., User]) -> None:
    # given
    started = _start().json()
    agent = user_factory(Role.SERVICE_AGENT)
    services.ticket_act(started["ticket_id"], "solve", user=agent)
    services.ticket_act(started["ticket_id"], "close", user=agent)

    # when
    response = Client().post(
        _messages(started["token"]), {"text": "还在吗"}, content_type="application/json"
    )

    # then
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"ticket {started['ticket_id']} is closed: it can no longer be answered; "
        "please open a new request"
    )
    assert TicketMessage.objects.count() == 1


def test_starting_chats_is_limited_per_address(settings: Any) -> None:
    # given
    settings.PATRON_SERVICE_RATE_LIMITS = {"chat_start": 1}
    first = _start()

    # when
    second = _start()
    other_address = Client(REMOTE_ADDR="10.0.0.2").post(
        START, {"name": "x", "phone": "13900000000", "text": "hi"}, content_type="application/json"
    )

    # then
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["code"] == "rate_limited"
    assert other_address.status_code == 200
    assert Ticket.objects.count() == 2


def test_an_expired_chat_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    token = _start().json()["token"]
    monkeypatch.setattr(public, "chat_days", lambda: -1)

    # when
    response = Client().get(_messages(token))

    # then
    assert response.status_code == 403
    assert response.json()["message"] == "this chat has expired: please start a new one"
