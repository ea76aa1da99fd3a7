"""The points ledger through its services, with exact figures: accrual from orders, reviews,
refunds and cancellations; redemption and adjustment; expiry; the policy."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.commerce.models import Order, ReturnRequest, Review
from patron.conftest import at, make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.loyalty import rules, services
from patron.loyalty.models import LoyaltyPolicy, PointsAccount, PointsEntry

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 3, 1)


def paid(customer: Customer, external_id: str, when: str, total: str, **fields: Any) -> Order:
    return make_order(
        customer,
        external_id=external_id,
        placed_at=at(when),
        paid_at=at(when),
        total=total,
        **fields,
    )


def refund(order: Order, external_id: str, when: str, amount: str, **fields: Any) -> ReturnRequest:
    values: dict[str, Any] = {"status": ReturnRequest.Status.REFUNDED}
    values.update(fields)
    return ReturnRequest.objects.create(
        source="shop",
        external_id=external_id,
        order=order,
        requested_at=at(when),
        resolved_at=at(when),
        refund_amount=Decimal(amount),
        **values,
    )


def review(customer: Customer, external_id: str, when: str, text: str) -> Review:
    return Review.objects.create(
        source="shop",
        external_id=external_id,
        customer=customer,
        rating=5,
        text=text,
        created_at=at(when),
    )


def balance(customer: Customer) -> int:
    return PointsAccount.objects.get(customer=customer).balance


def entries(customer: Customer) -> list[tuple[str, int, int]]:
    """(kind, points, balance after) in posting order."""
    return list(
        PointsEntry.objects.filter(account__customer=customer)
        .order_by("id")
        .values_list("kind", "points", "balance_after")
    )


def lot_of(order: Order) -> PointsEntry:
    return PointsEntry.objects.get(kind="earn_order", source_id=order.pk)


@pytest.fixture
def agent() -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-chen")


@pytest.fixture
def customer() -> Customer:
    return make_customer(name="张三")


@pytest.fixture
def history(customer: Customer) -> dict[str, Any]:
    """张三: two paid orders and a long review count; the rest does not."""
    other = make_customer(name="李四")
    return {
        "first": paid(customer, "SO-1", "2026-01-10 02:00", "299.00"),
        "second": paid(customer, "SO-2", "2026-02-05 02:00", "1288.50", status="returned"),
        "unpaid": make_order(
            customer, external_id="SO-3", placed_at=at("2026-02-06 02:00"), total="50.00"
        ),
        "cancelled": paid(customer, "SO-4", "2026-02-07 02:00", "80.00", status="cancelled"),
        "dollars": paid(customer, "SO-5", "2026-02-08 02:00", "70.00", currency="USD"),
        "later": paid(customer, "SO-6", "2026-03-01 02:00", "500.00"),  # after AS_OF (UTC+8)
        "review": review(
            customer, "RV-1", "2026-02-10 02:00", "围巾质量很好，颜色和图片一样，推荐购买"
        ),
        "short_review": review(customer, "RV-2", "2026-02-11 02:00", "好评"),
        "other": paid(other, "SO-7", "2026-01-20 02:00", "10.50"),
    }


# ---------------------------------------------------------------------- accrual


def test_paid_orders_and_long_reviews_earn_points(
    customer: Customer, history: dict[str, Any]
) -> None:
    # when
    result = services.points_accrue(as_of=AS_OF)
    # then
    assert (result.orders_credited, result.reviews_credited) == (3, 1)
    assert result.points_earned == 299 + 1288 + 10 + 10 and result.accounts == 2
    assert entries(customer) == [
        ("earn_order", 299, 299),
        ("earn_order", 1288, 1587),
        ("earn_review", 10, 1597),
    ]
    assert balance(customer) == 1597
    first = lot_of(history["first"])
    assert (first.expires_on, first.remaining, first.amount) == (
        date(2028, 1, 10),
        299,
        Decimal("299.00"),
    )
    assert first.idempotency_key == f"order:{history['first'].pk}:earn"
    assert first.policy_version == 1 and first.reason == "order SO-1"
    assert AuditEvent.objects.filter(entity_type="loyalty.accrual").count() == 1


def test_accruing_twice_changes_nothing(customer: Customer, history: dict[str, Any]) -> None:
    # given
    services.points_accrue(as_of=AS_OF)
    before = list(PointsEntry.objects.order_by("id").values())
    audits = AuditEvent.objects.count()
    # when
    again = services.points_accrue(as_of=AS_OF)
    # then
    assert again.entries == 0 and again.points_earned == 0
    assert list(PointsEntry.objects.order_by("id").values()) == before
    assert AuditEvent.objects.count() == audits


def test_accrual_is_incremental(customer: Customer, history: dict[str, Any]) -> None:
    # given
    services.points_accrue(as_of=AS_OF)
    # when: a day later, the order paid on 1 March is in
    result = services.points_accrue(as_of=date(2026, 3, 2))
    # then
    assert (result.orders_credited, result.points_earned) == (1, 500)
    assert balance(customer) == 2097


def test_history_older_than_the_expiry_period_earns_nothing(customer: Customer) -> None:
    # given: paid 25 months before the cut-off; its points would already have expired
    paid(customer, "OLD-1", "2024-01-31 02:00", "100.00")
    paid(customer, "OLD-2", "2024-03-02 02:00", "100.00")  # still alive on 1 March 2026
    # when
    result = services.points_accrue(as_of=AS_OF)
    # then
    assert result.orders_credited == 1
    assert entries(customer) == [("earn_order", 100, 100)]


def test_a_partial_refund_takes_back_its_share_from_the_order_s_own_lot(
    customer: Customer, history: dict[str, Any]
) -> None:
    # given
    services.points_accrue(as_of=AS_OF)
    refund(history["first"], "RT-1", "2026-03-05 02:00", "100.00")
    # when
    result = services.points_accrue(as_of=date(2026, 3, 6))
    # then
    assert (result.returns_reversed, result.points_reversed, result.shortfall) == (1, 100, 0)
    reversal = PointsEntry.objects.get(kind="reverse_return")
    first = lot_of(history["first"])
    assert (reversal.points, reversal.shortfall, reversal.amount) == (-100, 0, Decimal("100.00"))
    assert reversal.consumed == [[first.pk, 100]] and reversal.reverses_id == first.pk
    assert first.remaining == 199
    assert balance(customer) == 1597 + 500 - 100  # the order of 1 March came in too


def test_partial_refunds_of_the_whole_order_take_back_all_its_points(customer: Customer) -> None:
    # given
    order = paid(customer, "SO-9", "2026-01-10 02:00", "100.00")
    services.points_accrue(as_of=AS_OF)
    for n, amount in enumerate(("33.33", "33.33", "33.34")):
        refund(order, f"RT-9{n}", f"2026-02-1{n} 02:00", amount)
    # when
    services.points_accrue(as_of=AS_OF)
    # then
    assert entries(customer) == [
        ("earn_order", 100, 100),
        ("reverse_return", -33, 67),
        ("reverse_return", -33, 34),
        ("reverse_return", -34, 0),
    ]


def test_a_refund_of_points_already_spent_stops_at_zero_and_records_the_shortfall(
    customer: Customer, agent: User
) -> None:
    # given: 299 points earned, 250 of them redeemed
    order = paid(customer, "SO-1", "2026-01-10 02:00", "299.00")
    services.points_accrue(as_of=AS_OF)
    services.points_redeem(
        user=agent, customer_id=customer.pk, points=250, reason="兑换保温杯", request_key="r-1"
    )
    refund(order, "RT-1", "2026-02-20 02:00", "299.00")
    # when
    result = services.points_accrue(as_of=AS_OF)
    # then
    assert (result.points_reversed, result.shortfall) == (49, 250)
    reversal = PointsEntry.objects.get(kind="reverse_return")
    assert (reversal.points, reversal.shortfall, reversal.balance_after) == (-49, 250, 0)
    assert balance(customer) == 0
    assert lot_of(order).remaining == 0


def test_refunds_of_uncredited_orders_and_unrefunded_returns_take_nothing(
    customer: Customer, history: dict[str, Any]
) -> None:
    # given
    services.points_accrue(as_of=AS_OF)
    refund(history["dollars"], "RT-USD", "2026-02-20 02:00", "70.00")
    refund(history["first"], "RT-ASK", "2026-02-20 02:00", "299.00", status="requested")
    refund(history["first"], "RT-EXCH", "2026-02-20 02:00", "0.00", status="completed")
    # when
    result = services.points_accrue(as_of=AS_OF)
    # then
    assert result.entries == 0 and balance(customer) == 1597


def test_a_credited_order_later_cancelled_gives_back_what_is_left(customer: Customer) -> None:
    # given: 299 earned, 100 refunded, then the order is cancelled
    order = paid(customer, "SO-1", "2026-01-10 02:00", "299.00")
    services.points_accrue(as_of=AS_OF)
    refund(order, "RT-1", "2026-01-20 02:00", "100.00")
    services.points_accrue(as_of=AS_OF)
    Order.objects.filter(pk=order.pk).update(
        status="cancelled", cancelled_at=at("2026-01-21 02:00")
    )
    # when
    result = services.points_accrue(as_of=AS_OF)
    services.points_accrue(as_of=AS_OF)
    # then
    assert (result.cancellations_reversed, result.points_reversed) == (1, 199)
    assert entries(customer) == [
        ("earn_order", 299, 299),
        ("reverse_return", -100, 199),
        ("reverse_cancel", -199, 0),
    ]


# ---------------------------------------------------------------------- redemption


@pytest.fixture
def earned(customer: Customer, history: dict[str, Any]) -> dict[str, Any]:
    services.points_accrue(as_of=AS_OF)
    return history


def test_redeeming_spends_the_oldest_lots_first(
    customer: Customer, earned: dict[str, Any], agent: User
) -> None:
    # when
    entry = services.points_redeem(
        user=agent, customer_id=customer.pk, points=500, reason="兑换礼品卡", request_key="gift-1"
    )
    # then
    first, second = lot_of(earned["first"]), lot_of(earned["second"])
    assert (entry.kind, entry.points, entry.balance_after) == ("redeem", -500, 1097)
    assert entry.consumed == [[first.pk, 299], [second.pk, 201]]
    assert (first.remaining, second.remaining) == (0, 1087)
    assert entry.created_by == agent and entry.idempotency_key == f"redeem:{customer.pk}:gift-1"
    event = AuditEvent.objects.get(entity_type="loyalty.points")
    assert event.customer_id == customer.pk and event.actor_id == agent.pk
    assert event.changes["points"] == -500 and event.changes["balance_after"] == 1097


def test_a_redemption_beyond_the_balance_is_refused_naming_it(
    customer: Customer, earned: dict[str, Any], agent: User
) -> None:
    # given
    before = (PointsEntry.objects.count(), AuditEvent.objects.count())
    # when
    with pytest.raises(
        Conflict, match=f"customer {customer.pk} has 1597 points: cannot redeem 1598"
    ):
        services.points_redeem(
            user=agent, customer_id=customer.pk, points=1598, reason="兑换", request_key="r-2"
        )
    # then
    assert (PointsEntry.objects.count(), AuditEvent.objects.count()) == before
    assert balance(customer) == 1597


def test_a_customer_without_points_cannot_redeem(agent: User) -> None:
    nobody = make_customer(name="王五")
    with pytest.raises(Conflict, match="has 0 points: cannot redeem 1"):
        services.points_redeem(
            user=agent, customer_id=nobody.pk, points=1, reason="兑换", request_key="r-3"
        )


def test_a_retried_redemption_posts_once(
    customer: Customer, earned: dict[str, Any], agent: User
) -> None:
    # given
    first = services.points_redeem(
        user=agent, customer_id=customer.pk, points=100, reason="兑换", request_key="req-7"
    )
    # when
    again = services.points_redeem(
        user=agent, customer_id=customer.pk, points=100, reason="兑换", request_key="req-7"
    )
    # then
    assert again.pk == first.pk and balance(customer) == 1497
    with pytest.raises(Conflict, match="request key 'req-7' already redeemed 100 points"):
        services.points_redeem(
            user=agent, customer_id=customer.pk, points=200, reason="兑换", request_key="req-7"
        )


@pytest.mark.parametrize(
    ("points", "reason", "key", "message"),
    [
        (0, "兑换", "k", "redemption.points: expected a positive number, got 0"),
        (-5, "兑换", "k", "redemption.points: expected a positive number, got -5"),
        (True, "兑换", "k", "redemption.points: expected a whole number"),
        (10**9, "兑换", "k", "redemption.points: at most 100,000,000"),
        (10, "   ", "k", "redemption.reason: a reason is required"),
        (10, "兑换", "two words", "redemption.request_key"),
        (10, "兑换", "", "redemption.request_key"),
    ],
)
def test_a_malformed_redemption_is_refused(
    customer: Customer, agent: User, points: Any, reason: str, key: str, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        services.points_redeem(
            user=agent, customer_id=customer.pk, points=points, reason=reason, request_key=key
        )


def test_redeeming_for_an_unknown_customer_is_not_found(agent: User) -> None:
    with pytest.raises(NotFound, match="customer 999999 not found"):
        services.points_redeem(
            user=agent, customer_id=999999, points=1, reason="兑换", request_key="k"
        )


@pytest.mark.parametrize("role", [Role.MARKETER, Role.AUDITOR, Role.ANALYST, Role.RISK_ANALYST])
def test_only_roles_that_change_points_redeem_or_adjust(customer: Customer, role: Role) -> None:
    user = make_user(role)
    with pytest.raises(PermissionDenied):
        services.points_redeem(
            user=user, customer_id=customer.pk, points=1, reason="x", request_key="k"
        )
    with pytest.raises(PermissionDenied):
        services.points_adjust(user=user, customer_id=customer.pk, points=1, reason="x")
    assert not PointsEntry.objects.exists()


# ---------------------------------------------------------------------- adjustment


def test_a_positive_adjustment_adds_a_lot_expiring_like_earned_points(
    customer: Customer, agent: User
) -> None:
    # when
    entry = services.points_adjust(
        user=agent, customer_id=customer.pk, points=50, reason="补偿物流延误"
    )
    # then
    today = timezone.localdate()
    assert (entry.kind, entry.points, entry.balance_after, entry.remaining) == (
        "adjust",
        50,
        50,
        50,
    )
    assert entry.expires_on == rules.add_months(today, 24)
    assert entry.source_type == "staff" and entry.source_id == agent.pk
    event = AuditEvent.objects.get(entity_type="loyalty.points")
    assert event.summary == "adjusted +50 points: 补偿物流延误"


def test_a_negative_adjustment_takes_oldest_first_and_never_below_zero(
    customer: Customer, earned: dict[str, Any], agent: User
) -> None:
    # when
    entry = services.points_adjust(user=agent, customer_id=customer.pk, points=-300, reason="纠错")
    # then
    first, second = lot_of(earned["first"]), lot_of(earned["second"])
    assert entry.consumed == [[first.pk, 299], [second.pk, 1]]
    assert balance(customer) == 1297
    with pytest.raises(Conflict, match="has 1297 points: cannot take 1298"):
        services.points_adjust(user=agent, customer_id=customer.pk, points=-1298, reason="纠错")
    assert balance(customer) == 1297


def test_an_adjustment_of_zero_is_refused(customer: Customer, agent: User) -> None:
    with pytest.raises(
        ValidationFailed, match=r"adjustment\.points: expected a whole number other"
    ):
        services.points_adjust(user=agent, customer_id=customer.pk, points=0, reason="x")


# ---------------------------------------------------------------------- expiry


def test_lots_expire_on_their_day_and_only_once(
    customer: Customer, earned: dict[str, Any], agent: User
) -> None:
    # given: 100 of the first lot spent
    services.points_redeem(
        user=agent, customer_id=customer.pk, points=100, reason="兑换", request_key="r"
    )
    # when: the day before, nothing; on the day, what is left of the first lot
    before = services.points_expire(as_of=date(2028, 1, 9))
    result = services.points_expire(as_of=date(2028, 1, 10))
    again = services.points_expire(as_of=date(2028, 1, 10))
    # then
    assert before.lots == 0 and again.lots == 0
    assert (result.lots, result.points, result.accounts) == (1, 199, 1)
    first = lot_of(earned["first"])
    expiry = PointsEntry.objects.get(kind="expire")
    assert (expiry.points, expiry.reverses_id, expiry.consumed) == (
        -199,
        first.pk,
        [[first.pk, 199]],
    )
    assert first.remaining == 0 and balance(customer) == 1597 - 100 - 199
    assert expiry.idempotency_key == f"lot:{first.pk}:expire"


def test_expiring_everything_leaves_a_zero_balance(
    customer: Customer, earned: dict[str, Any]
) -> None:
    result = services.points_expire(as_of=date(2029, 1, 1))
    assert result.points == 1597 + 10  # 张三's and 李四's
    assert balance(customer) == 0
    assert not PointsEntry.objects.filter(remaining__gt=0).exists()


# ---------------------------------------------------------------------- policy


def test_the_default_policy_is_version_one() -> None:
    policy = services.loyalty_policy_active()
    assert (policy.version, policy.points_per_cny, policy.expiry_months) == (1, Decimal("1.00"), 24)


def test_changing_the_policy_saves_a_version_and_audits_old_and_new_values() -> None:
    # given
    marketer = make_user(Role.MARKETER, username="marketer-liu")
    services.loyalty_policy_active()
    # when
    policy = services.loyalty_policy_save(
        user=marketer, data={"points_per_cny": "2", "expiry_months": 12}, note="双倍积分"
    )
    # then
    assert (policy.version, policy.is_active, policy.created_by) == (2, True, "marketer-liu")
    assert LoyaltyPolicy.objects.filter(is_active=True).count() == 1
    event = AuditEvent.objects.get(entity_type="loyalty.policy")
    assert event.changes["old"]["points_per_cny"] == "1.00"
    assert event.changes["new"]["points_per_cny"] == "2.00"
    assert (event.changes["old"]["expiry_months"], event.changes["new"]["expiry_months"]) == (
        24,
        12,
    )
    assert event.summary.endswith("changed: expiry_months, points_per_cny")


def test_new_points_follow_the_policy_in_force(customer: Customer) -> None:
    # given
    services.loyalty_policy_save(
        user=make_user(Role.OPERATIONS_MANAGER), data={"points_per_cny": "1.5"}
    )
    paid(customer, "SO-1", "2026-01-10 02:00", "99.99")
    # when
    services.points_accrue(as_of=AS_OF)
    # then
    assert entries(customer) == [("earn_order", 149, 149)]
    assert PointsEntry.objects.get().policy_version == 2


def test_a_bad_policy_is_refused_and_nothing_changes() -> None:
    manager = make_user(Role.OPERATIONS_MANAGER)
    services.loyalty_policy_active()
    with pytest.raises(ValidationFailed, match="loyalty policy: expiry_months: must be between"):
        services.loyalty_policy_save(user=manager, data={"expiry_months": 0})
    assert LoyaltyPolicy.objects.count() == 1
    with pytest.raises(PermissionDenied):
        services.loyalty_policy_save(user=make_user(Role.SERVICE_AGENT), data={})


def test_the_ledger_sums_to_the_balance_after_everything(
    customer: Customer, earned: dict[str, Any], agent: User
) -> None:
    services.points_redeem(
        user=agent, customer_id=customer.pk, points=1000, reason="兑换", request_key="a"
    )
    refund(earned["second"], "RT-2", "2026-03-03 02:00", "1288.50")
    services.points_accrue(as_of=date(2026, 3, 10))
    services.points_expire(as_of=date(2028, 1, 10) + timedelta(days=1))
    account = PointsAccount.objects.get(customer=customer)
    rows = PointsEntry.objects.filter(account=account)
    assert sum(rows.values_list("points", flat=True)) == account.balance
    assert sum(r or 0 for r in rows.values_list("remaining", flat=True)) == account.balance
