"""Every message shows on the customer's file (the activity timeline), for those who may see
messages."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.customer.selectors import customer_profile, customer_timeline
from patron.outbox import services

pytestmark = pytest.mark.django_db


def _messages_on_file() -> int:
    customer = make_customer(name="王小明", email="xiaoming@example.com")
    services.message_queue(
        customer_id=customer.pk,
        template="certification.approved",
        purpose="service",
        context={"level": "金牌"},
        key="a",
    )
    services.outbox_deliver()
    services.message_queue(
        customer_id=customer.pk,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "双十一", "text": "x"},
        key="b",
    )
    return customer.pk


def test_messages_appear_on_the_timeline() -> None:
    # given
    customer_id = _messages_on_file()
    agent = make_user(Role.SERVICE_AGENT)

    # when
    timeline = customer_timeline(user=agent, customer_id=customer_id)

    # then
    messages = [(e.kind, e.reference, e.labels, e.summary) for e in timeline if e.kind == "message"]
    assert messages == [
        (
            "message",
            "marketing.announcement",
            ("邮件 E-mail", "未发送 Suppressed"),
            "双十一 · no marketing consent for email on record",
        ),
        ("message", "certification.approved", ("邮件 E-mail", "已发送 Sent"), "认证已通过"),
    ]
    profile = customer_profile(user=agent, customer_id=customer_id)
    assert [e.reference for e in profile.timeline if e.kind == "message"] == [
        "marketing.announcement",
        "certification.approved",
    ]


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (Role.ADMINISTRATOR, True),
        (Role.OPERATIONS_MANAGER, True),
        (Role.SERVICE_AGENT, True),
        (Role.MARKETER, True),
        (Role.AUDITOR, True),
        (Role.RISK_ANALYST, False),
        (Role.ANALYST, False),
    ],
)
def test_the_timeline_shows_messages_only_to_those_who_may_see_them(
    role: Role, shown: bool
) -> None:
    # given
    customer_id = _messages_on_file()
    client = Client()
    client.force_login(make_user(role))

    # when
    response = client.get(f"/api/customers/{customer_id}/timeline")

    # then
    assert response.status_code == 200
    kinds = [entry["kind"] for entry in response.json()]
    assert kinds.count("message") == (2 if shown else 0)
