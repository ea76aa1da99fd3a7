"""The risk API as a shop and as analysts use it: the checkout policy with a token, decisions
on alerts, restrictions, blacklisting and appeals, rules — and their errors."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import make_customer, make_user
from patron.customer.models import Customer
from patron.risk.models import Alert
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    return Client(headers={"Authorization": f"Bearer {token_create(user=user)}"})


def _score(customer: Customer, credit: int, grade: str) -> None:
    run = ScoreRun.objects.create(
        as_of=date(2026, 11, 1), status="completed", started_at=timezone.now()
    )
    CustomerScore.objects.create(
        customer=customer, run=run, as_of=run.as_of, credit_score=credit, grade=grade
    )


@pytest.fixture
def analyst() -> Client:
    return _client(make_user(Role.RISK_ANALYST, username="analyst-li"))


@pytest.fixture
def customer() -> Customer:
    customer = make_customer(name="张三")
    _score(customer, 700, "core")
    return customer


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, body, content_type="application/json")


def test_the_checkout_policy_answers_a_shop_with_a_token(customer: Customer) -> None:
    shop = _client(make_user(Role.INTEGRATION))
    response = shop.get(
        f"/api/customers/{customer.pk}/checkout-policy", headers={"Accept-Language": "zh-hans"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["may_order"] and body["coupons_allowed"] and not body["order_review"]
    assert body["credit_limit"] == "3000.00" and body["credit_score"] == 700
    assert "cod" in body["payment_methods"] and body["grade"] == "core"
    assert body["reasons"] and body["reason_data"][0]["params"]["score"] == 700
    assert shop.get("/api/customers/999999/checkout-policy").status_code == 404
    assert shop.get("/api/customers").status_code == 403  # the integration role reads only this


def test_a_marketer_may_not_read_the_checkout_policy(customer: Customer) -> None:
    marketer = _client(make_user(Role.MARKETER))
    response = marketer.get(f"/api/customers/{customer.pk}/checkout-policy")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_analyst_restricts_from_an_alert_and_the_shop_sees_it(
    analyst: Client, customer: Customer
) -> None:
    # given
    now = timezone.now()
    alert = Alert.objects.create(
        customer=customer,
        source="rule",
        rule_code="PAY-CB",
        severity="high",
        value=2,
        threshold=1,
        volume=2,
        evidence=[{"type": "payment", "id": 5}],
        suggested_action="payment_method",
        created_at=now,
        updated_at=now,
    )
    queue = analyst.get("/api/risk/alerts?severity=high").json()
    assert queue["count"] == 1 and queue["items"][0]["id"] == alert.pk
    # when
    response = _post(
        analyst,
        f"/api/customers/{customer.pk}/restrictions",
        {
            "kind": "payment_method",
            "scope": {"methods": ["cod", "pay_later"]},
            "reason": "两次拒付",
            "alert_id": alert.pk,
        },
    )
    # then
    assert response.status_code == 201, response.json()
    restriction = response.json()
    assert restriction["is_active"] and restriction["evidence"] == [{"type": "payment", "id": 5}]
    assert analyst.get(f"/api/risk/alerts/{alert.pk}").json()["status"] == "restricted"
    policy = _client(make_user(Role.INTEGRATION)).get(
        f"/api/customers/{customer.pk}/checkout-policy", headers={"Accept-Language": "en"}
    )
    assert "cod" not in policy.json()["payment_methods"]
    assert (
        "Payment methods cash on delivery, pay later are not offered: 两次拒付"
        in policy.json()["reasons"]
    )
    # and deciding the same alert again is a conflict
    again = _post(
        analyst, f"/api/risk/alerts/{alert.pk}/decision", {"action": "dismiss", "reason": "x"}
    )
    assert again.status_code == 409


def test_invalid_requests_are_422_naming_the_field(analyst: Client, customer: Customer) -> None:
    bad_kind = _post(
        analyst, f"/api/customers/{customer.pk}/restrictions", {"kind": "ban", "reason": "x"}
    )
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json()["message"]
    bad_scope = _post(
        analyst,
        f"/api/customers/{customer.pk}/restrictions",
        {"kind": "credit_limit", "scope": {"limit": "lots"}, "reason": "x"},
    )
    assert bad_scope.status_code == 422
    assert bad_scope.json()["message"] == "restriction.scope.limit: expected an amount"
    no_reason = _post(
        analyst, f"/api/customers/{customer.pk}/restrictions", {"kind": "coupon_ban", "reason": ""}
    )
    assert no_reason.status_code == 422


def test_an_agent_files_an_appeal_and_another_analyst_overturns_it(
    analyst: Client, customer: Customer
) -> None:
    # given
    restriction = _post(
        analyst,
        f"/api/customers/{customer.pk}/restrictions",
        {"kind": "account_freeze", "reason": "疑似盗号"},
    ).json()
    agent = _client(make_user(Role.SERVICE_AGENT))
    assert agent.get(f"/api/customers/{customer.pk}/restrictions").json()[0]["reason"] == "疑似盗号"
    lift = _post(agent, f"/api/risk/restrictions/{restriction['id']}/lift", {"reason": "x"})
    assert lift.status_code == 403
    # when
    filed = _post(
        agent,
        "/api/risk/appeals",
        {"customer_id": customer.pk, "restriction_id": restriction["id"], "statement": "是本人"},
    )
    assert filed.status_code == 201
    appeal = filed.json()
    own = _post(
        analyst,
        f"/api/risk/appeals/{appeal['id']}/decision",
        {"outcome": "overturn", "reason": "x"},
    )
    assert own.status_code == 403 and "took part" in own.json()["message"]
    reviewer = _client(make_user(Role.RISK_ANALYST, username="analyst-wang"))
    decided = _post(
        reviewer,
        f"/api/risk/appeals/{appeal['id']}/decision",
        {"outcome": "overturn", "reason": "已核实为本人"},
    )
    # then
    assert decided.status_code == 200 and decided.json()["status"] == "overturned"
    shown = agent.get(f"/api/customers/{customer.pk}/restrictions").json()[0]
    assert not shown["is_active"] and shown["lift_reason"].endswith("已核实为本人")


def test_blacklisting_through_the_api_needs_two_analysts(
    analyst: Client, customer: Customer
) -> None:
    proposed = _post(analyst, "/api/risk/blacklist", {"customer_id": customer.pk, "reason": "欺诈"})
    assert proposed.status_code == 201 and proposed.json()["status"] == "confirmed"
    entry = proposed.json()["id"]
    assert (
        _post(analyst, f"/api/risk/blacklist/{entry}/approve", {"reason": "y"}).status_code == 403
    )
    second = _client(make_user(Role.RISK_ANALYST, username="analyst-wang"))
    approved = _post(second, f"/api/risk/blacklist/{entry}/approve", {"reason": "证据充分"})
    assert approved.json()["status"] == "active"
    shop = _client(make_user(Role.INTEGRATION))
    assert not shop.get(f"/api/customers/{customer.pk}/checkout-policy").json()["may_order"]
    duplicate = _post(second, "/api/risk/blacklist", {"customer_id": customer.pk, "reason": "x"})
    assert duplicate.status_code == 409


def test_the_risk_policy_is_versioned_data(analyst: Client, customer: Customer) -> None:
    assert analyst.get("/api/risk/policy").json()["version"] == 1
    saved = analyst.put(
        "/api/risk/policy",
        {"rules": {"credit_bands": [{"min_score": 600, "limit": "800"}]}, "note": "保守"},
        content_type="application/json",
    )
    assert saved.status_code == 200 and saved.json()["version"] == 2
    bad = analyst.put(
        "/api/risk/policy", {"rules": {"blacklist_approvals": 9}}, content_type="application/json"
    )
    assert bad.status_code == 422 and "blacklist_approvals" in bad.json()["message"]
    shop = _client(make_user(Role.INTEGRATION))
    assert shop.get(f"/api/customers/{customer.pk}/checkout-policy").json()["credit_limit"] == (
        "1200.00"  # 800 for a score of 700, times 1.5 for a core customer
    )


def test_rules_are_listed_and_edited_by_analysts_only(analyst: Client) -> None:
    rules = analyst.get("/api/risk/rules").json()
    assert {"PAY-CB", "RET-RATE"} <= {r["code"] for r in rules}
    edited = analyst.patch(
        "/api/risk/rules/PAY-CB", {"threshold": 2}, content_type="application/json"
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    named = analyst.patch(
        "/api/risk/rules/PAY-CB", {"name_zh": "拒付"}, content_type="application/json"
    )
    assert named.status_code == 200, named.content
    assert (named.json()["name"], named.json()["name_zh"]) == ("Chargebacks", "拒付")
    for field in ("name", "name_zh"):
        nul = analyst.patch(
            "/api/risk/rules/PAY-CB", {field: "拒\x00付"}, content_type="application/json"
        )
        assert nul.status_code == 422 and field in nul.content.decode(), nul.content
    auditor = _client(make_user(Role.AUDITOR))
    assert auditor.get("/api/risk/rules").status_code == 200
    refused = auditor.patch(
        "/api/risk/rules/PAY-CB", {"threshold": 3}, content_type="application/json"
    )
    assert refused.status_code == 403
