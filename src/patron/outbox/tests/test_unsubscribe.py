"""The unsubscribe link end to end: from the e-mail a customer got, through the public page,
to the consent row and the audit log."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from patron.audit.models import AuditEvent
from patron.conftest import at, make_customer
from patron.customer.models import Consent, Customer
from patron.errors import NotFound
from patron.outbox import links, services
from patron.outbox.models import Message
from patron.outbox.tests.conftest import consent

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer() -> Customer:
    customer = make_customer(name="王小明", email="xiaoming@example.com")
    consent(customer, purpose="marketing", channel="email", granted=True, at=at("2026-01-01 00:00"))
    return customer


def _link_from_mail(customer: Customer, mailoutbox: list[Any], key: str = "campaign:1") -> str:
    services.message_queue(
        customer_id=customer.pk,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "双十一", "text": "全场八折"},
        key=key,
    )
    services.outbox_deliver()
    found = re.search(r"https://patron\.example(/u/[^/\s]+/)", mailoutbox[-1].body)
    assert found is not None
    return found.group(1)


def _latest(customer: Customer) -> Consent:
    return Consent.objects.filter(customer=customer, purpose="marketing", channel="email").latest(
        "recorded_at", "id"
    )


def test_the_link_in_the_mail_withdraws_consent(customer: Customer, mailoutbox: list[Any]) -> None:
    # given
    path = _link_from_mail(customer, mailoutbox)
    client = Client()

    # when: the customer opens the link
    page = client.get(path)

    # then: the page says what will be withdrawn, nothing is recorded yet
    assert page.status_code == 200
    text = page.content.decode()
    assert "王**<" in text and "小明" not in text and "xiaoming" not in text
    assert 'data-testid="unsubscribe-confirm"' in text
    assert "不再通过邮件接收营销消息？" in text
    assert Consent.objects.filter(customer=customer).count() == 1

    # when: they press the button
    done = client.post(path)

    # then
    assert done.status_code == 200
    assert "已退订：您将不再通过邮件收到营销消息。" in done.content.decode()
    latest = _latest(customer)
    assert (latest.is_granted, latest.source, latest.evidence) == (
        False,
        "patron",
        "unsubscribe link",
    )
    assert latest.external_id.startswith("unsubscribe-")
    event = AuditEvent.objects.get(entity_type="customer.consent")
    assert (event.entity_id, event.customer_id, event.actor_label, event.actor_id) == (
        str(latest.pk),
        customer.pk,
        "customer (unsubscribe link)",
        None,
    )
    assert event.summary == "marketing consent for email withdrawn through the unsubscribe link"

    # and: the next campaign is suppressed
    later = services.message_queue(
        customer_id=customer.pk,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "t", "text": "x"},
        channel="email",
        key="campaign:2",
    )
    assert later.status == Message.Status.SUPPRESSED


def test_pressing_twice_records_one_withdrawal(customer: Customer, mailoutbox: list[Any]) -> None:
    # given
    path = _link_from_mail(customer, mailoutbox)
    client = Client()
    client.post(path)

    # when
    again = client.post(path)
    page = client.get(path)

    # then
    assert again.status_code == 200
    assert Consent.objects.filter(customer=customer, is_granted=False).count() == 1
    assert AuditEvent.objects.filter(entity_type="customer.consent").count() == 1
    assert 'data-testid="unsubscribe-already"' in page.content.decode()


def test_mail_programs_one_click_post_works_without_a_csrf_token(
    customer: Customer, mailoutbox: list[Any]
) -> None:
    # given
    path = _link_from_mail(customer, mailoutbox)
    client = Client(enforce_csrf_checks=True)

    # when: RFC 8058 one-click unsubscribe
    response = client.post(path, {"List-Unsubscribe": "One-Click"})

    # then
    assert response.status_code == 200
    assert _latest(customer).is_granted is False


def _tampered(path: str) -> str:
    token = path.split("/")[2]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return f"/u/{flipped}/"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_is_refused_and_nothing_changes(
    customer: Customer, mailoutbox: list[Any], method: str
) -> None:
    # given
    path = _tampered(_link_from_mail(customer, mailoutbox))

    # when
    response = getattr(Client(), method)(path)

    # then
    assert response.status_code == 404
    text = response.content.decode()
    assert 'data-testid="unsubscribe-invalid"' in text
    assert "此退订链接无效：它可能不完整或已被修改。" in text
    assert _latest(customer).is_granted is True
    assert not AuditEvent.objects.filter(entity_type="customer.consent").exists()


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a:b:c",
        # signed by this site, but for something else
        "__other__",
    ],
)
def test_other_bad_tokens_are_a_404_page(db: None, token: str) -> None:
    # given
    if token == "__other__":
        from django.core import signing

        token = signing.dumps({"c": 1, "p": "marketing", "ch": "email"}, salt="something.else")

    # when
    response = Client().get(f"/u/{token}/", headers={"Accept-Language": "en"})

    # then
    assert response.status_code == 404
    assert links.INVALID in response.content.decode()


def test_a_token_for_a_customer_no_longer_on_file_is_refused(db: None) -> None:
    # given
    token = links.unsubscribe_token(customer_id=987654, purpose="marketing", channel="sms")

    # when / then
    assert Client().get(f"/u/{token}/").status_code == 404
    with pytest.raises(NotFound):
        services.consent_withdraw_by_link(token)


def test_a_signed_token_with_an_unknown_purpose_is_refused(db: None) -> None:
    from django.core import signing

    token = signing.dumps({"c": 1, "p": "spam", "ch": "email"}, salt=links.SALT)
    with pytest.raises(NotFound, match="This unsubscribe link is not valid"):
        links.unsubscribe_read(token)


def test_the_token_round_trips(db: None) -> None:
    token = links.unsubscribe_token(customer_id=12, purpose="service", channel="wechat")
    assert links.unsubscribe_read(token) == links.UnsubscribeRequest(12, "service", "wechat")
    assert links.unsubscribe_url(customer_id=12, purpose="service", channel="wechat").startswith(
        "https://patron.example/u/"
    )
    assert urlsplit(links.public_url("/u/x/")).netloc == "patron.example"


def test_withdrawing_service_messages_by_link(db: None) -> None:
    # given: nothing on record (service messages are allowed by default)
    customer = make_customer(phone="13800000000")
    token = links.unsubscribe_token(customer_id=customer.pk, purpose="service", channel="sms")

    # when
    row = services.consent_withdraw_by_link(token)

    # then
    assert (row.purpose, row.channel, row.is_granted) == ("service", "sms", False)
    assert row.recorded_at <= timezone.now()
