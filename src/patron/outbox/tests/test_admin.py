"""The read-only admin of messages."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.outbox import services
from patron.outbox.models import Message

pytestmark = pytest.mark.django_db


def test_messages_are_listed_and_shown_read_only_with_the_address_masked() -> None:
    # given
    customer = make_customer(name="王小明", email="xiaoming@example.com")
    message = services.message_queue(
        customer_id=customer.pk,
        template="loyalty.tier_up",
        purpose="service",
        context={"tier": "黄金"},
        key="k",
    )
    client = Client()
    client.force_login(make_user(Role.ADMINISTRATOR))

    # when
    listing = client.get("/admin/outbox/message/")
    page = client.get(f"/admin/outbox/message/{message.pk}/change/")
    post = client.post(f"/admin/outbox/message/{message.pk}/change/", {"status": "sent"})

    # then
    assert listing.status_code == 200
    assert page.status_code == 200
    text = page.content.decode()
    assert "x***@example.com" in text and "xiaoming@example.com" not in text
    assert post.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
