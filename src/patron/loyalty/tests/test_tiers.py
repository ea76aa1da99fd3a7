"""Membership tiers: the defaults, staff edits, and the evaluation that moves customers up at
once, down after a grace period, tells them when they move up, and runs in a fixed number of
queries whatever the number of customers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import at, make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.loyalty import selectors, services, tiers
from patron.loyalty.models import Tier, TierMembership
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db


def spend(customer: Customer, external_id: str, when: str, total: str) -> None:
    make_order(customer, external_id=external_id, placed_at=at(when), paid_at=at(when), total=total)


def grade(customer: Customer, value: str) -> None:
    run = ScoreRun.objects.create(
        as_of=date(2026, 1, 1), status="completed", started_at=timezone.now()
    )
    CustomerScore.objects.update_or_create(
        customer=customer, defaults={"run": run, "as_of": run.as_of, "grade": value}
    )


def tier_of(customer: Customer) -> str:
    return TierMembership.objects.get(customer=customer, valid_to__isnull=True).tier.code


def periods(customer: Customer) -> list[tuple[str, date, date | None, str]]:
    return [
        (m.tier.code, m.valid_from, m.valid_to, m.move) for m in tiers.tier_history(customer.pk)
    ]


# ---------------------------------------------------------------------- defaults and edits


def test_the_default_tiers_are_seeded_once_and_never_over_a_merchant_s_own() -> None:
    assert tiers.tiers_seed() == 4
    assert tiers.tiers_seed() == 0
    assert list(Tier.objects.values_list("code", "name", "rank")) == [
        ("member", "普通会员", 0),
        ("silver", "银卡", 1),
        ("gold", "金卡", 2),
        ("diamond", "钻石", 3),
    ]
    gold = Tier.objects.get(code="gold")
    assert (gold.min_spend, gold.min_grade, gold.min_points, gold.needs) == (
        Decimal("3000.00"),
        "core",
        5000,
        "any",
    )


def test_staff_change_a_tier_with_a_new_version_and_an_audit_of_old_and_new() -> None:
    # given
    tiers.tiers_seed()
    marketer = make_user(Role.MARKETER, username="marketer-liu")
    # when
    tier = tiers.tier_update(
        user=marketer,
        code="gold",
        data={"min_spend": "5000", "min_points": None, "grace_days": 90},
    )
    # then
    assert (tier.min_spend, tier.min_points, tier.grace_days) == (Decimal("5000.00"), None, 90)
    assert (tier.version, tier.updated_by) == (2, "marketer-liu")
    event = AuditEvent.objects.get(entity_type="loyalty.tier")
    assert event.changes == {
        "old": {"min_spend": "3000.00", "min_points": 5000, "grace_days": 60},
        "new": {"min_spend": "5000.00", "min_points": None, "grace_days": 90},
    }
    # and an edit that changes nothing is not a version
    same = tiers.tier_update(user=marketer, code="gold", data={"grace_days": 90})
    assert same.version == 2 and AuditEvent.objects.filter(entity_type="loyalty.tier").count() == 1


def test_a_tier_edit_that_makes_no_sense_is_refused() -> None:
    tiers.tiers_seed()
    manager = make_user(Role.OPERATIONS_MANAGER)
    with pytest.raises(Conflict, match=r"tier\.rank: another tier already has rank 3"):
        tiers.tier_update(user=manager, code="gold", data={"rank": 3})
    with pytest.raises(ValidationFailed, match="tier: cannot change code"):
        tiers.tier_update(user=manager, code="gold", data={"code": "platinum"})
    with pytest.raises(ValidationFailed, match=r"tier\.min_grade: one of"):
        tiers.tier_update(user=manager, code="gold", data={"min_grade": "vip"})
    with pytest.raises(ValidationFailed, match=r"tier\.name: 1 to 60 characters"):
        tiers.tier_update(user=manager, code="gold", data={"name": "  "})
    with pytest.raises(NotFound, match="tier 'platinum' not found"):
        tiers.tier_update(user=manager, code="platinum", data={"grace_days": 1})
    with pytest.raises(PermissionDenied):
        tiers.tier_update(user=make_user(Role.SERVICE_AGENT), code="gold", data={"grace_days": 1})
    assert Tier.objects.get(code="gold").version == 1


# ---------------------------------------------------------------------- evaluation


@pytest.fixture
def shop() -> dict[str, Customer]:
    """Five customers as of 1 June 2026 (window: 1 June 2025 – 31 May 2026)."""
    people = {name: make_customer(name=name) for name in ("金", "银", "钻", "新", "旧")}
    spend(people["金"], "A-1", "2026-01-10 02:00", "3500.00")
    grade(people["金"], "ordinary")
    spend(people["银"], "B-1", "2026-02-01 02:00", "1200.00")
    spend(people["钻"], "D-1", "2026-03-01 02:00", "12000.00")
    grade(people["钻"], "core")
    spend(people["旧"], "G-1", "2025-06-10 02:00", "1500.00")
    erased = make_customer(name="已匿名", status=Customer.Status.ERASED)
    spend(erased, "E-1", "2026-03-01 02:00", "50000.00")
    return people


def test_a_first_evaluation_places_everyone_and_tells_nobody(shop: dict[str, Customer]) -> None:
    # when
    result = tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    # then
    assert (result.customers, result.joined, result.up, result.told) == (5, 5, 0, 0)
    assert {name: tier_of(c) for name, c in shop.items()} == {
        "金": "gold",
        "银": "silver",
        "钻": "diamond",
        "新": "member",
        "旧": "silver",
    }
    assert result.members == {"member": 1, "silver": 2, "gold": 1, "diamond": 1}
    placed = TierMembership.objects.get(customer=shop["金"])
    assert placed.facts == {"spend": "3500.00", "grade": "ordinary", "points": 0}
    assert placed.reason == "placed in Gold: meets spend 3000.00 (has 3500.00)"
    assert TierMembership.objects.count() == 5  # the erased customer has none


def test_moving_up_is_immediate_and_the_customer_is_told(shop: dict[str, Customer]) -> None:
    # given
    from patron.outbox.models import Message

    tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    spend(shop["银"], "B-2", "2026-06-10 02:00", "2000.00")
    # when
    result = tiers.tiers_evaluate(as_of=date(2026, 6, 15))
    # then
    assert (result.up, result.down, result.told) == (1, 0, 1)
    assert periods(shop["银"]) == [
        ("silver", date(2026, 6, 1), date(2026, 6, 15), "join"),
        ("gold", date(2026, 6, 15), None, "up"),
    ]
    gold = Tier.objects.get(code="gold")
    message = Message.objects.get(customer=shop["银"])
    assert message.template == "loyalty.tier_up"
    assert message.key == f"loyalty.tier_up:{shop['银'].pk}:gold:2026-06-15"
    assert message.source == f"loyalty.tier:{gold.pk}"
    assert "金卡" in message.body


def test_moving_down_waits_for_the_grace_period(shop: dict[str, Customer]) -> None:
    # given: 旧's only order leaves the 12-month window on 10 June (silver: 30 days' grace)
    tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    # when
    first = tiers.tiers_evaluate(as_of=date(2026, 6, 15))
    held = TierMembership.objects.get(customer=shop["旧"], valid_to__isnull=True)
    summary = selectors.loyalty_summary(
        user=make_user(Role.SERVICE_AGENT), customer_id=shop["旧"].pk, as_of=date(2026, 6, 15)
    )
    still = tiers.tiers_evaluate(as_of=date(2026, 7, 14))
    down = tiers.tiers_evaluate(as_of=date(2026, 7, 15))
    # then
    assert (first.in_grace, still.in_grace, down.down) == (1, 1, 1)
    assert held.below_since == date(2026, 6, 15)
    assert summary.tier_keeps_until == date(2026, 7, 15)
    assert periods(shop["旧"]) == [
        ("silver", date(2026, 6, 1), date(2026, 7, 15), "join"),
        ("member", date(2026, 7, 15), None, "down"),
    ]
    assert TierMembership.objects.get(customer=shop["旧"], valid_to__isnull=True).reason == (
        "down from silver to member: no longer qualified since 2026-06-15"
    )


def test_qualifying_again_during_grace_keeps_the_tier(shop: dict[str, Customer]) -> None:
    tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    tiers.tiers_evaluate(as_of=date(2026, 6, 15))  # 旧 in grace
    spend(shop["旧"], "G-2", "2026-06-20 02:00", "1000.00")
    result = tiers.tiers_evaluate(as_of=date(2026, 7, 20))
    assert result.down == 0
    held = TierMembership.objects.get(customer=shop["旧"], valid_to__isnull=True)
    assert (held.tier.code, held.below_since) == ("silver", None)


def test_evaluating_twice_changes_nothing(shop: dict[str, Customer]) -> None:
    # given
    tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    tiers.tiers_evaluate(as_of=date(2026, 6, 15))
    before = list(TierMembership.objects.order_by("id").values())
    # when
    again = tiers.tiers_evaluate(as_of=date(2026, 6, 15))
    # then
    assert again.moves == 0
    assert list(TierMembership.objects.order_by("id").values()) == before


def test_history_is_never_rewritten(shop: dict[str, Customer]) -> None:
    tiers.tiers_evaluate(as_of=date(2026, 6, 15))
    with pytest.raises(Conflict, match="tier history already runs from 2026-06-15"):
        tiers.tiers_evaluate(as_of=date(2026, 6, 1))


def test_points_can_be_a_criterion(shop: dict[str, Customer]) -> None:
    # given: gold is reached by 5,000 points alone ("any")
    services.points_adjust(
        user=make_user(Role.OPERATIONS_MANAGER),
        customer_id=shop["新"].pk,
        points=5000,
        reason="活动奖励",
    )
    # when
    tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    # then
    assert tier_of(shop["新"]) == "gold"


def test_refunds_count_against_spend(shop: dict[str, Customer]) -> None:
    from patron.commerce.models import Order, ReturnRequest

    ReturnRequest.objects.create(
        source="shop",
        external_id="RT-B",
        order=Order.objects.get(external_id="B-1"),
        status="refunded",
        requested_at=at("2026-02-10 02:00"),
        resolved_at=at("2026-02-10 02:00"),
        refund_amount=Decimal("300.00"),
    )
    tiers.tiers_evaluate(as_of=date(2026, 6, 1))
    assert tier_of(shop["银"]) == "member"  # 1200 - 300 = 900 < 1000


def test_evaluation_runs_in_the_same_number_of_queries_for_any_number_of_customers() -> None:
    def queries_for(n: int, offset: int) -> int:
        for i in range(n):
            customer = make_customer(name=f"客户{offset + i}")
            spend(customer, f"Q{offset + i}", "2026-01-10 02:00", str(500 * (i % 8)))
        TierMembership.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            tiers.tiers_evaluate(as_of=date(2026, 6, 1))
        return len(captured.captured_queries)

    tiers.tiers_seed()
    services.loyalty_policy_active()
    few = queries_for(5, 0)
    many = queries_for(60, 100)
    assert many == few
