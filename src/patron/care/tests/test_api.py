"""The care API: the policy (GET, PUT per grade), the care calendar, what the runs did and one
customer's care — who may do what (a role × endpoint matrix, written out), and the errors."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.care import services
from patron.care.models import GradeMeasure
from patron.care.tests import factories
from patron.conftest import ALL_ROLES, NO_ROLE, make_user
from patron.customer.models import Customer
from patron.service.models import DedicatedAgent

pytestmark = pytest.mark.django_db

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
MARKETER = Role.MARKETER.value
AUDITOR = Role.AUDITOR.value
ANALYST = Role.ANALYST.value
RISK_ANALYST = Role.RISK_ANALYST.value

VIEW = {ADMINISTRATOR, OPERATIONS_MANAGER, MARKETER, AUDITOR, ANALYST}
CHANGE = {ADMINISTRATOR, OPERATIONS_MANAGER, MARKETER}
CUSTOMER_VIEW = {
    ADMINISTRATOR,
    OPERATIONS_MANAGER,
    SERVICE_AGENT,
    RISK_ANALYST,
    MARKETER,
    AUDITOR,
    ANALYST,
}
ROLES = [*ALL_ROLES, NO_ROLE]

ROW = {
    "exclusive_discount_percent": 5.0,
    "has_priority_handling": True,
    "has_dedicated_line": True,
    "visit_interval_days": 60,
    "sends_birthday_greeting": True,
    "birthday_coupon_template_id": None,
    "holidays": ["spring_festival", "mid_autumn"],
    "holiday_days_ahead": 3,
    "holiday_coupon_template_id": None,
}

# action: (method, url for a customer id, body, status when allowed, roles allowed)
ENDPOINTS: dict[str, tuple[str, Any, Any, int, set[str]]] = {
    "GET policy": ("get", lambda _: "/api/care/policy", None, 200, VIEW),
    "PUT policy": ("put", lambda _: "/api/care/policy/core", lambda: dict(ROW), 200, CHANGE),
    "GET upcoming": ("get", lambda _: "/api/care/upcoming?days=10", None, 200, VIEW),
    "GET runs": ("get", lambda _: "/api/care/runs", None, 200, VIEW),
    "GET customer": ("get", lambda pk: f"/api/care/customers/{pk}", None, 200, CUSTOMER_VIEW),
}


def _client(user: User) -> Client:
    return Client(headers={"Authorization": f"Bearer {token_create(user=user)}"})


def _call(client: Client, method: str, url: str, body: Any = None) -> Any:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.fixture
def customer() -> Customer:
    return factories.customer("王小明", grade="core", birthday=date(1990, 3, 7))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_who_may_do_what(customer: Customer, role: str, action: str) -> None:
    # given
    method, url, body, status, allowed = ENDPOINTS[action]
    client = _client(make_user(role))
    services.care_policy_seed()
    # when
    response = _call(client, method, url(customer.pk), body() if body else None)
    # then
    assert response.status_code == (status if role in allowed else 403), response.content
    if role not in allowed:
        assert response.json()["code"] == "permission_denied"
        assert GradeMeasure.objects.get(grade="core").version == 1


@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_anonymous_requests_are_refused(customer: Customer, action: str) -> None:
    method, url, body, _, _ = ENDPOINTS[action]
    assert _call(Client(), method, url(customer.pk), body() if body else None).status_code == 401


@pytest.fixture
def marketer() -> Client:
    return _client(make_user(MARKETER, username="marketer-li"))


def test_the_policy_table(marketer: Client) -> None:
    # when
    body = marketer.get("/api/care/policy").json()
    # then
    assert [row["grade"] for row in body] == ["core", "potential", "ordinary"]
    core = body[0]
    assert {k: core[k] for k in ROW} == {
        **ROW,
        "exclusive_discount_percent": "5.00",
        "visit_interval_days": 90,
        "holidays": [
            "new_year",
            "spring_festival",
            "lantern",
            "dragon_boat",
            "mid_autumn",
            "double_ninth",
            "national_day",
        ],
    }
    assert core["grade_label"] == "核心客户 Core"
    assert core["holiday_names"][1] == "春节 the Spring Festival"
    assert (core["version"], core["updated_by"]) == (1, "")


def test_put_replaces_a_grade_s_row(marketer: Client) -> None:
    # given
    template = factories.coupon_template(name="中秋券")
    # when
    response = marketer.put(
        "/api/care/policy/potential",
        {**ROW, "holiday_coupon_template_id": template.pk, "note": "中秋加码"},
        content_type="application/json",
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["grade"], body["version"], body["updated_by"], body["note"]) == (
        "potential",
        2,
        "marketer-li",
        "中秋加码",
    )
    assert (body["holiday_coupon_template_id"], body["holiday_coupon_template_name"]) == (
        template.pk,
        "中秋券",
    )
    assert body["visit_interval_days"] == 60


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"holiday_coupon_template_id": 987654},
            "core.holiday_coupon_template_id: coupon template 987654 not found",
        ),
        (
            {"holidays": [], "holiday_coupon_template_id": "TEMPLATE"},
            "core.holiday_coupon_template_id: a holiday coupon needs at least one holiday",
        ),
    ],
)
def test_a_refused_row_names_the_grade_and_the_field(
    marketer: Client, changes: dict[str, Any], message: str
) -> None:
    # given
    if changes.get("holiday_coupon_template_id") == "TEMPLATE":
        changes = {**changes, "holiday_coupon_template_id": factories.coupon_template().pk}
    # when
    response = marketer.put(
        "/api/care/policy/core", {**ROW, **changes}, content_type="application/json"
    )
    # then
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith(message)
    assert body["details"]["grade"] == "core"


@pytest.mark.parametrize(
    "changes",
    [
        {"holidays": ["lantern", "lantern"]},
        {"holidays": ["christmas"]},
        {"has_dedicated_line": 1},
        {"visit_interval_days": 3},
        {"exclusive_discount_percent": "5"},
        {"colour": "gold"},
    ],
)
def test_a_malformed_row_is_refused_by_the_schema(
    marketer: Client, changes: dict[str, Any]
) -> None:
    response = marketer.put(
        "/api/care/policy/core", {**ROW, **changes}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


def test_an_unknown_grade_is_refused(marketer: Client) -> None:
    response = marketer.put("/api/care/policy/vip", ROW, content_type="application/json")
    assert response.status_code == 422


def test_the_care_calendar(marketer: Client, customer: Customer) -> None:
    # when: from 5 March 2026, ten days (the core customer's birthday on 7 March)
    body = marketer.get("/api/care/upcoming?start=2026-03-05&days=10").json()
    # then
    assert (body["start"], body["days"]) == ("2026-03-05", 10)
    assert body["entries"][0] == {  # the Lantern Festival (3 March) has passed
        "on": "2026-03-07",
        "kind": "birthday",
        "grade": "core",
        "grade_label": "核心客户 Core",
        "customers": 1,
        "holiday": "",
        "holiday_name": "",
        "holiday_on": None,
    }


def test_the_calendar_refuses_a_start_beyond_its_years(marketer: Client) -> None:
    response = marketer.get("/api/care/upcoming?start=2101-01-01")
    assert response.status_code == 422
    assert response.json()["message"].startswith("start: the holiday calendar covers 1901–2099")


def test_what_the_runs_did(marketer: Client, customer: Customer) -> None:
    # given
    today = timezone.localdate()
    Customer.objects.filter(pk=customer.pk).update(birthday=today.replace(year=1990))
    services.care_run(day=today)
    # when
    body = marketer.get("/api/care/runs").json()
    # then
    assert body[0]["run_on"] == today.isoformat()
    assert body[0]["birthday_greetings"] == 1


def test_one_customer_s_care(marketer: Client, customer: Customer) -> None:
    # given
    agent = make_user(SERVICE_AGENT, username="agent-wang")
    DedicatedAgent.objects.create(customer=customer, user=agent)
    today = timezone.localdate()
    # when
    body = _client(agent).get(f"/api/care/customers/{customer.pk}").json()
    # then
    assert (body["grade"], body["dedicated_agent"]) == ("core", "agent-wang")
    assert body["measures"]["exclusive_discount_percent"] == "5.00"
    assert (
        body["next_birthday_greeting"]
        == (
            date(today.year, 3, 7)
            if today <= date(today.year, 3, 7)
            else date(today.year + 1, 3, 7)
        ).isoformat()
    )
    # the factories' core customers joined on 1 June 2026: the first visit within 90 days
    first_visit = date(2026, 6, 1) + timedelta(days=customer.pk % 90)
    assert body["next_visit_on"] == max(first_visit, today).isoformat()
    assert body["touches"] == []


def test_an_unknown_customer_is_404(marketer: Client) -> None:
    assert marketer.get("/api/care/customers/999999").status_code == 404


def test_after_a_run_a_customer_s_touches_are_listed(marketer: Client, customer: Customer) -> None:
    services.care_run(day=date(2026, 3, 7))
    touches = marketer.get(f"/api/care/customers/{customer.pk}").json()["touches"]
    assert [(t["kind"], t["occasion"], t["outcome"]) for t in touches] == [
        ("birthday", "2026", "messaged")
    ]
    assert touches[0]["message_id"] is not None and touches[0]["coupon_code"] == ""


def test_days_ahead_limits(marketer: Client) -> None:
    assert marketer.get("/api/care/upcoming?days=0").status_code == 422
    assert marketer.get("/api/care/upcoming?days=367").status_code == 422
    start = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert marketer.get(f"/api/care/upcoming?start={start}&days=366").status_code == 200
