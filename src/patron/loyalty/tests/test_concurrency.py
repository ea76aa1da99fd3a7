"""Real parallel redemptions against one account, each thread on its own database connection
(PostgreSQL only: SQLite serialises writers, so there is no race to lose there).

Enough points for some of them: exactly that many succeed, the others are refused with the
balance named, and the balance ends at what is left, never below zero. The same request sent
at once from several threads posts once. Redemptions racing the expiry job keep the ledger's
invariants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Sum

from patron.account.roles import Role
from patron.conftest import make_customer, make_user, race, require_postgresql
from patron.customer.models import Customer
from patron.errors import Conflict
from patron.loyalty import services
from patron.loyalty.models import PointsAccount, PointsEntry

THREADS = 8


def _assert_ledger_sound(customer: Customer) -> PointsAccount:
    account = PointsAccount.objects.get(customer=customer)
    rows = PointsEntry.objects.filter(account=account)
    assert account.balance >= 0
    assert (rows.aggregate(s=Sum("points"))["s"] or 0) == account.balance
    assert (rows.aggregate(s=Sum("remaining"))["s"] or 0) == account.balance
    assert rows.order_by("-id").first().balance_after == account.balance  # type: ignore[union-attr]
    assert not rows.filter(remaining__lt=0).exists()
    return account


@pytest.mark.django_db(transaction=True)
def test_parallel_redemptions_spend_each_point_once() -> None:
    require_postgresql()
    # given: 100 points; eight agents each redeem 30 at the same moment
    customer = make_customer(name="并发客户")
    agents = [make_user(Role.SERVICE_AGENT, username=f"agent-{i}") for i in range(THREADS)]
    services.points_adjust(user=agents[0], customer_id=customer.pk, points=100, reason="开户礼")

    # when
    results = race(
        *[
            (
                lambda agent=agent, i=i: services.points_redeem(
                    user=agent,
                    customer_id=customer.pk,
                    points=30,
                    reason="兑换优惠券",
                    request_key=f"parallel-{i}",
                )
            )
            for i, agent in enumerate(agents)
        ]
    )

    # then: exactly three succeed, five are refused naming the balance
    posted = [r for r in results if isinstance(r, PointsEntry)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(posted), len(refused)) == (3, 5), results
    assert all("points: cannot redeem 30" in r.message for r in refused)
    assert sorted(r.details["balance"] for r in refused) == [10] * 5
    assert sorted(e.balance_after for e in posted) == [10, 40, 70]
    account = _assert_ledger_sound(customer)
    assert account.balance == 10
    assert PointsEntry.objects.filter(kind="redeem").count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_same_request_sent_at_once_posts_once() -> None:
    require_postgresql()
    # given
    customer = make_customer(name="重试客户")
    agent = make_user(Role.SERVICE_AGENT, username="agent-retry")
    services.points_adjust(user=agent, customer_id=customer.pk, points=100, reason="开户礼")

    # when: a client retries one request from several workers at once
    results = race(
        *[
            (
                lambda: services.points_redeem(
                    user=agent,
                    customer_id=customer.pk,
                    points=40,
                    reason="兑换",
                    request_key="one-request",
                )
            )
            for _ in range(4)
        ]
    )

    # then
    assert all(isinstance(r, PointsEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert _assert_ledger_sound(customer).balance == 60


@pytest.mark.django_db(transaction=True)
def test_redemptions_racing_the_expiry_job_keep_the_ledger_sound() -> None:
    require_postgresql()
    # given: two lots that expire on the same day, and four redemptions at that moment
    customer = make_customer(name="到期客户")
    agent = make_user(Role.SERVICE_AGENT, username="agent-expiry")
    first = services.points_adjust(user=agent, customer_id=customer.pk, points=50, reason="a")
    services.points_adjust(user=agent, customer_id=customer.pk, points=100, reason="b")
    assert first.expires_on is not None

    # when
    def redeem(i: int) -> Callable[[], Any]:
        return lambda: services.points_redeem(
            user=agent, customer_id=customer.pk, points=60, reason="兑换", request_key=f"exp-{i}"
        )

    calls = [redeem(i) for i in range(4)]
    expires_on = first.expires_on
    calls.append(lambda: services.points_expire(as_of=expires_on))
    results = race(*calls)

    # then: whatever the order, nothing was spent twice and nothing is left unexpired
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, Conflict)]
    assert not unexpected, unexpected
    account = _assert_ledger_sound(customer)
    redeemed = -(PointsEntry.objects.filter(kind="redeem").aggregate(s=Sum("points"))["s"] or 0)
    expired = -(PointsEntry.objects.filter(kind="expire").aggregate(s=Sum("points"))["s"] or 0)
    assert redeemed + expired == 150 and account.balance == 0
