"""The marketing API: segments and coupons end to end, error statuses, and the role ×
endpoint matrix."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import ALL_ROLES, make_customer, make_user
from patron.marketing.models import Coupon, Segment
from patron.marketing.tests.factories import score, template

pytestmark = pytest.mark.django_db

RULE = {"all": [{"field": "grade", "op": "eq", "value": "core"}]}


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def test_preview_save_and_read_a_segment() -> None:
    # given
    core = make_customer(name="核心甲", province="浙江")
    score(core, grade="core")
    client = _client(Role.MARKETER)

    # when
    preview = client.post("/api/marketing/segments/preview", {"rule": RULE}, "application/json")
    saved = client.post(
        "/api/marketing/segments", {"name": "核心", "rule": RULE}, "application/json"
    )
    segment_id = saved.json()["id"]
    put = client.put(
        f"/api/marketing/segments/{segment_id}",
        {"name": "核心", "description": "v2", "rule": {"any": RULE["all"]}},
        "application/json",
    )
    members = client.get(f"/api/marketing/segments/{segment_id}/members?page_size=10")

    # then
    assert preview.status_code == 200
    assert preview.json()["count"] == 1
    assert preview.json()["sample"][0]["name"] == "核心甲"
    assert saved.status_code == 201
    assert saved.json()["rule_text"] == "Grade is core"
    assert (put.status_code, put.json()["version"]) == (200, 2)
    assert members.json()["count"] == 1 and members.json()["items"][0]["id"] == core.pk


def test_a_bad_rule_is_422_naming_the_path() -> None:
    response = _client(Role.MARKETER).post(
        "/api/marketing/segments/preview",
        {"rule": {"all": [{"field": "grade", "op": "eq", "value": "core"},
                          {"any": [{"field": "clv_12m", "op": "gt", "value": "lots"}]}]}},
        "application/json",
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["message"] == "rule.all[1].any[0].value: expected a number, got 'lots'"


def test_the_field_registry() -> None:
    fields = _client(Role.ANALYST).get("/api/marketing/segment-fields").json()
    consent = next(f for f in fields if f["name"] == "consent")
    assert consent["operators"] == ["granted", "not_granted"]
    assert "marketing:sms" in consent["choices"]


def test_issue_redeem_and_void_over_the_api() -> None:
    # given
    customer = make_customer()
    marketer = _client(Role.MARKETER)
    created = marketer.post(
        "/api/marketing/coupon-templates",
        {"name": "满100减15", "kind": "amount_off", "value": 15, "min_order_amount": 100,
         "valid_days": 14, "stock": 10, "budget": 100},
        "application/json",
    )  # fmt: skip
    template_id = created.json()["id"]

    # when
    issued = marketer.post(
        f"/api/marketing/coupon-templates/{template_id}/issue",
        {"customer_ids": [customer.pk], "reason": "老客回馈", "request_key": "batch-1"},
        "application/json",
    )
    code = issued.json()["coupons"][0]["code"]
    checkout = _client(Role.INTEGRATION)
    body = {"customer_id": customer.pk, "order_total": 129.9, "request_key": "order-77"}
    redeemed = checkout.post(f"/api/marketing/coupons/{code}/redeem", body, "application/json")
    again = checkout.post(
        f"/api/marketing/coupons/{code}/redeem", {**body, "request_key": "order-78"},
        "application/json",
    )  # fmt: skip
    voided = marketer.post(
        f"/api/marketing/coupons/{code}/void", {"reason": "误发"}, "application/json"
    )
    templates = marketer.get("/api/marketing/coupon-templates").json()

    # then
    assert created.status_code == 201
    assert (issued.status_code, issued.json()["count"]) == (201, 1)
    assert redeemed.status_code == 200
    assert (redeemed.json()["discount_amount"], redeemed.json()["order_total"]) == (
        "15.00", "129.90",
    )  # fmt: skip
    assert again.status_code == 409
    assert again.json()["message"] == f"coupon {code}: it is redeemed"
    assert voided.status_code == 409
    assert templates[0]["discount_given"] == "15.00" and templates[0]["budget_left"] == "85.00"
    assert templates[0]["stock_left"] == 9


def test_unknown_things_are_404() -> None:
    client = _client(Role.ADMINISTRATOR)
    assert client.get("/api/marketing/segments/999").status_code == 404
    assert client.get("/api/marketing/coupons/NOPE").status_code == 404


# ---------------------------------------------------------------------- the role matrix

VIEW_SEGMENTS_ROLES = {"administrator", "operations_manager", "marketer", "analyst", "auditor"}
CHANGE_ROLES = {"administrator", "operations_manager", "marketer"}
VIEW_COUPON_ROLES = {
    "administrator", "operations_manager", "marketer", "service_agent", "auditor", "analyst",
}  # fmt: skip
REDEEM_ROLES = {"administrator", "operations_manager", "service_agent", "integration"}


def _call(client: Client, action: str, ctx: dict[str, Any]) -> int:
    json = "application/json"
    calls = {
        "list segments": lambda: client.get("/api/marketing/segments"),
        "preview": lambda: client.post("/api/marketing/segments/preview", {"rule": RULE}, json),
        "save segment": lambda: client.post(
            "/api/marketing/segments", {"name": "n", "rule": RULE}, json
        ),
        "list coupons": lambda: client.get("/api/marketing/coupons"),
        "issue": lambda: client.post(
            f"/api/marketing/coupon-templates/{ctx['template']}/issue",
            {"count": 1, "reason": "r", "request_key": "k"},
            json,
        ),
        "redeem": lambda: client.post(
            f"/api/marketing/coupons/{ctx['code']}/redeem",
            {"customer_id": ctx["customer"], "order_total": 500, "request_key": "k"},
            json,
        ),
    }
    return int(calls[action]().status_code)


ALLOWED = {
    "list segments": VIEW_SEGMENTS_ROLES,
    "preview": VIEW_SEGMENTS_ROLES,
    "save segment": CHANGE_ROLES,
    "list coupons": VIEW_COUPON_ROLES,
    "issue": CHANGE_ROLES,
    "redeem": REDEEM_ROLES,
}


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize("action", list(ALLOWED))
def test_role_matrix(role: str, action: str) -> None:
    # given
    customer = make_customer()
    tpl = template(per_customer_limit=None)
    coupon = Coupon.objects.create(
        code="TESTCODE99", template=tpl, customer=customer, issued_at=tpl.created_at
    )
    ctx = {"template": tpl.pk, "code": coupon.code, "customer": customer.pk}

    # when
    status = _call(_client(role), action, ctx)

    # then
    expected = {200, 201} if role in ALLOWED[action] else {403}
    assert status in expected, (role, action, status)
    if action == "save segment" and status == 403:
        assert not Segment.objects.exists()
