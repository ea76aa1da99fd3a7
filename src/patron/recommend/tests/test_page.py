"""The customer page shows a "Suggested products" panel to those who may see them."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_user
from patron.recommend.services import recommendations_refresh
from patron.recommend.tests.conftest import AS_OF, TeaShop

# the refresh reads orders and events through ADBC on PostgreSQL: it sees committed rows only
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("role", "shown"), [(Role.SERVICE_AGENT, True), (Role.AUDITOR, False)])
def test_the_customer_page_has_a_suggestions_panel(
    role: Role, shown: bool, tea_shop: TeaShop
) -> None:
    # given
    recommendations_refresh(as_of=AS_OF, k=3)
    client = Client()
    client.force_login(make_user(role))
    # when
    response = client.get(
        f"/customers/{tea_shop.customers['丁'].pk}/", headers={"Accept-Language": "en"}
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert ('data-testid="recommendations"' in html) is shown
    if shown:
        assert html.count('data-testid="suggestion"') == 3
        assert "茶叶" in html
        assert "Bought with 茶杯 by 2 customers" in html


def test_before_the_first_refresh_the_panel_says_so(tea_shop: TeaShop) -> None:
    client = Client()
    client.force_login(make_user(Role.SERVICE_AGENT))
    html = client.get(
        f"/customers/{tea_shop.customers['丁'].pk}/", headers={"Accept-Language": "en"}
    ).content.decode()
    assert "No suggestions yet" in html
