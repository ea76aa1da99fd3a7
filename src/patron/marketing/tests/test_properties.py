"""Coupons as properties: whatever sequence of issues and redemptions happens, no template
ever has more codes than its stock, no customer more than the per-customer limit, and the
discount given by a template's redeemed codes never exceeds its budget."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.errors import Conflict
from patron.marketing import services
from patron.marketing.models import Coupon
from patron.marketing.tests.factories import template

CUSTOMERS = 3
WHO = st.integers(min_value=0, max_value=CUSTOMERS - 1)
OPERATION = st.one_of(
    st.tuples(st.just("issue"), st.lists(WHO, min_size=1, max_size=4)),
    st.tuples(st.just("open"), st.integers(min_value=1, max_value=4)),
    # redeem the n-th code (modulo how many exist) by a customer, an order total in cents
    st.tuples(st.just("redeem"), st.tuples(st.integers(0, 30), WHO, st.integers(0, 40_000))),
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    operations=st.lists(OPERATION, min_size=1, max_size=12),
    stock=st.integers(min_value=1, max_value=8),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=2)),
    budget_cents=st.integers(min_value=1, max_value=20_000),
    percent=st.booleans(),
)
def test_stock_limit_and_budget_hold_whatever_happens(
    operations: list[tuple[str, Any]], stock: int, limit: int | None, budget_cents: int,
    percent: bool,
) -> None:  # fmt: skip
    with transaction.atomic():
        # given
        user = make_user(Role.ADMINISTRATOR)
        customers = [make_customer().pk for _ in range(CUSTOMERS)]
        tpl = template(
            kind="percent_off" if percent else "amount_off",
            value=Decimal("15") if percent else Decimal("30.00"),
            min_order_amount=Decimal("50.00"),
            stock=stock,
            per_customer_limit=limit,
            budget=Decimal(budget_cents) / 100,
        )

        # when
        for i, (kind, arg) in enumerate(operations):
            try:
                if kind == "issue":
                    services.coupons_issue(
                        user=user, template_id=tpl.pk, customer_ids=[customers[c] for c in arg],
                        reason="p", request_key=f"i{i}",
                    )  # fmt: skip
                elif kind == "open":
                    services.coupons_issue(
                        user=user, template_id=tpl.pk, count=arg, reason="p", request_key=f"i{i}"
                    )
                else:
                    codes = list(Coupon.objects.order_by("pk").values_list("code", flat=True))
                    if not codes:
                        continue
                    nth, who, cents = arg
                    services.coupon_redeem(
                        user=user, code=codes[nth % len(codes)], customer_id=customers[who],
                        order_total=Decimal(cents) / 100, request_key=f"r{i}",
                    )  # fmt: skip
            except Conflict:
                pass

            # then
            coupons = Coupon.objects.filter(template=tpl)
            assert coupons.count() <= stock
            if limit is not None:  # named codes: see the next test; here, redemptions
                redeemed = coupons.filter(status="redeemed").values("customer")
                assert all(r["n"] <= limit for r in redeemed.annotate(n=Count("pk")))
            given_total = coupons.filter(status="redeemed").aggregate(s=Sum("discount_amount"))
            assert tpl.budget is not None
            assert (given_total["s"] or 0) <= tpl.budget
            assert not coupons.filter(status="redeemed", discount_amount__lt=0).exists()
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests=st.lists(st.lists(WHO, min_size=1, max_size=4), min_size=1, max_size=6))
def test_issuing_never_gives_a_customer_more_than_the_limit(requests: list[list[int]]) -> None:
    with transaction.atomic():
        user = make_user(Role.MARKETER)
        customers = [make_customer().pk for _ in range(CUSTOMERS)]
        tpl = template(stock=6, per_customer_limit=2)
        for i, who in enumerate(requests):
            with contextlib.suppress(Conflict):
                services.coupons_issue(
                    user=user, template_id=tpl.pk, customer_ids=[customers[c] for c in who],
                    reason="p", request_key=f"k{i}",
                )  # fmt: skip
        held = Coupon.objects.filter(template=tpl).values("customer").annotate(n=Count("pk"))
        assert all(r["n"] <= 2 for r in held)
        assert Coupon.objects.filter(template=tpl).count() <= 6
        transaction.set_rollback(True)
