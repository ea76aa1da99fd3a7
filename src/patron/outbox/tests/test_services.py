"""Queueing, delivering and cancelling messages, through the services and real adapters
(Django's in-memory mail outbox, the JSON-lines file); only an SMS gateway is faked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import at, make_customer, make_user
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox import services
from patron.outbox.models import Message
from patron.outbox.tests.conftest import consent
from patron.outbox.tests.fakes import PATH as SCRIPTED
from patron.outbox.tests.fakes import ScriptedAdapter

pytestmark = pytest.mark.django_db

APPROVED = {"level": "金牌"}


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="王小明", email="xiaoming@example.com", phone="13812341234")


@pytest.fixture
def scripted_sms(settings: Any) -> None:
    settings.PATRON_OUTBOX_ADAPTERS = {**settings.PATRON_OUTBOX_ADAPTERS, "sms": SCRIPTED}


def _queue(customer: Customer, **overrides: Any) -> Message:
    values: dict[str, Any] = {
        "customer_id": customer.pk,
        "template": "certification.approved",
        "purpose": "service",
        "context": APPROVED,
        "key": "certification.approved:1",
        "source": "certification.application:1",
    }
    values.update(overrides)
    return services.message_queue(**values)


# ---------------------------------------------------------------------- queueing


def test_a_service_message_is_queued_rendered_for_the_customer(customer: Customer) -> None:
    # when
    message = _queue(customer)

    # then
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.channel == "email"
    assert message.recipient == "xiaoming@example.com"
    assert message.language == "zh-hans"
    assert message.subject == "认证已通过"
    assert message.body == "王小明，您好：\n\n恭喜，您的认证申请已通过，认证等级：金牌。\n"
    assert message.source == "certification.application:1"
    assert message.attempts == 0
    assert message.next_attempt_at == message.created_at
    assert message.reason == ""


def test_subject_body_and_address_are_encrypted_at_rest(customer: Customer) -> None:
    # given
    from django.db import connection

    message = _queue(customer)

    # when
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT subject, body, recipient FROM {Message._meta.db_table} WHERE id = %s",
            [message.pk],
        )
        stored = cursor.fetchone()

    # then
    assert all(value.startswith("v1:") for value in stored)
    assert "王小明" not in stored[1] and "xiaoming" not in stored[2]


def test_queueing_the_same_key_twice_returns_the_first_message(customer: Customer) -> None:
    # given
    first = _queue(customer)

    # when
    again = _queue(customer, context={"level": "银牌"})

    # then
    assert again.pk == first.pk
    assert Message.objects.count() == 1
    assert Message.objects.get().body == first.body


def test_a_key_used_for_another_customer_is_a_conflict(customer: Customer) -> None:
    # given
    first = _queue(customer)
    other = make_customer(email="other@example.com")

    # when
    with pytest.raises(Conflict) as error:
        _queue(other)

    # then
    assert error.value.message == (
        f"message key 'certification.approved:1' was already used for message {first.pk} "
        f"(customer {customer.pk}, template certification.approved): "
        "a key names one message to one customer"
    )
    assert Message.objects.count() == 1


def test_a_missing_context_key_is_refused_and_nothing_is_queued(customer: Customer) -> None:
    # when
    with pytest.raises(ValidationFailed) as error:
        _queue(customer, template="certification.expiring", context={"level": "金牌"})

    # then
    assert error.value.message == (
        "message template 'certification.expiring' needs context key 'expires_on' "
        "(also missing: 'link')"
    )
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"template": "nope"}, "message template 'nope' is unknown; known: "),
        ({"purpose": "spam"}, "message purpose 'spam' is unknown"),
        ({"channel": "fax"}, "message channel 'fax' is unknown"),
        ({"key": "  "}, "message key: required"),
        ({"key": "k" * 201}, "message key: longer than 200 characters"),
    ],
)
def test_invalid_requests_are_refused(
    customer: Customer, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationFailed) as error:
        _queue(customer, **overrides)
    assert error.value.message.startswith(message)
    assert Message.objects.count() == 0


def test_an_unknown_customer_is_not_found(db: None) -> None:
    with pytest.raises(NotFound, match="customer 999999 not found"):
        services.message_queue(
            customer_id=999999,
            template="loyalty.tier_up",
            purpose="service",
            context={"tier": "金"},
            key="k",
        )


def test_the_site_language_is_used_when_the_customer_has_none(
    customer: Customer, settings: Any
) -> None:
    # given
    settings.LANGUAGE_CODE = "en"

    # when
    message = _queue(customer)

    # then
    assert message.language == "en"
    assert message.subject == "Your certification was approved"


# ---------------------------------------------------------------------- consent


def test_marketing_without_consent_is_suppressed(customer: Customer, mailoutbox: list[Any]) -> None:
    # when
    message = _queue(
        customer,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "双十一", "text": "全场八折"},
        key="campaign:1:customer",
    )

    # then
    assert message.status == Message.Status.SUPPRESSED
    assert message.reason == "no marketing consent for email on record"
    assert message.next_attempt_at is None
    result = services.outbox_deliver()
    assert result.claimed == 0
    assert mailoutbox == []


def test_marketing_with_consent_is_sent_with_an_unsubscribe_link(
    customer: Customer, mailoutbox: list[Any]
) -> None:
    # given
    consent(customer, purpose="marketing", channel="email", granted=True, at=at("2026-01-01 00:00"))
    message = _queue(
        customer,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "双十一", "text": "全场八折"},
        key="campaign:1:customer",
    )

    # when
    result = services.outbox_deliver()

    # then
    assert result == services.DeliveryResult(claimed=1, sent=1)
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.subject == "双十一"
    assert email.to == ["xiaoming@example.com"]
    assert email.body.startswith(
        "王小明，您好：\n\n全场八折\n\n退订请点击：https://patron.example/u/"
    )
    assert email.extra_headers["List-Unsubscribe"].startswith("<https://patron.example/u/")
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_latest_consent_row_decides(customer: Customer) -> None:
    # given: granted, then withdrawn
    consent(customer, purpose="marketing", channel="email", granted=True, at=at("2026-01-01 00:00"))
    consent(
        customer, purpose="marketing", channel="email", granted=False, at=at("2026-02-01 00:00")
    )

    # when
    message = _queue(
        customer,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "t", "text": "x"},
        channel="email",
        key="campaign:2",
    )

    # then
    assert message.status == Message.Status.SUPPRESSED
    assert message.reason == "the customer withdrew marketing consent for email"


def test_a_service_message_refused_explicitly_is_suppressed(customer: Customer) -> None:
    # given
    consent(customer, purpose="service", channel="email", granted=False, at=at("2026-01-01 00:00"))

    # when
    message = _queue(customer, channel="email")

    # then
    assert message.status == Message.Status.SUPPRESSED
    assert message.reason == "the customer refused service messages by email"
    assert message.body.startswith("王小明，您好：")  # recorded as it would have been sent


def test_a_service_message_refused_by_email_goes_by_sms_when_no_channel_is_named(
    customer: Customer,
) -> None:
    # given
    consent(customer, purpose="service", channel="email", granted=False, at=at("2026-01-01 00:00"))

    # when
    message = _queue(customer)

    # then
    assert (message.status, message.channel, message.recipient) == (
        Message.Status.QUEUED,
        "sms",
        "13812341234",
    )


def test_a_customer_without_an_address_for_the_channel_is_suppressed(db: None) -> None:
    # given
    customer = make_customer(name="李华", phone="13900001111")

    # when
    message = _queue(customer, channel="email")

    # then
    assert message.status == Message.Status.SUPPRESSED
    assert message.reason == "the customer has no address for email"
    assert message.recipient == ""


def test_a_customer_without_any_address_is_suppressed(db: None) -> None:
    # given
    customer = make_customer(name="李华")

    # when
    message = _queue(customer)

    # then
    assert (message.status, message.channel, message.reason) == (
        Message.Status.SUPPRESSED,
        "email",
        "the customer has neither an e-mail address nor a phone",
    )


def test_an_erased_customer_is_not_written_to(customer: Customer) -> None:
    # given
    Customer.objects.filter(pk=customer.pk).update(status=Customer.Status.ERASED)

    # when
    message = _queue(customer)

    # then
    assert message.status == Message.Status.SUPPRESSED
    assert message.reason == "the customer's data was erased"


def test_consent_withdrawn_after_queueing_suppresses_at_delivery(
    customer: Customer, mailoutbox: list[Any]
) -> None:
    # given
    consent(customer, purpose="marketing", channel="email", granted=True, at=at("2026-01-01 00:00"))
    message = _queue(
        customer,
        template="marketing.announcement",
        purpose="marketing",
        context={"title": "t", "text": "x"},
        key="campaign:3",
    )
    consent(customer, purpose="marketing", channel="email", granted=False, at=timezone.now())

    # when
    result = services.outbox_deliver()

    # then
    assert result == services.DeliveryResult(claimed=1, suppressed=1)
    message.refresh_from_db()
    assert message.status == Message.Status.SUPPRESSED
    assert message.reason == "at delivery: the customer withdrew marketing consent for email"
    assert mailoutbox == []


# ---------------------------------------------------------------------- delivery


def test_an_email_is_delivered_through_django_mail(
    customer: Customer, mailoutbox: list[Any]
) -> None:
    # given
    message = _queue(customer)
    now = timezone.now()

    # when
    result = services.outbox_deliver(now=now)

    # then
    assert result == services.DeliveryResult(claimed=1, sent=1)
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert (email.subject, email.to) == ("认证已通过", ["xiaoming@example.com"])
    assert email.body == "王小明，您好：\n\n恭喜，您的认证申请已通过，认证等级：金牌。\n"
    assert email.from_email == "Patron <noreply@localhost>"
    assert "List-Unsubscribe" not in email.extra_headers  # service messages have none
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.sent_at == now
    assert message.attempts == 1
    assert message.next_attempt_at is None
    assert message.provider_message_id == email.extra_headers["Message-ID"]


def test_delivering_twice_sends_once(customer: Customer, mailoutbox: list[Any]) -> None:
    # given
    _queue(customer)
    services.outbox_deliver()

    # when
    again = services.outbox_deliver()

    # then
    assert again == services.DeliveryResult()
    assert len(mailoutbox) == 1


def test_sms_goes_to_the_jsonl_file_by_default(customer: Customer, outbox_settings: Path) -> None:
    # given
    message = _queue(customer, channel="sms")

    # when
    result = services.outbox_deliver()

    # then
    assert result.sent == 1
    lines = (outbox_settings / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    written = json.loads(lines[0])
    assert {k: written[k] for k in ("message_id", "key", "channel", "recipient", "subject")} == {
        "message_id": message.pk,
        "key": "certification.approved:1",
        "channel": "sms",
        "recipient": "13812341234",
        "subject": "认证已通过",
    }
    message.refresh_from_db()
    assert message.provider_message_id == f"file:sms:{message.pk}"


def test_only_due_messages_are_sent_and_the_limit_holds(
    customer: Customer, mailoutbox: list[Any]
) -> None:
    # given
    for number in range(5):
        _queue(customer, key=f"k{number}")
    now = timezone.now()

    # when
    first = services.outbox_deliver(limit=3, now=now)
    second = services.outbox_deliver(limit=3, now=now)

    # then
    assert (first.sent, second.sent) == (3, 2)
    assert len(mailoutbox) == 5


def test_a_message_not_yet_due_waits(customer: Customer) -> None:
    # given
    message = _queue(customer)

    # when
    result = services.outbox_deliver(now=message.created_at - timedelta(seconds=1))

    # then
    assert result == services.DeliveryResult()


@pytest.mark.usefixtures("scripted_sms")
def test_transient_errors_back_off_then_the_message_fails(customer: Customer) -> None:
    # given: the gateway is busy every time
    ScriptedAdapter.reset("transient")
    message = _queue(customer, channel="sms")
    now = timezone.now()
    waits: list[timedelta] = []

    # when: a run at every due time, and one a second too early in between
    for _ in range(6):
        assert services.outbox_deliver(now=now - timedelta(seconds=2)).claimed == 0
        services.outbox_deliver(now=now)
        message.refresh_from_db()
        if message.next_attempt_at is not None:
            waits.append(message.next_attempt_at - now)
            now = message.next_attempt_at + timedelta(seconds=1)

    # then
    assert waits == [timedelta(minutes=m) for m in (1, 5, 25, 120, 600)]
    assert message.status == Message.Status.FAILED
    assert message.attempts == 6
    assert message.reason == "gave up after 6 attempts: gateway busy (call 6)"
    assert message.last_error == "gateway busy (call 6)"
    assert len(ScriptedAdapter.calls) == 6
    assert services.outbox_deliver(now=now + timedelta(days=30)).claimed == 0


@pytest.mark.usefixtures("scripted_sms")
def test_a_retry_that_succeeds_is_sent(customer: Customer) -> None:
    # given
    ScriptedAdapter.reset("transient", "ok")
    message = _queue(customer, channel="sms")
    now = timezone.now()

    # when
    first = services.outbox_deliver(now=now)
    second = services.outbox_deliver(now=now + timedelta(minutes=1))

    # then
    assert first == services.DeliveryResult(claimed=1, retried=1)
    assert second == services.DeliveryResult(claimed=1, sent=1)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_message_id) == ("sent", 2, "gw-2")
    assert message.last_error == "gateway busy (call 1)"


@pytest.mark.usefixtures("scripted_sms")
def test_a_permanent_error_fails_at_once(customer: Customer) -> None:
    # given
    ScriptedAdapter.reset("permanent")
    message = _queue(customer, channel="sms")

    # when
    result = services.outbox_deliver()

    # then
    assert result == services.DeliveryResult(claimed=1, failed=1)
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.reason == "gateway: number does not exist"
    assert message.attempts == 1
    assert message.next_attempt_at is None


@pytest.mark.usefixtures("scripted_sms")
def test_an_adapter_bug_is_retried_not_left_sending(customer: Customer) -> None:
    # given
    ScriptedAdapter.reset("crash")
    message = _queue(customer, channel="sms")

    # when
    result = services.outbox_deliver()

    # then
    assert result == services.DeliveryResult(claimed=1, retried=1)
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.last_error == "RuntimeError: adapter bug"


def test_an_unknown_adapter_setting_is_retried_with_the_error(
    customer: Customer, settings: Any
) -> None:
    # given
    settings.PATRON_OUTBOX_ADAPTERS = {"sms": "pigeon"}
    message = _queue(customer, channel="sms")

    # when
    services.outbox_deliver()

    # then
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.last_error.startswith("PATRON_OUTBOX_ADAPTERS['sms'] = 'pigeon': use one of")


@pytest.mark.usefixtures("scripted_sms")
def test_a_message_left_sending_by_a_stopped_run_is_taken_back(customer: Customer) -> None:
    # given: a run claimed it and died
    message = _queue(customer, channel="sms")
    claimed_at = timezone.now() - timedelta(minutes=16)
    Message.objects.filter(pk=message.pk).update(status="sending", claimed_at=claimed_at)

    # when
    result = services.outbox_deliver()

    # then: taken back, counted as an attempt, due again after the first backoff
    assert result == services.DeliveryResult(recovered=1)
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.attempts == 1
    assert message.claimed_at is None
    assert message.last_error.startswith("the delivery run stopped while sending")
    later = services.outbox_deliver(now=message.next_attempt_at)
    assert later == services.DeliveryResult(claimed=1, sent=1)


def test_a_message_another_run_is_sending_is_left_alone(customer: Customer) -> None:
    # given: claimed a minute ago by a run still at work
    message = _queue(customer, channel="sms")
    Message.objects.filter(pk=message.pk).update(
        status="sending", claimed_at=timezone.now() - timedelta(minutes=1)
    )

    # when
    result = services.outbox_deliver()

    # then
    assert result == services.DeliveryResult()
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING


def test_a_limit_below_one_is_refused(db: None) -> None:
    with pytest.raises(ValidationFailed, match="limit must be 1 or more, got 0"):
        services.outbox_deliver(limit=0)


# ---------------------------------------------------------------------- cancelling


def test_a_marketer_cancels_a_queued_message(customer: Customer) -> None:
    # given
    marketer = make_user(Role.MARKETER, username="marketer-zhao")
    message = _queue(customer)

    # when
    services.message_cancel(user=marketer, message_id=message.pk, reason="  wrong level  ")

    # then
    message.refresh_from_db()
    assert (message.status, message.reason, message.cancelled_by) == (
        "cancelled",
        "wrong level",
        marketer,
    )
    assert message.next_attempt_at is None
    event = AuditEvent.objects.get(entity_type="outbox.message")
    assert (event.entity_id, event.customer_id, event.actor_label) == (
        str(message.pk),
        customer.pk,
        "marketer-zhao",
    )
    assert event.summary == "message certification.approved cancelled (queued -> cancelled)"
    assert event.changes == {"status": "cancelled", "reason": "wrong level"}
    assert services.outbox_deliver() == services.DeliveryResult()


def test_a_sent_message_cannot_be_cancelled(customer: Customer) -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    message = _queue(customer)
    services.outbox_deliver()

    # when
    with pytest.raises(Conflict) as error:
        services.message_cancel(user=manager, message_id=message.pk, reason="too late")

    # then
    assert error.value.message == (
        f"message {message.pk}: message is sent: cannot cancel; allowed: none (final)"
    )
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert not AuditEvent.objects.filter(entity_type="outbox.message").exists()


def test_cancelling_needs_the_permission_and_a_reason(customer: Customer) -> None:
    # given
    message = _queue(customer)

    # when / then
    with pytest.raises(PermissionDenied):
        services.message_cancel(
            user=make_user(Role.SERVICE_AGENT), message_id=message.pk, reason="no"
        )
    with pytest.raises(ValidationFailed, match="a reason is required"):
        services.message_cancel(user=make_user(Role.MARKETER), message_id=message.pk, reason=" ")
    with pytest.raises(NotFound, match="message 999999 not found"):
        services.message_cancel(user=make_user(Role.MARKETER), message_id=999999, reason="x")
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
