"""The after-sales API as staff and integrations use it: filing (422 naming the field), each step,
the policy, the exceptions — and the permission matrix, role by role (403 and nothing changed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.aftersales import services
from patron.aftersales.models import AfterSalesPolicy, AfterSalesRequest, Refund
from patron.aftersales.tests.conftest import Shop, file_return, make_shop
from patron.conftest import ALL_ROLES, NO_ROLE, make_user

pytestmark = pytest.mark.django_db

EVERY_ROLE = [*ALL_ROLES, NO_ROLE]
VIEWERS = {"administrator", "operations_manager", "service_agent", "auditor", "analyst"}
HANDLERS = {"administrator", "operations_manager", "service_agent"}
SUPERVISORS = {"administrator", "operations_manager"}


def _client(user: User) -> Client:
    return Client(
        headers={"Authorization": f"Bearer {token_create(user=user)}", "Accept-Language": "en"}
    )


def _post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, body or {}, content_type="application/json")


def _filing(shop: Shop, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": shop.customer.pk,
        "order_id": shop.order.pk,
        "kind": "return",
        "reason_code": "no_reason",
        "reason": "颜色不喜欢",
        "lines": [{"order_line_id": shop.dress.pk, "quantity": 1}],
    }
    body.update(changes)
    return body


def test_a_return_through_the_api_from_filing_to_closure(shop: Shop) -> None:
    # given
    agent = _client(make_user(Role.SERVICE_AGENT))
    # when
    created = _post(agent, "/api/aftersales/returns", _filing(shop, lines=[
        {"order_line_id": shop.dress.pk, "quantity": 2}
    ]))  # fmt: skip
    number = created.json()["id"]
    base = f"/api/aftersales/returns/{number}"
    approved = _post(agent, f"{base}/approve", {"reason": "OK"})
    received = _post(agent, f"{base}/receive", {"note": "完好"})
    partial = _post(agent, f"{base}/refund", {"amount": "100.00", "method": "alipay"})
    too_much = _post(agent, f"{base}/refund", {"amount": "200.01"})
    rest = _post(agent, f"{base}/refund", {"amount": "200.00"})
    closed = _post(agent, f"{base}/close", {})
    # then
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["kind"], body["status"], body["is_within_policy"], body["channel"]) == (
        "return",
        "requested",
        True,
        "api",
    )
    assert body["lines"][0]["paid_amount"] == "300.00"
    assert body["allowed_actions"] == ["approve", "reject", "cancel"]
    assert approved.json()["status"] == "awaiting_goods"
    assert received.json()["status"] == "received"
    assert (partial.json()["refunded"], partial.json()["refundable"]) == ("100.00", "200.00")
    assert too_much.status_code == 409
    assert too_much.json()["details"] == {"refundable": "200.00"}
    assert rest.json()["refundable"] == "0.00"
    assert closed.json()["status"] == "closed"
    assert [e["action"] for e in closed.json()["events"]] == [
        "file",
        "approve",
        "await_goods",
        "receive",
        "refund",
        "refund",
        "close",
    ]


def test_the_queue_filters_by_kind_status_and_policy(shop: Shop) -> None:
    # given
    agent_user = make_user(Role.SERVICE_AGENT)
    inside = file_return(agent_user, shop)
    late_shop_request = file_return(
        agent_user, _late_shop(), kind="exchange", reason_code="size_or_fit"
    )
    client = _client(agent_user)
    # when
    everything = client.get("/api/aftersales/returns").json()
    outside = client.get("/api/aftersales/returns?outside_policy=true").json()
    exchanges = client.get("/api/aftersales/returns?kind=exchange&status=requested").json()
    closed = client.get("/api/aftersales/returns?status=closed").json()
    # then
    assert everything["count"] == 2
    assert [row["id"] for row in outside["items"]] == [late_shop_request.pk]
    assert [row["id"] for row in exchanges["items"]] == [late_shop_request.pk]
    assert closed == {"count": 0, "items": []}
    assert {row["id"] for row in everything["items"]} == {inside.pk, late_shop_request.pk}


def _late_shop() -> Shop:
    shop = make_shop(delivered_at=timezone.now() - timedelta(days=40))
    return shop


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lines": [{"order_line_id": -1, "quantity": 1}]}, "body.body.lines.0.order_line_id"),
        ({"kind": "refund"}, "body.body.kind"),
        ({"reason_code": "bored"}, "body.body.reason_code"),
        ({"lines": []}, "body.body.lines"),
        ({"requested_amount": "1.001"}, "body.body.requested_amount"),
        ({"reason": "坏\x00了"}, "body.body.reason"),
    ],
)
def test_a_malformed_request_is_422_naming_the_field(
    shop: Shop, changes: dict[str, Any], field: str
) -> None:
    # when
    response = _post(
        _client(make_user(Role.SERVICE_AGENT)), "/api/aftersales/returns", _filing(shop, **changes)
    )
    # then
    assert response.status_code == 422
    assert field in response.json()["message"]
    assert not AfterSalesRequest.objects.exists()


def test_a_request_that_does_not_fit_the_order_is_422_naming_the_field(shop: Shop) -> None:
    # given
    client = _client(make_user(Role.SERVICE_AGENT))
    # when
    too_many = _post(client, "/api/aftersales/returns", _filing(shop, lines=[
        {"order_line_id": shop.dress.pk, "quantity": 3}
    ]))  # fmt: skip
    wrong_line = _post(client, "/api/aftersales/returns", _filing(shop, lines=[
        {"order_line_id": shop.dress.pk + 1000, "quantity": 1}
    ]))  # fmt: skip
    not_theirs = _post(client, "/api/aftersales/returns", _filing(shop, customer_id=shop.other.pk))
    # then
    assert too_many.status_code == 422
    assert too_many.json()["message"].startswith("lines.0.quantity: at most 2 of order line")
    assert too_many.json()["details"] == {"field": "lines.0.quantity", "available": 2}
    assert wrong_line.json()["details"] == {"field": "lines.0.order_line_id"}
    assert not_theirs.json()["message"] == (
        f"order_id: order SO-9001 is not customer {shop.other.pk}'s"
    )
    assert not AfterSalesRequest.objects.exists()


def test_a_decision_needs_a_real_reason(shop: Shop) -> None:
    # given
    request = file_return(make_user(Role.SERVICE_AGENT), shop)
    client = _client(make_user(Role.SERVICE_AGENT))
    # when
    blank = _post(client, f"/api/aftersales/returns/{request.pk}/reject", {"reason": "   "})
    missing = _post(client, f"/api/aftersales/returns/{request.pk}/reject", {})
    # then
    assert (blank.status_code, missing.status_code) == (422, 422)
    request.refresh_from_db()
    assert request.status == "requested"


def test_an_unknown_request_is_404_and_a_step_out_of_order_409(shop: Shop) -> None:
    # given
    request = file_return(make_user(Role.SERVICE_AGENT), shop)
    client = _client(make_user(Role.SERVICE_AGENT))
    # when
    unknown = client.get("/api/aftersales/returns/999999")
    early = _post(client, f"/api/aftersales/returns/{request.pk}/receive", {})
    # then
    assert unknown.status_code == 404
    assert early.status_code == 409
    assert early.json()["message"] == (
        "the return request is requested: cannot receive; allowed: approve, cancel, reject"
    )


def test_the_appeal_is_decided_by_another_person(shop: Shop) -> None:
    # given
    first = make_user(Role.SERVICE_AGENT)
    request = file_return(first, shop)
    services.aftersales_reject(user=first, request_id=request.pk, reason="不符合")
    client_first = _client(first)
    appealed = _post(
        client_first, f"/api/aftersales/returns/{request.pk}/appeal", {"reason": "有质量问题"}
    )
    # when
    same = _post(client_first, f"/api/aftersales/returns/{request.pk}/decide-appeal", {
        "decision": "approve", "reason": "同意"
    })  # fmt: skip
    other = _post(_client(make_user(Role.SERVICE_AGENT)), f"/api/aftersales/returns/{request.pk}/decide-appeal", {
        "decision": "reject", "reason": "维持"
    })  # fmt: skip
    # then
    assert appealed.json()["status"] == "appealed"
    assert same.status_code == 403
    assert other.json()["status"] == "rejected"
    assert other.json()["allowed_actions"] == []


def test_policies_are_listed_and_edited(shop: Shop) -> None:
    # given
    manager = _client(make_user(Role.OPERATIONS_MANAGER))
    policy = AfterSalesPolicy.objects.get(kind="compensation", category_code="")
    # when
    listed = manager.get("/api/aftersales/policies").json()
    edited = manager.patch(
        f"/api/aftersales/policies/{policy.pk}",
        {"max_compensation": None, "days_after_delivery": 45},
        content_type="application/json",
    )
    added = _post(manager, "/api/aftersales/policies", {
        "kind": "return", "category_code": "CAT01", "days_after_delivery": 15
    })  # fmt: skip
    again = _post(manager, "/api/aftersales/policies", {
        "kind": "return", "category_code": "CAT01", "days_after_delivery": 15
    })  # fmt: skip
    # then
    assert [(p["kind"], p["days_after_delivery"]) for p in listed] == [
        ("return", 7),
        ("exchange", 30),
        ("repair", 365),
        ("compensation", 30),
    ]
    assert (edited.json()["max_compensation"], edited.json()["days_after_delivery"]) == (None, 45)
    assert (added.status_code, added.json()["category_code"]) == (201, "CAT01")
    assert again.status_code == 409


def test_the_spec_names_the_returns_collection() -> None:
    from patron.api import api

    paths = api.get_openapi_schema()["paths"]
    assert "/api/aftersales/returns" in paths
    assert "/api/aftersales/returns/{request_id}/decide-appeal" in paths
    assert paths["/api/aftersales/carrier-events"]["post"].get("security") in (None, [])


# ---------------------------------------------------------------------- permissions


def _list(client: Client, shop: Shop) -> Any:
    return client.get("/api/aftersales/returns")


def _get(client: Client, shop: Shop) -> Any:
    request = file_return(make_user(Role.SERVICE_AGENT), shop)
    return client.get(f"/api/aftersales/returns/{request.pk}")


def _create(client: Client, shop: Shop) -> Any:
    return _post(client, "/api/aftersales/returns", _filing(shop))


def _approve(client: Client, shop: Shop) -> Any:
    request = file_return(make_user(Role.SERVICE_AGENT), shop)
    return _post(client, f"/api/aftersales/returns/{request.pk}/approve", {})


def _approve_exception(client: Client, shop: Shop) -> Any:
    late = _late_shop()
    request = file_return(make_user(Role.SERVICE_AGENT), late)
    return _post(
        client, f"/api/aftersales/returns/{request.pk}/approve", {"exception_reason": "老客户"}
    )


def _refund(client: Client, shop: Shop) -> Any:
    agent = make_user(Role.SERVICE_AGENT)
    request = file_return(agent, shop)
    services.aftersales_approve(user=agent, request_id=request.pk)
    services.aftersales_receive(user=agent, request_id=request.pk)
    return _post(client, f"/api/aftersales/returns/{request.pk}/refund", {"amount": "150.00"})


def _decide_appeal(client: Client, shop: Shop) -> Any:
    agent = make_user(Role.SERVICE_AGENT)
    request = file_return(agent, shop)
    services.aftersales_reject(user=agent, request_id=request.pk, reason="不符合")
    services.aftersales_appeal(user=agent, request_id=request.pk, reason="请复核")
    return _post(
        client,
        f"/api/aftersales/returns/{request.pk}/decide-appeal",
        {"decision": "approve", "reason": "复核同意"},
    )


def _policies(client: Client, shop: Shop) -> Any:
    return client.get("/api/aftersales/policies")


def _edit_policy(client: Client, shop: Shop) -> Any:
    policy = AfterSalesPolicy.objects.get(kind="return", category_code="")
    return client.patch(
        f"/api/aftersales/policies/{policy.pk}",
        {"days_after_delivery": 10},
        content_type="application/json",
    )


def _exceptions(client: Client, shop: Shop) -> Any:
    return client.get("/api/aftersales/exceptions")


def _unchanged(action: str) -> bool:
    if action == "create":
        return not AfterSalesRequest.objects.exists()
    if action in ("approve", "approve_exception"):
        return AfterSalesRequest.objects.get().status == "requested"
    if action == "refund":
        return not Refund.objects.exists() and AfterSalesRequest.objects.get().status == "received"
    if action == "decide_appeal":
        return AfterSalesRequest.objects.get().status == "appealed"
    if action == "edit_policy":
        return (
            AfterSalesPolicy.objects.get(kind="return", category_code="").days_after_delivery == 7
        )
    return True


ACTIONS: dict[str, tuple[Callable[[Client, Shop], Any], int, set[str]]] = {
    "list": (_list, 200, VIEWERS),
    "get": (_get, 200, VIEWERS),
    "create": (_create, 201, HANDLERS),
    "approve": (_approve, 200, HANDLERS),
    "approve_exception": (_approve_exception, 200, SUPERVISORS),
    "refund": (_refund, 200, HANDLERS),
    "decide_appeal": (_decide_appeal, 200, HANDLERS),
    "policies": (_policies, 200, VIEWERS),
    "edit_policy": (_edit_policy, 200, SUPERVISORS),
    "exceptions": (_exceptions, 200, VIEWERS),
}


@pytest.mark.parametrize("role", EVERY_ROLE)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_permission_matrix(shop: Shop, action: str, role: str) -> None:
    # given
    call, success, allowed = ACTIONS[action]
    client = _client(make_user(role))
    # when
    response = call(client, shop)
    # then
    if role in allowed:
        assert response.status_code == success, response.json()
    else:
        assert response.status_code == 403, response.json()
        assert response.json()["code"] == "permission_denied"
        assert _unchanged(action)


def test_anonymous_callers_get_401() -> None:
    # when
    response = Client().get("/api/aftersales/returns")
    # then
    assert response.status_code == 401
