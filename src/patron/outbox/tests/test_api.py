"""The outbox API: who may do what (role × endpoint), filters, paging, cancelling and its
errors, and that the schema says what it accepts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import NO_ROLE, make_customer, make_user
from patron.customer.models import Customer
from patron.outbox import api, services
from patron.outbox.models import Message

pytestmark = pytest.mark.django_db

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
MARKETER = Role.MARKETER.value
AUDITOR = Role.AUDITOR.value
ROLES = [role.value for role in Role] + [NO_ROLE]

VIEWERS = {ADMINISTRATOR, OPERATIONS_MANAGER, SERVICE_AGENT, MARKETER, AUDITOR}
CANCELLERS = {ADMINISTRATOR, OPERATIONS_MANAGER, MARKETER}

Call = Callable[[Client, Message], Any]

ENDPOINTS: dict[str, tuple[Call, set[str]]] = {
    "GET /api/outbox/messages": (lambda c, m: c.get("/api/outbox/messages"), VIEWERS),
    "GET /api/outbox/messages/{id}": (lambda c, m: c.get(f"/api/outbox/messages/{m.pk}"), VIEWERS),
    "GET /api/customers/{id}/messages": (
        lambda c, m: c.get(f"/api/customers/{m.customer_id}/messages"),
        VIEWERS,
    ),
    "POST /api/outbox/messages/{id}/cancel": (
        lambda c, m: c.post(
            f"/api/outbox/messages/{m.pk}/cancel",
            {"reason": "sent by mistake"},
            content_type="application/json",
        ),
        CANCELLERS,
    ),
}


def _client(user: User) -> Client:
    return Client(headers={"Authorization": f"Bearer {token_create(user=user)}"})


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="王小明", email="xiaoming@example.com", phone="13812341234")


def _queue(customer: Customer, key: str = "k1", **overrides: Any) -> Message:
    values: dict[str, Any] = {
        "customer_id": customer.pk,
        "template": "loyalty.tier_up",
        "purpose": "service",
        "context": {"tier": "黄金"},
        "key": key,
    }
    values.update(overrides)
    return services.message_queue(**values)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_permission_matrix(customer: Customer, endpoint: str, role: str) -> None:
    # given
    call, allowed = ENDPOINTS[endpoint]
    message = _queue(customer)
    client = _client(make_user(role))

    # when
    response = call(client, message)

    # then
    assert response.status_code == (200 if role in allowed else 403), response.content
    message.refresh_from_db()
    cancelled = endpoint.endswith("cancel") and role in allowed
    assert message.status == ("cancelled" if cancelled else "queued")


def test_an_anonymous_caller_is_refused(customer: Customer) -> None:
    assert Client().get("/api/outbox/messages").status_code == 401


def test_the_list_filters_and_pages(customer: Customer) -> None:
    # given
    client = _client(make_user(Role.OPERATIONS_MANAGER))
    _queue(customer, key="a")
    _queue(customer, key="b", channel="sms")
    suppressed = _queue(
        customer,
        key="c",
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "t", "text": "x"},
    )

    # when
    everything = client.get("/api/outbox/messages?page_size=2").json()
    by_status = client.get("/api/outbox/messages?status=suppressed").json()
    by_channel = client.get("/api/outbox/messages?channel=sms").json()
    second_page = client.get("/api/outbox/messages?page_size=2&page=2").json()

    # then
    assert (everything["count"], everything["num_pages"], len(everything["items"])) == (3, 2, 2)
    assert [m["key"] for m in everything["items"]] == ["c", "b"]
    assert [m["key"] for m in second_page["items"]] == ["a"]
    assert [m["id"] for m in by_status["items"]] == [suppressed.pk]
    assert by_status["items"][0]["reason"] == "no marketing consent for email on record"
    assert [m["key"] for m in by_channel["items"]] == ["b"]


@pytest.mark.parametrize(
    "query", ["status=lost", "channel=fax", "page=0", "page_size=201", "customer_id=0"]
)
def test_invalid_filters_are_422(customer: Customer, query: str) -> None:
    client = _client(make_user(Role.MARKETER))
    assert client.get(f"/api/outbox/messages?{query}").status_code == 422


def test_one_message_with_the_address_masked_for_an_agent(customer: Customer) -> None:
    # given
    message = _queue(customer)
    agent = _client(make_user(Role.SERVICE_AGENT))
    manager = _client(make_user(Role.OPERATIONS_MANAGER))

    # when
    seen_by_agent = agent.get(f"/api/outbox/messages/{message.pk}").json()
    seen_by_manager = manager.get(f"/api/outbox/messages/{message.pk}").json()

    # then
    assert seen_by_agent["recipient"] == "x***@example.com"
    assert seen_by_manager["recipient"] == "xiaoming@example.com"
    assert {k: seen_by_agent[k] for k in ("channel", "status", "subject", "template")} == {
        "channel": "email",
        "status": "queued",
        "subject": "会员等级提升",
        "template": "loyalty.tier_up",
    }
    assert seen_by_agent["status_label"] == "待发送 Queued"
    assert seen_by_agent["customer_name"] == "王小明"


def test_an_unknown_message_is_404(db: None) -> None:
    client = _client(make_user(Role.MARKETER))
    assert client.get("/api/outbox/messages/424242").status_code == 404
    assert client.get(f"/api/outbox/messages/{2**70}").status_code == 404


def test_cancel_answers_the_cancelled_message(customer: Customer) -> None:
    # given
    message = _queue(customer)
    client = _client(make_user(Role.MARKETER, username="marketer-zhao"))

    # when
    response = client.post(
        f"/api/outbox/messages/{message.pk}/cancel",
        {"reason": "wrong tier"},
        content_type="application/json",
    )

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["reason"], body["cancelled_by"]) == (
        "cancelled",
        "wrong tier",
        "marketer-zhao",
    )


@pytest.mark.parametrize("reason", ["", "   ", "a\x00b"])
def test_cancel_needs_a_reason(customer: Customer, reason: str) -> None:
    # given
    message = _queue(customer)
    client = _client(make_user(Role.MARKETER))

    # when
    response = client.post(
        f"/api/outbox/messages/{message.pk}/cancel",
        {"reason": reason},
        content_type="application/json",
    )

    # then
    assert response.status_code == 422
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED


def test_cancelling_a_sent_message_is_409(customer: Customer) -> None:
    # given
    message = _queue(customer)
    services.outbox_deliver()
    client = _client(make_user(Role.MARKETER))

    # when
    response = client.post(
        f"/api/outbox/messages/{message.pk}/cancel",
        {"reason": "too late"},
        content_type="application/json",
    )

    # then
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"message {message.pk}: message is sent: cannot cancel; allowed: none (final)"
    )


def test_the_customer_messages(customer: Customer) -> None:
    # given
    first = _queue(customer, key="a")
    second = _queue(customer, key="b")
    _queue(make_customer(email="other@example.com"), key="c")
    client = _client(make_user(Role.AUDITOR))

    # when
    response = client.get(f"/api/customers/{customer.pk}/messages")
    limited = client.get(f"/api/customers/{customer.pk}/messages?limit=1")

    # then
    assert [m["id"] for m in response.json()] == [second.pk, first.pk]
    assert [m["id"] for m in limited.json()] == [second.pk]
    assert client.get("/api/customers/999999/messages").status_code == 404


def test_the_schema_lists_the_endpoints_and_enums(db: None) -> None:
    # when
    spec = Client().get("/api/openapi.json").json()

    # then
    assert {
        "/api/outbox/messages",
        "/api/outbox/messages/{message_id}",
        "/api/outbox/messages/{message_id}/cancel",
        "/api/customers/{customer_id}/messages",
    } <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["MessageStatus"]["enum"] == list(Message.Status.values)
    assert schemas["MessageChannel"]["enum"] == ["sms", "email", "wechat", "phone", "app"]


def test_the_api_enums_match_the_model() -> None:
    assert [s.value for s in api.MessageStatus] == list(Message.Status.values)
    assert sorted(c.value for c in api.MessageChannel) == sorted(
        ["sms", "email", "wechat", "phone", "app"]
    )
