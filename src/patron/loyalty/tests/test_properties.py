"""The ledger and tier history as properties: whatever sequence of orders, reviews, refunds,
cancellations, redemptions, adjustments and expiries happens, the balance is never negative,
the entries sum to it, every lot's remaining count stays between 0 and what it earned (and the
lots sum to the balance too), and accruing twice posts nothing the second time. Tier periods
never have gaps or overlaps."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from patron.account.roles import Role
from patron.commerce.models import Order, ReturnRequest, Review
from patron.conftest import make_customer, make_order, make_user
from patron.errors import Conflict
from patron.loyalty import services, tiers
from patron.loyalty.models import PointsAccount, PointsEntry, Tier, TierMembership
from patron.scoring.models import CustomerScore, ScoreRun

CUSTOMERS = 2
WHO = st.integers(min_value=0, max_value=CUSTOMERS - 1)
OPERATION = st.one_of(
    st.tuples(st.just("order"), WHO, st.integers(min_value=1, max_value=300_000)),  # cents
    st.tuples(st.just("review"), WHO, st.booleans()),  # long enough to earn, or not
    # redemptions and adjustments as a share of the balance: over 100 % must be refused
    st.tuples(st.just("redeem"), WHO, st.integers(min_value=1, max_value=130)),
    st.tuples(st.just("refund"), st.integers(min_value=0, max_value=50), st.integers(1, 100)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=50), st.just(0)),
    st.tuples(st.just("adjust"), WHO, st.integers(min_value=-130, max_value=130)),
    st.tuples(st.just("expire"), st.just(0), st.integers(min_value=0, max_value=400)),  # days on
    st.tuples(st.just("wait"), st.just(0), st.integers(min_value=0, max_value=60)),  # days on
)


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(4, 0), tzinfo=UTC)  # noon in Shanghai


def _balance(customer_id: int) -> int:
    account = PointsAccount.objects.filter(customer_id=customer_id).first()
    return account.balance if account is not None else 0


def _snapshot() -> list[Any]:
    return list(PointsEntry.objects.order_by("id").values())


def _check_invariants() -> None:
    for account in PointsAccount.objects.all():
        rows = PointsEntry.objects.filter(account=account)
        assert account.balance >= 0
        assert (rows.aggregate(s=Sum("points"))["s"] or 0) == account.balance
        last = rows.order_by("-id").first()
        assert last is None or last.balance_after == account.balance
        lots = [
            (points, remaining or 0)
            for points, remaining in rows.filter(remaining__isnull=False).values_list(
                "points", "remaining"
            )
        ]
        assert all(0 <= remaining <= points for points, remaining in lots)
        assert sum(remaining for _, remaining in lots) == account.balance
        assert not rows.filter(balance_after__lt=0).exists()


def _accrue_twice(day: date) -> None:
    services.points_accrue(as_of=day)
    before = _snapshot()
    again = services.points_accrue(as_of=day)
    assert again.entries == 0
    assert _snapshot() == before


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    expiry_months=st.integers(min_value=1, max_value=6),
    opening=st.lists(
        st.integers(min_value=100, max_value=300_000), min_size=CUSTOMERS, max_size=CUSTOMERS
    ),
    operations=st.lists(OPERATION, min_size=1, max_size=16),
)
def test_the_ledger_keeps_its_invariants_whatever_happens(
    expiry_months: int, opening: list[int], operations: list[tuple[str, int, int]]
) -> None:
    with transaction.atomic():
        # given
        staff = make_user(Role.OPERATIONS_MANAGER, username="ops-property")
        services.loyalty_policy_save(
            user=staff, data={"expiry_months": expiry_months, "review_min_length": 5}
        )
        people = [make_customer(name=f"客户{i}") for i in range(CUSTOMERS)]
        orders: list[Order] = []
        day = date(2026, 1, 1)
        serial = itertools.count(1)
        # when / then, after every step
        steps = [("order", who, cents) for who, cents in enumerate(opening)] + operations
        for operation, target, value in steps:
            n = next(serial)
            if operation == "order":
                orders.append(
                    make_order(
                        people[target],
                        external_id=f"P-{n}",
                        placed_at=_noon(day),
                        paid_at=_noon(day),
                        total=str(Decimal(value) / 100),
                    )
                )
                _accrue_twice(day + timedelta(days=1))
            elif operation == "review":
                Review.objects.create(
                    source="shop",
                    external_id=f"R-{n}",
                    customer=people[target],
                    rating=5,
                    text="很好很好很好" if value else "好",
                    created_at=_noon(day),
                )
                _accrue_twice(day + timedelta(days=1))
            elif operation == "refund" and orders:
                order = orders[target % len(orders)]
                ReturnRequest.objects.create(
                    source="shop",
                    external_id=f"T-{n}",
                    order=order,
                    status="refunded",
                    requested_at=_noon(day),
                    resolved_at=_noon(day),
                    refund_amount=(order.total_amount * value / 100).quantize(Decimal("0.01")),
                )
                _accrue_twice(day + timedelta(days=1))
            elif operation == "cancel" and orders:
                order = orders[target % len(orders)]
                Order.objects.filter(pk=order.pk).update(
                    status="cancelled", cancelled_at=_noon(day)
                )
                _accrue_twice(day + timedelta(days=1))
            elif operation == "redeem":
                held = _balance(people[target].pk)
                points = max(1, held * value // 100)
                try:
                    services.points_redeem(
                        user=staff,
                        customer_id=people[target].pk,
                        points=points,
                        reason="兑换",
                        request_key=f"k-{n}",
                    )
                    assert held >= points
                    event("redeemed")
                except Conflict:
                    assert held < points
                    assert not PointsEntry.objects.filter(idempotency_key__endswith=f":k-{n}")
                    event("redemption refused")
            elif operation == "adjust" and value != 0:
                held = _balance(people[target].pk)
                points = (held or 100) * value // 100 or value
                try:
                    services.points_adjust(
                        user=staff, customer_id=people[target].pk, points=points, reason="调整"
                    )
                    assert points > 0 or held >= -points
                except Conflict:
                    assert points < 0 and held < -points
                    event("adjustment refused")
            elif operation == "expire":
                day += timedelta(days=value)
                if services.points_expire(as_of=day).lots:
                    event("lots expired")
                assert not PointsEntry.objects.filter(remaining__gt=0, expires_on__lte=day)
            elif operation == "wait":
                day += timedelta(days=value)
            _check_invariants()
        if PointsEntry.objects.filter(shortfall__gt=0).exists():
            event("a reversal stopped at zero")
        transaction.set_rollback(True)


GRADES = st.sampled_from(["", "ordinary", "potential", "core"])
TIER_STEP = st.tuples(
    st.integers(min_value=0, max_value=90),  # days after the previous evaluation (0: same day)
    st.lists(  # per customer: spend added that day (CNY) and grade
        st.tuples(st.integers(min_value=0, max_value=6_000), GRADES),
        min_size=3,
        max_size=3,
    ),
)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(TIER_STEP, min_size=1, max_size=8))
def test_tier_history_never_has_gaps_or_overlaps(
    steps: list[tuple[int, list[tuple[int, str]]]],
) -> None:
    with transaction.atomic():
        # given
        people = [make_customer(name=f"会员{i}") for i in range(3)]
        run = ScoreRun.objects.create(
            as_of=date(2026, 1, 1), status="completed", started_at=timezone.now()
        )
        day = date(2026, 1, 1)
        serial = itertools.count(1)
        first_day = None
        # when
        for gap, changes in steps:
            day += timedelta(days=gap)
            first_day = first_day or day
            for person, (amount, grade) in zip(people, changes, strict=True):
                if amount:
                    paid_on = _noon(day - timedelta(days=1))
                    make_order(
                        person,
                        external_id=f"S-{next(serial)}",
                        placed_at=paid_on,
                        paid_at=paid_on,
                        total=str(amount),
                    )
                CustomerScore.objects.update_or_create(
                    customer=person, defaults={"run": run, "as_of": day, "grade": grade}
                )
            tiers.tiers_evaluate(as_of=day)
        # then
        ranks = dict(Tier.objects.values_list("code", "rank"))
        for person in people:
            history = tiers.tier_history(person.pk)
            assert history[0].valid_from == first_day and history[0].move == "join"
            for earlier, later in itertools.pairwise(history):
                assert earlier.valid_to == later.valid_from
                assert earlier.valid_from < earlier.valid_to
                assert earlier.tier_id != later.tier_id
                direction = "up" if ranks[later.tier.code] > ranks[earlier.tier.code] else "down"
                assert later.move == direction
            assert history[-1].valid_to is None
            assert (
                TierMembership.objects.filter(customer=person, valid_to__isnull=True).count() == 1
            )
            held = history[-1]
            if held.below_since is not None:
                assert held.below_since <= day
                grace = held.tier.grace_days
                assert (day - held.below_since).days < grace or held.valid_from == day
        transaction.set_rollback(True)
