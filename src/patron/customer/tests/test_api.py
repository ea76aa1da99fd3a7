from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import CustomerFile, make_user

pytestmark = pytest.mark.django_db


def client_for(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def test_list_is_paged_with_a_count(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.ADMINISTRATOR)

    # when
    response = client.get("/api/customers", {"page_size": 2})

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["page"], body["page_size"], body["num_pages"]) == (3, 1, 2, 2)
    assert [item["name"] for item in body["items"]] == ["王芳", "李华"]
    assert body["items"][1] == {
        "id": customer_file.others[0].pk,
        "source": "shop",
        "external_id": "C1002",
        "name": "李华",
        "kind": "business",
        "kind_label": "企业 Business",
        "phone": "13900001111",
        "email": "hua.li@example.com",
        "province": "广东",
        "city": "深圳",
        "source_channel": "offline",
        "source_channel_label": "线下 Offline",
        "registration_channel": "",
        "registered_at": "2024-02-10T02:00:00Z",
        "status": "active",
        "status_label": "正常 Active",
        "order_count": 1,
        "total_spent": "5000.00",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "王"}, ["王芳", "王小明"]),
        ({"q": "+86 138 1234 1234"}, ["王小明"]),
        ({"q": "hua.li@example.com"}, ["李华"]),
        ({"q": "C1003"}, ["王芳"]),
        ({"province": "上海"}, ["王小明"]),
        ({"kind": "business"}, ["李华"]),
        ({"source_channel": "third_party"}, ["王芳"]),
    ],
)
def test_list_searches_and_filters(
    customer_file: CustomerFile, params: dict[str, str], expected: list[str]
) -> None:
    # given
    client = client_for(Role.SERVICE_AGENT)

    # when
    response = client.get("/api/customers", params)

    # then
    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == expected


def test_list_masks_pii_for_a_marketer(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.MARKETER)

    # when
    response = client.get("/api/customers", {"q": "C1001"})

    # then
    item = response.json()["items"][0]
    assert (item["phone"], item["email"]) == ("138****1234", "x***@example.com")


@pytest.mark.parametrize("field", ["q", "province"])
def test_list_refuses_nul_characters_rather_than_failing(db: None, field: str) -> None:
    # given: PostgreSQL text cannot hold NUL (the API fuzzer found a 500 here)
    client = client_for(Role.ADMINISTRATOR)
    # when
    response = client.get("/api/customers", {field: "王\x00"})
    # then
    assert response.status_code == 422
    assert response.json()["message"] == f"invalid request: query.{field}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "robot"}, "unknown customer kind 'robot'"),
        ({"source_channel": "fax"}, "unknown source channel 'fax'"),
    ],
)
def test_list_refuses_unknown_filter_values(db: None, params: dict[str, str], message: str) -> None:
    # given
    client = client_for(Role.ADMINISTRATOR)

    # when
    response = client.get("/api/customers", params)

    # then
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert response.json()["message"] == message


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page_size": 0}, {"page_size": 201}, {"page": "x"}]
)
def test_list_refuses_bad_paging(db: None, params: dict[str, Any]) -> None:
    # given
    client = client_for(Role.ADMINISTRATOR)

    # when
    response = client.get("/api/customers", params)

    # then
    assert response.status_code == 422


def test_profile_has_every_section(customer_file: CustomerFile, lake: Path) -> None:
    # given
    client = client_for(Role.OPERATIONS_MANAGER)
    customer = customer_file.customer

    # when
    response = client.get(f"/api/customers/{customer.pk}")

    # then
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == [
        "addresses",
        "consents",
        "customer",
        "events",
        "grade_history",
        "is_pii_visible",
        "may_view_audit",
        "may_view_commerce",
        "may_view_tickets",
        "orders",
        "returns",
        "reviews",
        "score",
        "shipments",
        "stats",
        "tags",
        "tickets",
        "timeline",
    ]
    assert body["score"] is None  # not scored yet
    assert body["customer"]["phone"] == "13812341234"
    assert body["customer"]["id_number"] == "110101199003074514"
    assert body["stats"] == {
        "order_count": 3,
        "total_spent": "299.00",
        "currency": "CNY",
        "return_count": 1,
        "review_count": 1,
        "average_rating": 4.0,
        "ticket_count": 1,
        "complaint_count": 1,
    }
    assert [order["external_id"] for order in body["orders"]] == ["SO-0003", "SO-0002", "SO-0001"]
    assert body["orders"][2]["lines"][1] == {
        "line_no": 2,
        "product_external_id": "",
        "product_name": "Tea set",
        "quantity": 2,
        "unit_price": "50.00",
        "amount": "100.00",
        "currency": "CNY",
    }
    assert body["orders"][2]["payments"][0]["method"] == "alipay"
    assert body["shipments"][0]["delay_days"] == 2
    assert body["tickets"][0]["subject"] == "Rice cooker arrived broken"
    assert body["may_view_audit"] is False
    assert [entry["kind"] for entry in body["timeline"]][:2] == ["order", "return"]


def test_profile_masks_pii_for_an_agent(customer_file: CustomerFile, lake: Path) -> None:
    # given
    client = client_for(Role.SERVICE_AGENT)

    # when
    response = client.get(f"/api/customers/{customer_file.customer.pk}")

    # then
    customer = response.json()["customer"]
    assert (customer["phone"], customer["email"], customer["id_number"]) == (
        "138****1234",
        "x***@example.com",
        "110***********4514",
    )
    assert response.json()["addresses"][0]["detail"] == "世纪大道10****"


def test_profile_of_a_missing_customer_is_404(db: None) -> None:
    # given
    client = client_for(Role.ADMINISTRATOR)

    # when
    response = client.get("/api/customers/999999")

    # then
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "customer 999999 does not exist",
        "details": {"customer_id": 999999},
    }


def test_orders_are_paged(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.ANALYST)

    # when
    response = client.get(
        f"/api/customers/{customer_file.customer.pk}/orders", {"page": 1, "page_size": 2}
    )

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["num_pages"]) == (3, 2)
    assert [order["external_id"] for order in body["items"]] == ["SO-0003", "SO-0002"]
    assert body["items"][1]["payments"][0]["amount"] == "1288.50"


def test_orders_are_forbidden_to_an_auditor(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.AUDITOR)

    # when
    response = client.get(f"/api/customers/{customer_file.customer.pk}/orders")

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "you do not have the permission 'commerce.view_order'",
        "details": None,
    }


def test_timeline_is_newest_first_and_limited(customer_file: CustomerFile) -> None:
    # given
    client = client_for(Role.RISK_ANALYST)

    # when
    response = client.get(f"/api/customers/{customer_file.customer.pk}/timeline", {"limit": 3})

    # then
    assert response.status_code == 200
    assert response.json() == [
        {
            "at": "2024-04-20T12:00:00Z",
            "kind": "order",
            "reference": "SO-0003",
            "labels": ["已取消 Cancelled"],
            "summary": "Tmall",
            "amount": "59.90",
            "currency": "CNY",
        },
        {
            "at": "2024-03-15T02:00:00Z",
            "kind": "return",
            "reference": "SO-0002",
            "labels": ["退货 Return", "已退款 Refunded"],
            "summary": "Damaged on arrival",
            "amount": "1288.50",
            "currency": "CNY",
        },
        {
            "at": "2024-03-14T01:00:00Z",
            "kind": "ticket",
            "reference": "TK-0001",
            "labels": ["已解决 Solved"],
            "summary": "Rice cooker arrived broken",
            "amount": None,
            "currency": "",
        },
    ]


def test_bearer_token_authenticates(customer_file: CustomerFile) -> None:
    # given
    user = make_user(Role.ANALYST)
    token = token_create(user=user)

    # when
    response = Client().get("/api/customers", {"q": "C1002"}, HTTP_AUTHORIZATION=f"Bearer {token}")

    # then
    assert response.status_code == 200
    assert [item["external_id"] for item in response.json()["items"]] == ["C1002"]


def test_anonymous_requests_are_401(customer_file: CustomerFile) -> None:
    # when
    response = Client().get("/api/customers")

    # then
    assert response.status_code == 401


def test_me_returns_the_user_roles_and_permissions(db: None) -> None:
    # given
    user = make_user(Role.SERVICE_AGENT, username="agent-li")
    client = Client()
    client.force_login(user)

    # when
    response = client.get("/api/me")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": "agent-li",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_superuser": False,
        "roles": [{"name": "service_agent", "label": "客服 Service agent"}],
        "permissions": [
            "aftersales.change_aftersalesrequest",
            "aftersales.view_aftersalesrequest",
            "certification.add_application",
            "certification.view_application",
            "commerce.view_order",
            "complaints.change_complaint",
            "complaints.view_complaint",
            "customer.change_customer",
            "customer.view_customer",
            "knowledge.add_feedback",
            "knowledge.view_article",
            "loyalty.change_pointsaccount",
            "loyalty.view_pointsaccount",
            "marketing.redeem_coupon",
            "marketing.view_coupon",
            "outbox.view_message",
            "risk.add_appeal",
            "risk.view_restriction",
            "risk.view_riskpolicy",
            "satisfaction.view_csatrequest",
            "service.change_ticket",
            "service.view_ticket",
        ],
        "may_see_pii": False,
    }


def test_me_for_an_administrator(db: None) -> None:
    # given
    user = make_user(Role.ADMINISTRATOR, username="root-wang")
    client = Client()
    client.force_login(user)

    # when
    body = client.get("/api/me").json()

    # then
    assert body["is_superuser"] is True
    assert body["may_see_pii"] is True
    assert body["roles"] == [{"name": "administrator", "label": "管理员 Administrator"}]
    assert body["permissions"] == [
        "account.change_user",
        "account.view_pii",
        "aftersales.approve_exception",
        "aftersales.change_aftersalespolicy",
        "aftersales.change_aftersalesrequest",
        "aftersales.view_aftersalesrequest",
        "audit.view_auditevent",
        "certification.add_application",
        "certification.change_application",
        "certification.change_certificationlevel",
        "certification.view_application",
        "certification.view_document",
        "commerce.view_order",
        "complaints.change_complaint",
        "complaints.view_complaint",
        "customer.change_customer",
        "customer.view_customer",
        "ingest.add_importbatch",
        "ingest.view_importbatch",
        "insight.change_target",
        "insight.view_metricvalue",
        "knowledge.add_feedback",
        "knowledge.change_article",
        "knowledge.view_article",
        "loyalty.change_loyaltypolicy",
        "loyalty.change_pointsaccount",
        "loyalty.view_pointsaccount",
        "marketing.change_campaign",
        "marketing.change_coupon",
        "marketing.change_segment",
        "marketing.redeem_coupon",
        "marketing.view_campaign",
        "marketing.view_coupon",
        "marketing.view_segment",
        "outbox.change_message",
        "outbox.view_message",
        "risk.add_appeal",
        "risk.change_alert",
        "risk.change_appeal",
        "risk.change_riskrule",
        "risk.view_alert",
        "risk.view_restriction",
        "risk.view_riskpolicy",
        "satisfaction.change_improvementplan",
        "satisfaction.change_survey",
        "satisfaction.view_csatrequest",
        "scoring.change_gradepolicy",
        "scoring.view_scorerun",
        "service.add_ticketmessage",
        "service.change_slapolicy",
        "service.change_ticket",
        "service.view_ticket",
    ]


def test_openapi_lists_the_customer_endpoints(db: None) -> None:
    # when
    response = Client().get("/api/openapi.json")

    # then
    paths = response.json()["paths"]
    assert {
        "/api/me",
        "/api/customers",
        "/api/customers/{customer_id}",
        "/api/customers/{customer_id}/orders",
        "/api/customers/{customer_id}/timeline",
    } <= set(paths)


def test_timeline_of_two_entries_is_a_list(customer_file: CustomerFile) -> None:
    # given: an auditor sees the registration, the tickets (read only) and the audit entry,
    # not the orders
    client = client_for(Role.AUDITOR)

    # when
    response = client.get(f"/api/customers/{customer_file.customer.pk}/timeline")

    # then
    assert response.status_code == 200
    assert [entry["kind"] for entry in response.json()] == ["audit", "ticket", "registration"]
