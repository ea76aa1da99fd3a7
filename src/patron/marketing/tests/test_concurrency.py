"""Real parallel issues and redemptions, each thread on its own database connection
(PostgreSQL only: SQLite serialises writers, so there is no race to lose there).

One code redeemed from several checkouts at once is redeemed once; issuing from several
workers against a stock of K issues exactly K codes; redemptions of different codes against a
small budget never give away more than the budget.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from patron.account.roles import Role
from patron.conftest import make_customer, make_user, race, require_postgresql
from patron.errors import Conflict
from patron.marketing import services
from patron.marketing.models import Coupon
from patron.marketing.tests.factories import template

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_one_code_redeemed_at_once_from_many_checkouts_is_redeemed_once() -> None:
    require_postgresql()
    # given
    marketer = make_user(Role.MARKETER, username="race-marketer")
    checkouts = [make_user(Role.INTEGRATION, username=f"checkout-{i}") for i in range(THREADS)]
    customer = make_customer(name="并发券客户")
    tpl = template(min_order_amount=Decimal("0"))
    (coupon,) = services.coupons_issue(
        user=marketer,
        template_id=tpl.pk,
        customer_ids=[customer.pk],
        reason="r",
        request_key="race-1",
    )

    # when: eight different orders try the same code
    results = race(
        *[
            (
                lambda user=user, i=i: services.coupon_redeem(
                    user=user,
                    code=coupon.code,
                    order_total=Decimal("300.00"),
                    customer_id=customer.pk,
                    request_key=f"order-{i}",
                )
            )
            for i, user in enumerate(checkouts)
        ]
    )

    # then
    redeemed = [r for r in results if isinstance(r, Coupon)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(redeemed), len(refused)) == (1, THREADS - 1), results
    assert all(r.message == f"coupon {coupon.code}: it is redeemed" for r in refused)
    coupon.refresh_from_db()
    assert (coupon.status, coupon.discount_amount) == ("redeemed", Decimal("20.00"))


@pytest.mark.django_db(transaction=True)
def test_parallel_issues_never_exceed_the_stock() -> None:
    require_postgresql()
    # given: a stock of 5; eight workers each issue 2 open codes
    workers = [make_user(Role.MARKETER, username=f"issuer-{i}") for i in range(THREADS)]
    tpl = template(stock=5, per_customer_limit=None)

    # when
    results = race(
        *[
            (
                lambda user=user, i=i: services.coupons_issue(
                    user=user,
                    template_id=tpl.pk,
                    count=1 if i % 2 else 2,
                    reason="r",
                    request_key=f"issue-{i}",
                )
            )
            for i, user in enumerate(workers)
        ]
    )

    # then: exactly the stock was issued, every refusal names it
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, Conflict)]
    assert not unexpected, unexpected
    assert all("stock:" in r.message for r in results if isinstance(r, Conflict))
    issued = sum(len(r) for r in results if isinstance(r, list))
    assert issued == Coupon.objects.filter(template=tpl).count() <= 5
    assert Coupon.objects.filter(template=tpl).values("code").distinct().count() == issued
    # eight requests of 1 or 2 codes against 5: the last ones always find it full
    assert issued >= 4


@pytest.mark.django_db(transaction=True)
def test_parallel_issues_of_exactly_the_stock_issue_it_all() -> None:
    require_postgresql()
    workers = [make_user(Role.MARKETER, username=f"exact-{i}") for i in range(THREADS)]
    tpl = template(stock=5, per_customer_limit=None)
    results = race(
        *[
            (
                lambda user=user, i=i: services.coupons_issue(
                    user=user, template_id=tpl.pk, count=1, reason="r", request_key=f"one-{i}"
                )
            )
            for i, user in enumerate(workers)
        ]
    )
    assert sum(1 for r in results if isinstance(r, list)) == 5
    assert sum(1 for r in results if isinstance(r, Conflict)) == THREADS - 5
    assert Coupon.objects.filter(template=tpl).count() == 5


@pytest.mark.django_db(transaction=True)
def test_parallel_redemptions_of_different_codes_stay_within_the_budget() -> None:
    require_postgresql()
    # given: a budget of 50 for codes worth 20 each: at most two fit
    marketer = make_user(Role.MARKETER, username="budget-marketer")
    checkout = make_user(Role.INTEGRATION, username="budget-checkout")
    customers = [make_customer(name=f"预算{i}") for i in range(THREADS)]
    tpl = template(min_order_amount=Decimal("0"), budget=Decimal("50.00"))
    coupons = services.coupons_issue(
        user=marketer,
        template_id=tpl.pk,
        customer_ids=[c.pk for c in customers],
        reason="r",
        request_key="budget-issue",
    )

    # when
    results = race(
        *[
            (
                lambda coupon=coupon: services.coupon_redeem(
                    user=checkout,
                    code=coupon.code,
                    order_total=Decimal("100.00"),
                    customer_id=coupon.customer_id,
                    request_key=f"pay-{coupon.code}",
                )
            )
            for coupon in coupons
        ]
    )

    # then
    redeemed = [r for r in results if isinstance(r, Coupon)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(redeemed), len(refused)) == (2, THREADS - 2), results
    assert all("the budget of 50.00 would be exceeded" in r.message for r in refused)
    given = Coupon.objects.filter(template=tpl, status="redeemed").aggregate(
        s=Sum("discount_amount")
    )["s"]
    assert given == Decimal("40.00")
    assert tpl.budget is not None and given <= tpl.budget
