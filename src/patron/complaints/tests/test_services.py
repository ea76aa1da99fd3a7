"""The complaint workflow through its services: recording from the desk (idempotent), each
step with its event and audit entry, the re-work rounds, the customer's link (once), closing
solves the ticket, the durations per stage — and refusals that change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from patron.account.models import User
from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.complaints import selectors, services, tokens
from patron.complaints.models import Complaint, ComplaintEvent
from patron.complaints.tests.conftest import at_hour, make_ticket, walk
from patron.conftest import make_user
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.outbox.models import Message
from patron.service.models import Team, Ticket
from patron.service.signals import ticket_opened

pytestmark = pytest.mark.django_db


def _events(complaint: Complaint) -> list[tuple[str, str, str, int]]:
    return list(
        ComplaintEvent.objects.filter(complaint=complaint)
        .order_by("at", "id")
        .values_list("action", "from_stage", "to_stage", "round")
    )


# ---------------------------------------------------------------------- recording


def test_a_complaint_ticket_gets_its_complaint_once_however_often_it_is_told(
    ticket: Ticket,
) -> None:
    # when
    first = services.complaint_record_from_ticket(ticket_id=ticket.pk)
    second = services.complaint_record_from_ticket(ticket_id=ticket.pk)
    ticket_opened.send(sender=Ticket, ticket_id=ticket.pk)
    # then
    assert first is not None and second is not None
    assert first.pk == second.pk
    assert Complaint.objects.filter(ticket=ticket).count() == 1
    assert (first.stage, first.customer_id, first.severity, first.matter) == (
        "recorded",
        ticket.customer_id,
        "major",
        ticket.subject,
    )
    assert first.recorded_at == ticket.opened_at
    assert _events(first) == [("record", "", "recorded", 1)]
    assert AuditEvent.objects.filter(entity_type="complaints.complaint").count() == 1


def test_the_signal_records_a_complaint_and_ignores_other_tickets(customer: Customer) -> None:
    # given
    complaint_ticket = make_ticket(customer)
    question = make_ticket(customer, is_complaint=False, subject="请问尺码怎么选")
    # when
    ticket_opened.send(sender=Ticket, ticket_id=complaint_ticket.pk)
    ticket_opened.send(sender=Ticket, ticket_id=question.pk)
    ticket_opened.send(sender=Ticket, ticket_id=10**9)  # gone: nothing, no error
    # then
    assert list(Complaint.objects.values_list("ticket_id", flat=True)) == [complaint_ticket.pk]


def test_reconcile_records_the_complaints_a_missed_signal_left_out(customer: Customer) -> None:
    # given: two desk complaint tickets and an imported one, no signal sent
    desk = [make_ticket(customer), make_ticket(customer)]
    make_ticket(customer, source="shop")
    # when
    first = services.complaints_reconcile()
    again = services.complaints_reconcile()
    # then
    assert (first, again) == (2, 0)
    assert sorted(Complaint.objects.values_list("ticket_id", flat=True)) == sorted(
        t.pk for t in desk
    )


def test_staff_file_a_complaint_through_the_desk(
    agent: User, customer: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    # when: the desk's ticket_opened fires after the commit, and finds the complaint there
    with django_capture_on_commit_callbacks(execute=True):
        complaint = services.complaint_file(
            user=agent,
            customer_id=customer.pk,
            channel="phone",
            subject="投诉：退款拖了两周",
            matter="退货两周了还没有退款，客服也不回复。",
            severity="critical",
        )
    # then
    ticket = Ticket.objects.get(pk=complaint.ticket_id)
    assert (ticket.is_complaint, ticket.customer_id, ticket.subject) == (
        True,
        customer.pk,
        "投诉：退款拖了两周",
    )
    assert Complaint.objects.filter(ticket=ticket).count() == 1
    assert (complaint.stage, complaint.severity, complaint.matter, complaint.created_by_id) == (
        "recorded",
        "critical",
        "退货两周了还没有退款，客服也不回复。",
        agent.pk,
    )


def test_filing_waits_for_the_desk_when_it_cannot_open_tickets(
    agent: User, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setattr(services, "desk_service", lambda name: None)
    # when
    with pytest.raises(Conflict) as refused:
        services.complaint_file(
            user=agent, customer_id=customer.pk, channel="phone", subject="投诉", matter="坏了"
        )
    # then
    assert refused.value.message == "the service desk cannot open tickets yet: try again later"
    assert Complaint.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"subject": "  "}, "subject: required, and must not be blank"),
        ({"matter": ""}, "matter: required, and must not be blank"),
        ({"severity": "huge"}, "severity: one of minor, major, critical; got 'huge'"),
        (
            {"channel": "fax"},
            "channel: one of web, chat, wechat, phone, app, email, social; got 'fax'",
        ),
    ],
)
def test_filing_refuses_invalid_input_naming_the_field(
    agent: User, customer: Customer, fields: dict[str, str], message: str
) -> None:
    # given
    values: dict[str, Any] = {"channel": "phone", "subject": "投诉", "matter": "坏了", **fields}
    # when
    with pytest.raises(ValidationFailed) as refused:
        services.complaint_file(user=agent, customer_id=customer.pk, **values)
    # then
    assert refused.value.message == message
    assert Ticket.objects.count() == 0


# ---------------------------------------------------------------------- the steps


def test_the_whole_workflow_with_one_rejected_round(
    agent: User, team: Team, complaint: Complaint, django_capture_on_commit_callbacks: Any
) -> None:
    # when
    services.complaint_assign(
        user=agent, complaint_id=complaint.pk, team_id=team.pk, now=at_hour(1)
    )
    services.complaint_propose(
        user=agent, complaint_id=complaint.pk, findings="漏检", resolution="退款", now=at_hour(3)
    )
    rejected = services.complaint_reject(
        user=agent, complaint_id=complaint.pk, reason="只退款不够", now=at_hour(4)
    )
    services.complaint_propose(
        user=agent,
        complaint_id=complaint.pk,
        findings="漏检",
        resolution="退款并补偿100元",
        now=at_hour(10),
    )
    token = tokens.answer_token(complaint.pk, 2)
    services.complaint_answer_by_link(token=token, accept=True, reason="可以", now=at_hour(12))
    services.complaint_schedule_follow_up(
        user=agent, complaint_id=complaint.pk, follow_up_at=at_hour(48), now=at_hour(13)
    )
    services.complaint_complete_follow_up(
        user=agent, complaint_id=complaint.pk, notes="满意", now=at_hour(49)
    )
    with django_capture_on_commit_callbacks(execute=True):
        closed = services.complaint_close(
            user=agent, complaint_id=complaint.pk, outcome="已退款并补偿", now=at_hour(50)
        )
    # then
    assert (rejected.stage, rejected.rejections, rejected.customer_answer) == (
        "investigating",
        1,
        "只退款不够",
    )
    assert (closed.stage, closed.proposals, closed.rejections, closed.outcome) == (
        "closed",
        2,
        1,
        "已退款并补偿",
    )
    assert (closed.team_id, closed.customer_answer, closed.follow_up_notes) == (
        team.pk,
        "可以",
        "满意",
    )
    assert closed.closed_at == at_hour(50)
    assert _events(closed) == [
        ("record", "", "recorded", 1),
        ("assign", "recorded", "investigating", 1),
        ("propose", "investigating", "resolution_proposed", 1),
        ("reject", "resolution_proposed", "investigating", 1),
        ("propose", "investigating", "resolution_proposed", 2),
        ("accept", "resolution_proposed", "accepted", 2),
        ("schedule_follow_up", "accepted", "follow_up_scheduled", 2),
        ("complete_follow_up", "follow_up_scheduled", "follow_up_done", 2),
        ("close", "follow_up_done", "closed", 2),
    ]
    accepted = ComplaintEvent.objects.get(complaint=closed, action="accept")
    assert (accepted.actor_id, accepted.actor_label) == (None, services.CUSTOMER_LABEL)
    ticket = Ticket.objects.get(pk=closed.ticket_id)
    assert ticket.status == "solved"
    messages = list(
        Message.objects.filter(customer_id=closed.customer_id, template__startswith="complaint.")
        .order_by("id")
        .values_list("template", "key")
    )
    assert messages == [
        ("complaint.resolution_proposed", f"complaint.proposed:{closed.pk}:1"),
        ("complaint.resolution_proposed", f"complaint.proposed:{closed.pk}:2"),
        ("complaint.closed", f"complaint.closed:{closed.pk}"),
    ]
    proposal = Message.objects.filter(key=f"complaint.proposed:{closed.pk}:2").get()
    assert "退款并补偿100元" in proposal.body and "/complaint/" in proposal.body


def test_stage_durations_are_read_from_the_events(
    agent: User, team: Team, complaint: Complaint
) -> None:
    # given: assigned 1 h after recording, proposed at 2 h, accepted at 3 h, visit scheduled at
    # 4 h, done at 25 h, closed at 26 h
    walk(complaint, agent, team, to="closed")
    # when
    detail = selectors.complaint_get(user=agent, complaint_id=complaint.pk)
    # then
    assert detail.hours_per_stage == {
        "recorded": 1.0,
        "investigating": 1.0,
        "resolution_proposed": 1.0,
        "accepted": 1.0,
        "follow_up_scheduled": 21.0,
        "follow_up_done": 1.0,
    }
    assert detail.total_hours == 26.0
    assert [(s.stage, s.hours, s.is_over_target) for s in detail.spans][:2] == [
        ("recorded", 1.0, False),
        ("investigating", 1.0, False),
    ]
    assert (detail.allowed_actions, detail.is_overdue, detail.due_at) == ([], False, None)


def test_reassigning_while_investigating_keeps_the_stage_and_its_clock(
    agent: User, team: Team, complaint: Complaint
) -> None:
    # given
    other = Team.objects.create(slug="logistics-test", name="物流组 Logistics")
    services.complaint_assign(
        user=agent, complaint_id=complaint.pk, team_id=team.pk, now=at_hour(1)
    )
    # when
    moved = services.complaint_assign(
        user=agent, complaint_id=complaint.pk, team_id=other.pk, note="物流问题", now=at_hour(5)
    )
    # then
    assert (moved.stage, moved.team_id, moved.stage_entered_at) == (
        "investigating",
        other.pk,
        at_hour(1),
    )
    assert _events(moved)[-1] == ("assign", "investigating", "investigating", 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c, u, t: services.complaint_propose(
                user=u, complaint_id=c.pk, findings=" ", resolution="退款"
            ),
            "findings: required, and must not be blank",
        ),
        (
            lambda c, u, t: services.complaint_propose(
                user=u, complaint_id=c.pk, findings="漏检", resolution=""
            ),
            "resolution: required, and must not be blank",
        ),
        (
            lambda c, u, t: services.complaint_reject(user=u, complaint_id=c.pk, reason="\n"),
            "reason: required, and must not be blank",
        ),
        (
            lambda c, u, t: services.complaint_propose(
                user=u, complaint_id=c.pk, findings="x" * 4001, resolution="退款"
            ),
            "findings: longer than 4000 characters",
        ),
    ],
)
def test_invalid_input_is_refused_naming_the_field_and_nothing_changes(
    agent: User, team: Team, complaint: Complaint, call: Any, message: str
) -> None:
    # given
    walk(complaint, agent, team, to="investigating")
    before = _events(complaint)
    # when
    with pytest.raises(ValidationFailed) as refused:
        call(complaint, agent, team)
    # then
    assert refused.value.message == message
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.proposals, complaint.findings) == ("investigating", 0, "")
    assert _events(complaint) == before


def test_a_step_the_stage_does_not_allow_is_refused_and_nothing_changes(
    agent: User, complaint: Complaint
) -> None:
    # when
    with pytest.raises(Conflict) as refused:
        services.complaint_close(user=agent, complaint_id=complaint.pk, outcome="已处理")
    # then
    assert refused.value.message == (
        "the complaint is recorded: cannot close; allowed: assign, withdraw"
    )
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.outcome, complaint.closed_at) == ("recorded", "", None)
    assert _events(complaint) == [("record", "", "recorded", 1)]


def test_a_follow_up_too_far_away_is_refused(agent: User, team: Team, complaint: Complaint) -> None:
    # given
    walk(complaint, agent, team, to="accepted")
    # when
    with pytest.raises(ValidationFailed) as refused:
        services.complaint_schedule_follow_up(
            user=agent, complaint_id=complaint.pk, follow_up_at=at_hour(24 * 400), now=at_hour(4)
        )
    # then
    assert refused.value.message == (
        "follow_up_at: must be within the last 7 days or the coming year"
    )


def test_an_unknown_team_or_complaint_is_not_found(agent: User, complaint: Complaint) -> None:
    with pytest.raises(NotFound) as no_team:
        services.complaint_assign(user=agent, complaint_id=complaint.pk, team_id=999_999)
    with pytest.raises(NotFound) as no_complaint:
        services.complaint_assign(user=agent, complaint_id=999_999, team_id=1)
    assert no_team.value.message == "team 999999 not found"
    assert no_complaint.value.message == "complaint 999999 not found"


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ANALYST, Role.MARKETER, Role.RISK_ANALYST])
def test_roles_that_may_not_handle_complaints_are_refused(
    role: str, team: Team, complaint: Complaint
) -> None:
    # when
    with pytest.raises(PermissionDenied):
        services.complaint_assign(user=make_user(role), complaint_id=complaint.pk, team_id=team.pk)
    # then
    complaint.refresh_from_db()
    assert complaint.stage == "recorded"


# ---------------------------------------------------------------------- the customer's link


def test_the_link_answers_once(agent: User, team: Team, complaint: Complaint) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    token = tokens.answer_token(complaint.pk, 1)
    # when
    answered = services.complaint_answer_by_link(token=token, accept=False, reason="不接受")
    with pytest.raises(Conflict) as again:
        services.complaint_answer_by_link(token=token, accept=True)
    # then
    assert (answered.stage, answered.rejections) == ("investigating", 1)
    assert again.value.message == "this proposal was already answered: thank you"
    complaint.refresh_from_db()
    assert (complaint.stage, complaint.rejections, complaint.customer_answer) == (
        "investigating",
        1,
        "不接受",
    )


def test_a_replaced_proposals_link_answers_nothing(
    agent: User, team: Team, complaint: Complaint
) -> None:
    # given: proposal 1 rejected by staff, proposal 2 sent
    walk(complaint, agent, team, to="resolution_proposed")
    old = tokens.answer_token(complaint.pk, 1)
    services.complaint_reject(user=agent, complaint_id=complaint.pk, reason="不够")
    services.complaint_propose(user=agent, complaint_id=complaint.pk, findings="f", resolution="r2")
    # when
    with pytest.raises(Conflict) as refused:
        services.complaint_answer_by_link(token=old, accept=True)
    # then
    assert refused.value.message == (
        "this proposal was replaced by a newer one: use the link in the latest message"
    )
    complaint.refresh_from_db()
    assert complaint.stage == "resolution_proposed"


def test_a_rejection_through_the_link_needs_the_customers_reason(
    agent: User, team: Team, complaint: Complaint
) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    # when
    with pytest.raises(ValidationFailed) as refused:
        services.complaint_answer_by_link(
            token=tokens.answer_token(complaint.pk, 1), accept=False, reason=" "
        )
    # then
    assert refused.value.message == "reason: required, and must not be blank"
    complaint.refresh_from_db()
    assert complaint.stage == "resolution_proposed"


def test_a_tampered_or_expired_link_opens_nothing(
    agent: User, team: Team, complaint: Complaint
) -> None:
    # given
    walk(complaint, agent, team, to="resolution_proposed")
    token = tokens.answer_token(complaint.pk, 1)
    # when / then
    with pytest.raises(NotFound):
        services.complaint_answer_by_link(token=token[:-2] + "xx", accept=True)
    with override_settings(PATRON_COMPLAINT_LINK_DAYS=-1), pytest.raises(PermissionDenied):
        services.complaint_answer_by_link(token=token, accept=True)
    complaint.refresh_from_db()
    assert complaint.stage == "resolution_proposed"


def test_withdrawing_closes_and_solves_the_ticket(agent: User, complaint: Complaint) -> None:
    # when
    withdrawn = services.complaint_withdraw(
        user=agent, complaint_id=complaint.pk, reason="问题已自行解决"
    )
    # then
    assert (withdrawn.stage, withdrawn.outcome) == (
        "closed",
        "withdrawn by the customer: 问题已自行解决",
    )
    assert Ticket.objects.get(pk=complaint.ticket_id).status == "solved"


def test_closing_an_imported_tickets_complaint_notes_that_its_ticket_stays(
    agent: User, team: Team, customer: Customer
) -> None:
    # given: a complaint on imported history (the demo does this)
    ticket = make_ticket(customer, source="shop", status="solved")
    complaint = services.complaint_record_from_ticket(ticket_id=ticket.pk)
    assert complaint is not None
    # when
    closed = walk(complaint, agent, team, to="closed")
    # then
    note = ComplaintEvent.objects.get(complaint=closed, action="close").note
    assert note == f"已退款\n(ticket {ticket.pk} was already solved)"
