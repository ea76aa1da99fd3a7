"""``GET /api/customers/{id}/recommendations``: the answer, its errors, and who may ask (a role
matrix written out, so that a change of rights shows up as a failing line here)."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.account.services import token_create
from patron.conftest import ALL_ROLES, NO_ROLE, make_customer, make_user
from patron.recommend.services import recommendations_refresh
from patron.recommend.tests.conftest import AS_OF, TeaShop

# the refresh reads orders and events through ADBC on PostgreSQL: it sees committed rows only
pytestmark = pytest.mark.django_db(transaction=True)

#: Suggestions come from purchases and browsing: customer and commerce view rights.
ALLOWED = {
    Role.ADMINISTRATOR.value,
    Role.OPERATIONS_MANAGER.value,
    Role.SERVICE_AGENT.value,
    Role.RISK_ANALYST.value,
    Role.MARKETER.value,
    Role.ANALYST.value,
}


def _client(role: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token_create(user=make_user(role))}"})


@pytest.mark.parametrize("role", [*ALL_ROLES, NO_ROLE])
def test_who_may_read_a_customers_suggestions(role: str, tea_shop: TeaShop) -> None:
    # given
    customer = tea_shop.customers["丁"]
    # when
    response = _client(role).get(f"/api/customers/{customer.pk}/recommendations")
    # then
    assert response.status_code == (200 if role in ALLOWED else 403)
    if role not in ALLOWED:
        assert response.json()["code"] == "permission_denied"


def test_anonymous_requests_are_refused(tea_shop: TeaShop) -> None:
    response = Client().get(f"/api/customers/{tea_shop.customers['丁'].pk}/recommendations")
    assert response.status_code == 401


def test_the_answer_names_the_products_and_why(tea_shop: TeaShop) -> None:
    # given
    recommendations_refresh(as_of=AS_OF, k=5)
    customer = tea_shop.customers["丁"]
    # when
    response = _client(Role.MARKETER.value).get(
        f"/api/customers/{customer.pk}/recommendations?k=2", headers={"Accept-Language": "en"}
    )
    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["customer_id"], body["is_personal"], body["as_of"]) == (
        customer.pk,
        True,
        "2026-03-01T00:00:00Z",
    )
    assert body["items"] == [
        {
            "rank": 1,
            "product_id": tea_shop.products["茶叶"].pk,
            "product_ref": "P2",
            "name": "茶叶",
            "score": pytest.approx(0.6),
            "basis": "together",
            "reason": "Bought with 茶杯 by 2 customers",
        },
        {
            "rank": 2,
            "product_id": tea_shop.products["茶壶"].pk,
            "product_ref": "P3",
            "name": "茶壶",
            "score": 0.25,
            "basis": "together",
            "reason": "Bought with 茶杯 by 1 customer",
        },
    ]


def test_reasons_follow_the_readers_language(tea_shop: TeaShop) -> None:
    recommendations_refresh(as_of=AS_OF, k=1)
    response = _client(Role.MARKETER.value).get(
        f"/api/customers/{tea_shop.customers['丁'].pk}/recommendations?k=1",
        headers={"Accept-Language": "zh-hans"},
    )
    assert response.json()["items"][0]["reason"] == "与「茶杯」一起被 2 位顾客购买"


def test_a_customer_without_history_gets_the_best_sellers(tea_shop: TeaShop) -> None:
    recommendations_refresh(as_of=AS_OF, k=3)
    response = _client(Role.MARKETER.value).get(
        f"/api/customers/{tea_shop.customers['戊'].pk}/recommendations"
    )
    body = response.json()
    assert body["is_personal"] is False
    assert [item["name"] for item in body["items"]] == ["茶杯", "茶叶", "茶壶"]


def test_before_the_first_refresh_the_list_is_empty() -> None:
    customer = make_customer(name="新客")
    response = _client(Role.MARKETER.value).get(f"/api/customers/{customer.pk}/recommendations")
    assert response.status_code == 200
    assert response.json() == {
        "customer_id": customer.pk,
        "is_personal": False,
        "computed_at": None,
        "as_of": None,
        "items": [],
    }


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/customers/999999/recommendations", 404),
        ("/api/customers/{pk}/recommendations?k=0", 422),
        ("/api/customers/{pk}/recommendations?k=11", 422),
        ("/api/customers/{pk}/recommendations?k=two", 422),
    ],
)
def test_errors(url: str, status: int, tea_shop: TeaShop) -> None:
    response = _client(Role.MARKETER.value).get(url.format(pk=tea_shop.customers["丁"].pk))
    assert response.status_code == status
