"""The desk's services against a real database: opening, routing, replying, states, clocks,
claiming, priority, escalation and the SLA watch."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from django.core import mail

from patron.account.roles import Role
from patron.conftest import at, make_customer, make_user, race, require_postgresql
from patron.errors import Conflict, PermissionDenied, ValidationFailed
from patron.outbox.models import Message
from patron.outbox.services import outbox_deliver
from patron.service import services
from patron.service.models import (
    AgentProfile,
    Category,
    DedicatedAgent,
    RoutingRule,
    Team,
    Ticket,
    TicketEvent,
    TicketMessage,
)

pytestmark = pytest.mark.django_db

# A Wednesday 10:00 in Shanghai (02:00 UTC): inside the default hours 09:00–21:00.
WEDNESDAY = at("2026-11-18 02:00")


@pytest.fixture
def desk(settings: Any) -> dict[str, Any]:
    settings.TIME_ZONE = "Asia/Shanghai"
    services.desk_seed(years=[2026])
    agent = make_user(Role.SERVICE_AGENT.value)
    AgentProfile.objects.create(user=agent, team=Team.objects.get(slug="frontline"))
    return {"agent": agent}


def _open(customer: Any, **kw: Any) -> Ticket:
    values: dict[str, Any] = {
        "customer_id": customer.pk,
        "channel": "email",
        "subject": "订单什么时候发货",
        "body": "我上周下的订单还没发货，请帮忙查一下",
        "category": "shipping",
        "actor_label": "test",
        "now": WEDNESDAY,
        "auto_reply": False,
    }
    values.update(kw)
    return services.ticket_open(**values)


def test_open_sets_priority_targets_deadlines_and_routes(desk: dict[str, Any]) -> None:
    customer = make_customer(email="a@example.com")
    ticket = _open(customer)
    assert ticket.status == "new"
    assert ticket.priority == "normal"
    assert (ticket.first_reply_target, ticket.resolution_target) == (30, 1440)
    assert ticket.first_reply_due_at == WEDNESDAY + timedelta(minutes=30)
    assert ticket.due_at == ticket.first_reply_due_at
    assert ticket.assignee == desk["agent"]
    assert ticket.external_id == f"T{ticket.pk}"
    assert ticket.messages.get().direction == "in"
    assert TicketEvent.objects.filter(ticket=ticket, action="opened").exists()


def test_keywords_raise_priority_and_tighten_the_sla(desk: dict[str, Any]) -> None:
    ticket = _open(make_customer(), body="再不退款我就找律师起诉你们")
    assert ticket.priority == "urgent"
    assert ticket.first_reply_target == 15
    assert any("律师" in str(r) for r in ticket.priority_reasons)


def test_unknown_category_and_foreign_order_are_refused(desk: dict[str, Any]) -> None:
    customer = make_customer()
    with pytest.raises(ValidationFailed, match="category 'nope'"):
        _open(customer, category="nope")
    with pytest.raises(ValidationFailed, match="not an order of customer"):
        _open(customer, order_id=999999)


def test_core_customer_goes_to_dedicated_agent(desk: dict[str, Any]) -> None:
    from patron.scoring.models import CustomerScore

    customer = make_customer()
    own = make_user(Role.SERVICE_AGENT.value)
    DedicatedAgent.objects.create(customer=customer, user=own)
    CustomerScore.objects.filter(customer=customer).delete()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "grade_of", lambda customer_id: "core")
        ticket = _open(customer)
    assert ticket.assignee == own
    assert ticket.first_reply_target == 15  # the core row


def test_the_measures_by_grade_decide_priority_handling_and_the_dedicated_line(
    desk: dict[str, Any],
) -> None:
    # given: the care policy gives potential customers what core customers had, and takes it
    # from core customers
    from patron.care.models import GradeMeasure
    from patron.care.services import care_policy_seed

    care_policy_seed()
    GradeMeasure.objects.filter(grade="potential").update(
        has_priority_handling=True, has_dedicated_line=True
    )
    GradeMeasure.objects.filter(grade="core").update(
        has_priority_handling=False, has_dedicated_line=False
    )
    potential, core = make_customer(), make_customer()
    own = make_user(Role.SERVICE_AGENT.value)
    DedicatedAgent.objects.create(customer=potential, user=own)
    DedicatedAgent.objects.create(customer=core, user=own)
    grades = {potential.pk: "potential", core.pk: "core"}

    # when
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "grade_of", grades.get)
        raised = _open(potential)
        plain = _open(core)

    # then
    assert (raised.priority, raised.assignee) == ("high", own)
    assert raised.priority_reasons[-1]["params"] == {"grade": "potential", "priority": "high"}
    assert (plain.priority, plain.assignee) == ("normal", desk["agent"])


def test_routing_skips_agents_at_capacity(desk: dict[str, Any]) -> None:
    AgentProfile.objects.filter(user=desk["agent"]).update(max_open=1)
    first = _open(make_customer())
    second = _open(make_customer())
    assert first.assignee == desk["agent"]
    assert second.assignee is None


def _team(ticket: Ticket) -> str:
    return ticket.team.slug if ticket.team else ""


def test_routing_rule_sends_urgent_tickets_to_quality(desk: dict[str, Any]) -> None:
    # the seeded rule: urgent (legal, regulator, press) → quality and complaints
    expert = make_user(Role.SERVICE_AGENT.value)
    AgentProfile.objects.create(user=expert, team=Team.objects.get(slug="quality"))
    urgent = _open(make_customer(), body="再不退款我就找律师起诉你们")
    assert (_team(urgent), urgent.assignee) == ("quality", expert)
    routed = TicketEvent.objects.get(ticket=urgent, action="opened").data["routed"]
    assert routed.startswith("routing rule")
    calm = _open(make_customer())
    assert (_team(calm), calm.assignee) == ("frontline", desk["agent"])


def test_routing_rule_by_channel_and_language(desk: dict[str, Any]) -> None:
    english = Team.objects.create(slug="english", name="English desk")
    RoutingRule.objects.create(
        position=5, name="English mail", channel="email", language="en", team=english
    )
    speaker = make_user(Role.SERVICE_AGENT.value)
    AgentProfile.objects.create(user=speaker, team=english, languages=["en"])
    mail_en = _open(
        make_customer(), subject="Where is my parcel?", body="Ordered last week, nothing yet"
    )
    assert (mail_en.team, mail_en.assignee) == (english, speaker)
    mail_zh = _open(make_customer())
    assert _team(mail_zh) == "frontline"
    web_en = _open(
        make_customer(), channel="web", subject="Where is my parcel?", body="Nothing yet"
    )
    assert _team(web_en) == "frontline"
    # inactive rules are not read
    RoutingRule.objects.filter(team=english).update(is_active=False)
    assert _team(_open(make_customer(), subject="Hello", body="Where is it?")) == "frontline"


def test_routing_skips_agents_off_shift_or_without_the_language(desk: dict[str, Any]) -> None:
    # WEDNESDAY is 10:00 in Shanghai
    AgentProfile.objects.filter(user=desk["agent"]).update(
        shift_starts=time(12), shift_ends=time(20)
    )
    night = make_user(Role.SERVICE_AGENT.value)
    AgentProfile.objects.create(
        user=night,
        team=Team.objects.get(slug="frontline"),
        shift_starts=time(22),
        shift_ends=time(11),
    )
    assert _open(make_customer()).assignee == night
    AgentProfile.objects.filter(user=night).update(languages=["en"])
    assert _open(make_customer()).assignee is None  # a Chinese message, no one on shift speaks it


def test_a_category_without_sla_opens_tasks_with_no_clocks(desk: dict[str, Any]) -> None:
    Category.objects.create(slug="visit", name="Follow-up visit", priority="low", has_sla=False)
    ticket = _open(make_customer(), category="visit")
    assert (ticket.first_reply_target, ticket.resolution_target, ticket.due_at) == (
        None,
        None,
        None,
    )
    assert ticket.sla_check_at is None  # the watch never looks at it
    assert ticket.sla_policy.startswith("no SLA")
    services.ticket_set_priority(ticket.pk, user=desk["agent"], priority="high", reason="VIP")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.first_reply_target, ticket.due_at) == ("high", None, None)


def test_routing_rule_and_agent_validation_name_the_field(desk: dict[str, Any]) -> None:
    from django.core.exceptions import ValidationError

    rule = RoutingRule(name="x", channel="fax", language="fr", team=Team.objects.first())
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert set(refused.value.message_dict) == {"channel", "language"}
    profile = AgentProfile(
        user=make_user(Role.SERVICE_AGENT.value), languages=["de"], shift_starts=time(9)
    )
    with pytest.raises(ValidationError) as refused:
        profile.full_clean()
    assert set(refused.value.message_dict) == {"languages", "shift_ends"}


def test_reply_goes_out_threaded_and_waits_for_customer(
    desk: dict[str, Any], settings: Any
) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    customer = make_customer(email="kehu@example.com")
    ticket = _open(customer, email_message_id="<cust-1@example.com>")
    reply = services.ticket_reply(
        ticket.pk,
        user=desk["agent"],
        body="已为您催促仓库，今天发出。",
        now=WEDNESDAY + timedelta(minutes=5),
    )
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    assert ticket.first_response_at == WEDNESDAY + timedelta(minutes=5)
    assert ticket.first_reply_due_at is None
    assert ticket.resolution_due_at is None  # paused while waiting on the customer
    assert reply.outbox_message is not None
    outbox_deliver()
    sent = mail.outbox[-1]
    assert sent.to == ["kehu@example.com"]
    assert sent.extra_headers["In-Reply-To"] == "<cust-1@example.com>"
    assert sent.extra_headers["Message-ID"] == reply.email_message_id
    assert "已为您催促仓库" in sent.body


def test_notes_are_not_sent(desk: dict[str, Any]) -> None:
    ticket = _open(make_customer(email="n@example.com"))
    before = Message.objects.count()
    note = services.ticket_note(ticket.pk, user=desk["agent"], body="客户是老客户，注意语气")
    assert note.direction == TicketMessage.Direction.NOTE
    assert Message.objects.count() == before


def test_customer_reply_reopens_and_resumes_the_clock(desk: dict[str, Any]) -> None:
    customer = make_customer(email="r@example.com")
    ticket = _open(customer, thread_key="conv-1", channel="wechat")
    services.ticket_reply(
        ticket.pk, user=desk["agent"], body="请提供订单号", now=WEDNESDAY + timedelta(minutes=10)
    )
    services.inbound_receive(
        services.Inbound(
            channel="wechat",
            identity_kind="email",
            identity_value="r@example.com",
            body="订单号 123",
            thread_key="conv-1",
        ),
        now=WEDNESDAY + timedelta(hours=2, minutes=10),
    )
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert ticket.messages.count() == 3
    # Two hours waiting on the customer are not counted: 24 h of business time from 10:00
    # Wednesday, minus the 10 minutes used, from 12:10 …
    assert ticket.resolution_due_at is not None
    paused = ticket.sla_pauses
    assert len(paused) == 1 and paused[0][1] is not None


def test_illegal_move_is_409_and_staff_permission_checked(desk: dict[str, Any]) -> None:
    ticket = _open(make_customer())
    with pytest.raises(Conflict):
        services.ticket_act(ticket.pk, "close", user=desk["agent"])
    auditor = make_user(Role.AUDITOR.value)
    with pytest.raises(PermissionDenied):
        services.ticket_act(ticket.pk, "solve", user=auditor)
    solved = services.ticket_act(ticket.pk, "solve", user=desk["agent"])
    assert solved.status == "solved" and solved.solved_at is not None


def test_claim_is_exclusive(desk: dict[str, Any]) -> None:
    AgentProfile.objects.all().delete()
    ticket = _open(make_customer())
    assert ticket.assignee is None
    other = make_user(Role.SERVICE_AGENT.value)
    services.ticket_claim(ticket.pk, user=desk["agent"])
    with pytest.raises(Conflict, match="already taken"):
        services.ticket_claim(ticket.pk, user=other)
    assert services.ticket_claim(ticket.pk, user=desk["agent"]).assignee == desk["agent"]


def test_priority_override_needs_a_reason_and_retargets(desk: dict[str, Any]) -> None:
    ticket = _open(make_customer())
    with pytest.raises(ValidationFailed, match="reason"):
        services.ticket_set_priority(ticket.pk, user=desk["agent"], priority="urgent", reason=" ")
    done = services.ticket_set_priority(
        ticket.pk, user=desk["agent"], priority="urgent", reason="VIP 投诉"
    )
    assert done.first_reply_target == 15
    assert TicketEvent.objects.filter(ticket=ticket, action="priority", note="VIP 投诉").exists()


def test_sla_watch_warns_then_breaches_once_and_escalates(desk: dict[str, Any]) -> None:
    ticket = _open(make_customer(email="w@example.com"))
    # 30-minute first reply: the warning zone starts at 24 minutes.
    none_yet = services.sla_watch(now=WEDNESDAY + timedelta(minutes=10))
    assert none_yet.warned == 0
    warned = services.sla_watch(now=WEDNESDAY + timedelta(minutes=25))
    assert warned.warned == 1
    again = services.sla_watch(now=WEDNESDAY + timedelta(minutes=26))
    assert again.warned == 0
    breached = services.sla_watch(now=WEDNESDAY + timedelta(minutes=31))
    assert breached.breached == 1 and breached.escalated == 1
    ticket.refresh_from_db()
    assert ticket.first_reply_breached_at == WEDNESDAY + timedelta(minutes=30)
    assert ticket.priority == "high"
    assert ticket.escalation_level == 1
    assert ticket.team == Category.objects.get(slug="shipping").escalation_team
    assert Message.objects.filter(template="service.escalated", customer=ticket.customer).exists()
    assert services.sla_watch(now=WEDNESDAY + timedelta(minutes=40)).breached == 0


def test_deadline_skips_the_night(desk: dict[str, Any]) -> None:
    # Opened 20:50 Shanghai: 10 minutes tonight, 20 minutes from 09:00 next day.
    late = at("2026-11-18 12:50")
    ticket = _open(make_customer(), now=late)
    assert ticket.first_reply_due_at == at("2026-11-19 01:20")


def test_contact_resolve_flags_same_name_never_merges(desk: dict[str, Any]) -> None:
    from patron.service.models import PossibleDuplicate

    existing = make_customer(name="王小明", email="old@example.com")
    found = services.contact_resolve(kind="email", value="OLD@example.com", name="王小明")
    assert found == existing
    new = services.contact_resolve(kind="wechat", value="wx-openid-1", name="王小明")
    assert new != existing
    assert PossibleDuplicate.objects.filter(customer=new, candidate=existing).exists()
    assert services.contact_resolve(kind="wechat", value="wx-openid-1") == new


@pytest.mark.django_db(transaction=True)
def test_two_agents_claiming_at_once_one_wins(settings: Any) -> None:
    require_postgresql()
    settings.TIME_ZONE = "Asia/Shanghai"
    services.desk_seed(years=[2026])
    ticket = _open(make_customer())
    Ticket.objects.filter(pk=ticket.pk).update(assignee=None)
    first, second = make_user(Role.SERVICE_AGENT.value), make_user(Role.SERVICE_AGENT.value)
    outcomes = race(
        lambda: services.ticket_claim(ticket.pk, user=first),
        lambda: services.ticket_claim(ticket.pk, user=second),
    )
    wins = [o for o in outcomes if isinstance(o, Ticket)]
    losses = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(wins) == 1 and len(losses) == 1
    ticket.refresh_from_db()
    assert ticket.assignee in (first, second)
