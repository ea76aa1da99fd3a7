"""The desk's REST API: the queue, a ticket, each agent step, the permission matrix."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.service import services
from patron.service.models import SlaPolicy, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Shanghai"
    services.desk_seed(years=[2026])


def _client(role: str) -> tuple[Client, Any]:
    user = make_user(role)
    client = Client()
    client.force_login(user)
    return client, user


def _ticket(**kw: Any) -> Ticket:
    return services.ticket_open(
        customer_id=make_customer(email="x@example.com").pk,
        channel="email",
        subject=kw.get("subject", "发票怎么开"),
        body=kw.get("body", "请问怎么开增值税发票"),
        category="payment",
        actor_label="test",
        auto_reply=False,
    )


def test_queue_lists_most_urgent_first(seeded: None) -> None:
    calm = _ticket()
    urgent = _ticket(body="我要找律师起诉")
    client, _ = _client(Role.SERVICE_AGENT.value)
    answer = client.get("/api/service/tickets")
    assert answer.status_code == 200
    ids = [row["id"] for row in answer.json()["items"]]
    assert ids.index(urgent.pk) < ids.index(calm.pk)
    assert client.get("/api/service/tickets?priority=urgent").json()["total"] == 1


def test_bad_filter_is_422_naming_it(seeded: None) -> None:
    client, _ = _client(Role.SERVICE_AGENT.value)
    answer = client.get("/api/service/tickets?grade=gold")
    assert answer.status_code == 422
    assert "grade" in answer.json()["message"]


def test_agent_works_a_ticket_end_to_end(seeded: None) -> None:
    ticket = _ticket()
    Ticket.objects.filter(pk=ticket.pk).update(assignee=None)
    client, user = _client(Role.SERVICE_AGENT.value)
    url = f"/api/service/tickets/{ticket.pk}"
    assert client.post(f"{url}/claim").json()["assignee"] == user.username
    noted = client.post(f"{url}/notes", {"body": "先查一下订单"}, content_type="application/json")
    assert noted.json()["messages"][-1]["direction"] == "note"
    replied = client.post(
        f"{url}/reply", {"body": "在订单页面点申请发票即可"}, content_type="application/json"
    )
    assert replied.status_code == 200 and replied.json()["status"] == "pending"
    solved = client.post(f"{url}/actions/solve", {"note": ""}, content_type="application/json")
    assert solved.json()["status"] == "solved"
    refused = client.post(f"{url}/actions/resume", {"note": ""}, content_type="application/json")
    assert refused.status_code == 409
    closed = client.post(f"{url}/actions/close", {"note": ""}, content_type="application/json")
    assert closed.json()["status"] == "closed"


def test_priority_and_escalation_need_reasons(seeded: None) -> None:
    ticket = _ticket()
    client, _ = _client(Role.SERVICE_AGENT.value)
    url = f"/api/service/tickets/{ticket.pk}"
    blank = client.post(
        f"{url}/priority", {"priority": "high", "reason": "  "}, content_type="application/json"
    )
    assert blank.status_code == 422
    done = client.post(
        f"{url}/priority",
        {"priority": "high", "reason": "客户多次来电"},
        content_type="application/json",
    )
    assert done.json()["priority"] == "high"
    up = client.post(
        f"{url}/escalate",
        {"team": "experts", "reason": "需要专家"},
        content_type="application/json",
    )
    assert up.json()["escalation_level"] == 1 and up.json()["team"]
    unknown = client.post(
        f"{url}/escalate", {"team": "nobody", "reason": "x"}, content_type="application/json"
    )
    assert unknown.status_code == 422 and "team" in unknown.json()["message"]


@pytest.mark.parametrize(
    ("role", "read", "work", "manage"),
    [
        (Role.ADMINISTRATOR, 200, 200, 200),
        (Role.OPERATIONS_MANAGER, 200, 200, 200),
        (Role.SERVICE_AGENT, 200, 200, 403),
        (Role.AUDITOR, 200, 403, 403),
        (Role.MARKETER, 403, 403, 403),
        (Role.INTEGRATION, 403, 403, 403),
    ],
)
def test_permission_matrix(seeded: None, role: Role, read: int, work: int, manage: int) -> None:
    ticket = _ticket()
    client, _ = _client(role.value)
    assert client.get(f"/api/service/tickets/{ticket.pk}").status_code == read
    note = client.post(
        f"/api/service/tickets/{ticket.pk}/notes", {"body": "x"}, content_type="application/json"
    )
    assert note.status_code == work
    policy = SlaPolicy.objects.get(priority="", grade="")
    patch = client.patch(
        f"/api/service/sla-policies/{policy.pk}",
        {"first_reply_minutes": 20},
        content_type="application/json",
    )
    assert patch.status_code == manage


def test_sla_policy_edit_applies_to_new_tickets(seeded: None) -> None:
    client, _ = _client(Role.OPERATIONS_MANAGER.value)
    policy = SlaPolicy.objects.get(priority="", grade="")
    client.patch(
        f"/api/service/sla-policies/{policy.pk}",
        {"first_reply_minutes": 20},
        content_type="application/json",
    )
    assert _ticket().first_reply_target == 20
    listed = client.get("/api/service/sla-policies").json()
    assert any(row["first_reply_minutes"] == 20 for row in listed)


def test_routing_rules_are_listed_in_reading_order(seeded: None) -> None:
    client, _ = _client(Role.SERVICE_AGENT.value)
    listed = client.get("/api/service/routing-rules")
    assert listed.status_code == 200
    assert [(r["position"], r["priority"], r["team"], r["category"]) for r in listed.json()] == [
        (10, "urgent", "quality", None)
    ]
    assert Client().get("/api/service/routing-rules").status_code == 401


def test_imported_ticket_has_no_workflow(seeded: None) -> None:
    from django.utils import timezone

    customer = make_customer()
    old = Ticket.objects.create(
        source="shop",
        external_id="OLD-1",
        customer=customer,
        channel="phone",
        subject="旧工单",
        opened_at=timezone.now(),
    )
    client, _ = _client(Role.SERVICE_AGENT.value)
    seen = client.get(f"/api/service/tickets/{old.pk}").json()
    assert seen["is_desk"] is False and seen["clocks"] == [] and seen["actions"] == []
    refused = client.post(
        f"/api/service/tickets/{old.pk}/actions/solve",
        {"note": ""},
        content_type="application/json",
    )
    assert refused.status_code == 409
