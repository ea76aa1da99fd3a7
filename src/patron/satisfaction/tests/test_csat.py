"""CSAT after a solved ticket: the desk's signal asks once, the customer answers once through
the link while it is valid, the answer lands on the ticket and in the audit log, and a low
score needs a follow-up until a plan answers it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import signing

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import at, make_customer, make_user
from patron.customer.models import Consent, Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.models import Message
from patron.satisfaction import selectors, services, tokens
from patron.satisfaction.models import CsatRequest
from patron.satisfaction.tests.conftest import make_ticket
from patron.service.models import Ticket
from patron.service.signals import ticket_solved

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="李雷", email="li.lei@example.com")


@pytest.fixture
def ticket(customer: Customer) -> Ticket:
    return make_ticket(
        customer,
        subject="包裹还没到",
        opened_at=at("2026-11-18 02:00"),
        solved_at=at("2026-11-18 06:00"),
    )


def _solved(ticket: Ticket) -> None:
    ticket_solved.send(sender=Ticket, ticket_id=ticket.pk)


def test_a_solved_ticket_asks_the_customer_once_however_often_it_is_solved(ticket: Ticket) -> None:
    # when: solved, reopened and solved again (the desk sends the signal each time)
    _solved(ticket)
    _solved(ticket)
    # then
    request = CsatRequest.objects.get()
    assert (request.ticket_id, request.customer_id, request.is_suppressed) == (
        ticket.pk,
        ticket.customer_id,
        False,
    )
    message = Message.objects.get()
    assert (message.template, message.purpose, message.status, message.key) == (
        "service.csat",
        "service",
        "queued",
        f"satisfaction.csat:{ticket.pk}",
    )
    assert f"/csat/{request.token}/" in message.body
    assert "包裹还没到" in message.body
    assert tokens.csat_ticket(request.token) == ticket.pk


def test_nothing_is_asked_for_a_ticket_that_is_not_solved_or_already_rated(
    customer: Customer,
) -> None:
    # given
    still_open = make_ticket(customer, opened_at=at("2026-11-18 02:00"), status=Ticket.Status.OPEN)
    rated = make_ticket(customer, opened_at=at("2026-11-18 02:00"), satisfaction=4)
    # when
    found = [
        services.csat_request_for_ticket(ticket_id=t) for t in (still_open.pk, rated.pk, 10**9)
    ]
    # then
    assert found == [None, None, None]
    assert not CsatRequest.objects.exists() and not Message.objects.exists()


def test_a_customer_who_refused_service_messages_is_not_written_to(
    customer: Customer, ticket: Ticket
) -> None:
    # given
    Consent.objects.create(
        source="patron",
        external_id="c-1",
        customer=customer,
        purpose="service",
        channel="email",
        is_granted=False,
        recorded_at=at("2026-01-01 00:00"),
    )
    # when
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    # then
    assert request is not None and request.is_suppressed is True
    assert Message.objects.get().status == "suppressed"


def test_the_answer_is_recorded_once_on_the_ticket_and_in_the_audit_log(ticket: Ticket) -> None:
    # given
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    # when
    services.csat_answer(token=request.token, score="2", comment="  等了三天  ")
    # then
    request.refresh_from_db()
    ticket.refresh_from_db()
    assert (request.score, request.comment, request.answer_channel) == (2, "等了三天", "page")
    assert request.answered_at is not None
    assert ticket.satisfaction == 2
    audit = AuditEvent.objects.get(entity_type="satisfaction.csat")
    assert (audit.actor_id, audit.actor_label, audit.customer_id) == (
        None,
        "customer (signed link)",
        ticket.customer_id,
    )
    assert audit.summary == f"CSAT 2/5 for ticket {ticket.pk} (needs follow-up)"
    assert audit.changes == {"score": 2, "channel": "page", "has_comment": True}
    # and a second answer is refused, nothing changed
    with pytest.raises(Conflict):
        services.csat_answer(token=request.token, score=5)
    ticket.refresh_from_db()
    assert ticket.satisfaction == 2
    assert AuditEvent.objects.filter(entity_type="satisfaction.csat").count() == 1


@pytest.mark.parametrize(
    ("score", "message"),
    [
        (0, "score: a whole number 1–5, got 0"),
        ("six", "score: a whole number 1–5, got 'six'"),
        (True, "score: a whole number 1–5"),
    ],
)
def test_a_score_outside_one_to_five_is_refused_naming_the_field(
    ticket: Ticket, score: Any, message: str
) -> None:
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    with pytest.raises(ValidationFailed) as refused:
        services.csat_answer(token=request.token, score=score)
    assert refused.value.message == message
    assert refused.value.details == {"field": "score"}
    request.refresh_from_db()
    assert request.answered_at is None


def test_an_expired_link_is_refused(
    ticket: Ticket, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # given: the question went out eight days ago; links last seven
    settings.PATRON_CSAT_LINK_DAYS = 7
    eight_days_ago = int(time.time()) - 8 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(
            signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(eight_days_ago)
        )
        request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    # when
    with pytest.raises(PermissionDenied) as refused:
        services.csat_answer(token=request.token, score=5)
    # then
    assert refused.value.message.startswith("this link has expired")
    ticket.refresh_from_db()
    assert ticket.satisfaction is None


def test_a_forged_or_foreign_token_names_nothing(
    ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    survey_link = tokens.survey_token(1, ticket.customer_id)  # signed, but for surveys
    with monkeypatch.context() as patch:  # signed for this ticket, but not the link sent
        minute_ago = int(time.time()) - 60
        patch.setattr(
            signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(minute_ago)
        )
        reissued = tokens.csat_token(ticket.pk)
    # when / then
    for token in (request.token + "x", "not-a-token", survey_link, reissued):
        with pytest.raises(NotFound):
            services.csat_answer(token=token, score=5)
    request.refresh_from_db()
    assert request.answered_at is None


def test_a_low_answer_needs_a_follow_up_until_a_manager_links_it_to_a_plan(ticket: Ticket) -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    services.csat_answer(token=request.token, score=1)
    listed = selectors.csat_list(user=manager, status="follow_up")
    assert [(row.id, row.needs_follow_up) for row in listed.items] == [(request.pk, True)]
    assert (
        selectors.csat_summary(user=manager, start=at("2026-11-01 00:00").date()).needs_follow_up
        == 1
    )
    # when
    plan = services.plan_create(
        user=manager,
        data=services.PlanData(
            title="物流超时",
            problem="包裹延误",
            owner_id=manager.pk,
            deadline=at("2026-12-31 00:00").date(),
        ),
        links=[services.LinkTarget("csat", request.pk)],
    )
    # then
    assert selectors.csat_list(user=manager, status="follow_up").count == 0
    row = selectors.csat_list(user=manager).items[0]
    assert (row.needs_follow_up, row.plan_ids) == (False, (plan.pk,))


def test_the_csat_list_needs_the_view_permission(ticket: Ticket) -> None:
    with pytest.raises(PermissionDenied):
        selectors.csat_list(user=make_user(Role.MARKETER))
