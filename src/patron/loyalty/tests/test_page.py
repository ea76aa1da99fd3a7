"""The customer page shows points and tier to the roles that may see them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.roles import Role
from patron.conftest import make_customer, make_order, make_user
from patron.loyalty.services import points_accrue
from patron.loyalty.tiers import tiers_evaluate, tiers_seed

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "shown"), [(Role.SERVICE_AGENT, True), (Role.RISK_ANALYST, False)]
)
def test_the_customer_page_has_a_points_card(role: Role, shown: bool) -> None:
    # given a customer who paid ¥358.80 ten days ago
    customer = make_customer(name="王小明")
    paid = timezone.now() - timedelta(days=10)
    make_order(customer, external_id="O1", placed_at=paid, paid_at=paid, total="358.80")
    points_accrue()
    tiers_seed()
    tiers_evaluate()
    client = Client()
    client.force_login(make_user(role))
    # when
    html = client.get(f"/customers/{customer.pk}/").content.decode()
    # then
    assert ('data-testid="loyalty"' in html) is shown
    if shown:
        assert 'data-testid="points-balance">358<' in html
        assert 'data-testid="tier-badge"' in html
