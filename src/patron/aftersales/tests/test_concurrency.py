"""Real parallel refunds and filings, each thread on its own database connection (PostgreSQL
only: SQLite serialises writers, so there is no race to lose there).

Refunds racing on one request, or on two requests sharing an order line, never pay back more
than the line was paid; two filings racing for the last units cannot both take them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from patron.account.roles import Role
from patron.aftersales import services
from patron.aftersales.models import AfterSalesRequest, Refund
from patron.aftersales.tests.conftest import file_return, make_shop
from patron.conftest import make_user, race, require_postgresql
from patron.errors import Conflict, ValidationFailed

THREADS = 8


def _refunded() -> Decimal:
    return Refund.objects.aggregate(s=Sum("amount"))["s"] or Decimal("0")


@pytest.mark.django_db(transaction=True)
def test_parallel_refunds_never_pay_back_more_than_was_paid() -> None:
    require_postgresql()
    services.policies_seed()
    # given: both dresses (300.00) returned and received; eight agents refund 60.00 at once
    shop = make_shop(delivered_at=timezone.now())
    agents = [make_user(Role.SERVICE_AGENT, username=f"agent-{i}") for i in range(THREADS)]
    request = file_return(agents[0], shop, quantity=2)
    services.aftersales_approve(user=agents[0], request_id=request.pk)
    services.aftersales_receive(user=agents[0], request_id=request.pk)
    # when
    results = race(
        *[
            (
                lambda agent=agent: services.aftersales_refund(
                    user=agent, request_id=request.pk, amount="60.00"
                )
            )
            for agent in agents
        ]
    )
    # then: exactly five succeed, three are refused naming what is left
    paid = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(paid), len(refused)) == (5, 3), results
    assert all(r.details == {"refundable": "0.00"} for r in refused)
    assert _refunded() == Decimal("300.00")


@pytest.mark.django_db(transaction=True)
def test_two_requests_on_one_line_racing_to_refund_share_its_paid_amount() -> None:
    require_postgresql()
    services.policies_seed()
    # given: a compensation of 100.00 and a return of both dresses (300.00) on the same line
    shop = make_shop(delivered_at=timezone.now())
    first, second = (make_user(Role.SERVICE_AGENT, username=f"agent-{i}") for i in range(2))
    compensation = file_return(
        first, shop, kind="compensation", reason_code="defective", amount=Decimal("100.00")
    )
    services.aftersales_approve(user=first, request_id=compensation.pk)
    returned = file_return(first, shop, quantity=2)
    services.aftersales_approve(user=first, request_id=returned.pk)
    services.aftersales_receive(user=first, request_id=returned.pk)
    # when
    results = race(
        lambda: services.aftersales_refund(user=first, request_id=compensation.pk, amount="100.00"),
        lambda: services.aftersales_refund(user=second, request_id=returned.pk, amount="300.00"),
    )
    # then: one of the two, never both (400.00 > 300.00 paid)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Refund"], results
    assert _refunded() <= Decimal("300.00")


@pytest.mark.django_db(transaction=True)
def test_two_filings_racing_for_the_last_units_cannot_both_take_them() -> None:
    require_postgresql()
    services.policies_seed()
    # given
    shop = make_shop(delivered_at=timezone.now())
    agents = [make_user(Role.SERVICE_AGENT, username=f"agent-{i}") for i in range(4)]
    # when
    results = race(
        *[(lambda agent=agent: file_return(agent, shop, quantity=2)) for agent in agents]
    )
    # then
    filed = [r for r in results if isinstance(r, AfterSalesRequest)]
    refused = [r for r in results if isinstance(r, ValidationFailed)]
    assert (len(filed), len(refused)) == (1, 3), results
    assert all(r.details["field"] == "lines.0.quantity" for r in refused)
