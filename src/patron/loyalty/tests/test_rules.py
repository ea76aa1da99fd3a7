"""The pure rules of the loyalty programme, without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.loyalty import rules
from patron.loyalty.rules import Lot, LoyaltyRules, TierFacts, TierRule

POLICY = LoyaltyRules()


# ---------------------------------------------------------------------- earning


@pytest.mark.parametrize(
    ("amount", "points"),
    [("299.00", 299), ("299.99", 299), ("0.99", 0), ("0", 0), ("-5", 0), ("1288.50", 1288)],
)
def test_an_order_earns_one_point_per_yuan_rounded_down(amount: str, points: int) -> None:
    assert rules.order_points(Decimal(amount), POLICY) == points


def test_the_rate_is_the_policy_s() -> None:
    policy = LoyaltyRules(points_per_cny=Decimal("1.50"))
    assert rules.order_points(Decimal("99.99"), policy) == 149  # 149.985 rounded down


def test_a_review_earns_only_with_enough_words() -> None:
    policy = LoyaltyRules(review_points=20, review_min_length=5)
    assert rules.review_points("质量很好，推荐", policy) == 20  # 7 characters
    assert rules.review_points("  好评  ", policy) == 0  # 2 characters once trimmed
    assert rules.review_points("", policy) == 0


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 3, 15), 24, date(2026, 3, 15)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 1, 15), -13, date(2022, 12, 15)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_month_s_last(
    day: date, months: int, expected: date
) -> None:
    assert rules.add_months(day, months) == expected


def test_points_expire_after_the_policy_s_months() -> None:
    assert rules.lot_expires_on(date(2024, 2, 1), POLICY) == date(2026, 2, 1)


# ---------------------------------------------------------------------- policy


def test_the_policy_reads_and_checks_its_fields() -> None:
    policy = LoyaltyRules.from_dict({"points_per_cny": "2", "expiry_months": 12})
    assert policy.points_per_cny == Decimal("2") and policy.expiry_months == 12
    assert policy.review_points == 10  # default kept


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"expiry_months": 0}, "expiry_months: must be between 1 and 120"),
        ({"review_points": -1}, "review_points: must be between 0"),
        ({"review_points": True}, "review_points: expected a whole number"),
        ({"points_per_cny": "abc"}, "points_per_cny: expected a number"),
        ({"points_per_cny": "0.001"}, "at most 2 decimals"),
        ({"bonus": 1}, "unknown field(s) bonus"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LoyaltyRules.from_dict(data)


# ---------------------------------------------------------------------- reversals


def test_a_partial_refund_takes_back_its_share_rounded_down() -> None:
    due = rules.reversal_due(
        earned=299,
        order_total=Decimal("299.00"),
        refunded_before=Decimal("0"),
        refund=Decimal("100.00"),
        reversed_before=0,
    )
    assert due == 100


def test_partial_refunds_adding_up_to_the_total_take_back_exactly_what_was_earned() -> None:
    # given: 100 points on 100.00, refunded in three thirds
    total, earned = Decimal("100.00"), 100
    refunds = [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    refunded, reversed_ = Decimal("0"), 0
    dues = []
    for refund in refunds:
        due = rules.reversal_due(
            earned=earned,
            order_total=total,
            refunded_before=refunded,
            refund=refund,
            reversed_before=reversed_,
        )
        dues.append(due)
        refunded += refund
        reversed_ += due
    # then
    assert dues == [33, 33, 34]
    assert sum(dues) == earned


def test_a_refund_beyond_the_total_takes_back_no_more_than_earned() -> None:
    due = rules.reversal_due(
        earned=50,
        order_total=Decimal("50"),
        refunded_before=Decimal("40"),
        refund=Decimal("100"),
        reversed_before=40,
    )
    assert due == 10


@settings(max_examples=200)
@given(
    earned=st.integers(min_value=0, max_value=10_000),
    total=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
    shares=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6),
)
def test_reversals_never_exceed_what_was_earned(
    earned: int, total: Decimal, shares: list[int]
) -> None:
    refunded, reversed_ = Decimal("0"), 0
    for share in shares:
        refund = (total * share / 100).quantize(Decimal("0.01"))
        due = rules.reversal_due(
            earned=earned,
            order_total=total,
            refunded_before=refunded,
            refund=refund,
            reversed_before=reversed_,
        )
        assert due >= 0
        refunded += refund
        reversed_ += due
        assert reversed_ <= earned
    if refunded >= total:
        assert reversed_ == earned


@pytest.mark.parametrize(
    ("due", "balance", "split"), [(100, 300, (100, 0)), (100, 40, (40, 60)), (100, 0, (0, 100))]
)
def test_a_debit_stops_at_zero_and_records_the_shortfall(
    due: int, balance: int, split: tuple[int, int]
) -> None:
    assert rules.debit_split(due, balance) == split


# ---------------------------------------------------------------------- FIFO


LOTS = [
    Lot(id=3, remaining=50, expires_on=date(2026, 3, 1)),
    Lot(id=1, remaining=100, expires_on=date(2026, 1, 1)),
    Lot(id=2, remaining=0, expires_on=date(2026, 2, 1)),
    Lot(id=4, remaining=30, expires_on=date(2026, 1, 1)),
]


def test_points_are_spent_oldest_lot_first() -> None:
    assert rules.consume(LOTS, 120) == [(1, 100), (4, 20)]


def test_a_refund_takes_from_its_own_lot_first() -> None:
    assert rules.consume(LOTS, 70, first=3) == [(3, 50), (1, 20)]


def test_consuming_more_than_the_lots_hold_is_an_error() -> None:
    with pytest.raises(ValueError, match="the lots hold 180 points, 181 were asked"):
        rules.consume(LOTS, 181)


def test_expired_lots_are_those_due_with_points_left() -> None:
    due = rules.expired_lots(LOTS, date(2026, 2, 1))
    assert [lot.id for lot in due] == [1, 4]


@given(
    remaining=st.lists(st.integers(min_value=0, max_value=500), min_size=0, max_size=8),
    data=st.data(),
)
def test_consume_takes_exactly_what_is_asked_within_each_lot(
    remaining: list[int], data: st.DataObject
) -> None:
    lots = [
        Lot(id=i + 1, remaining=r, expires_on=date(2026, 1, 1 + i % 28))
        for i, r in enumerate(remaining)
    ]
    points = data.draw(st.integers(min_value=0, max_value=sum(remaining)))
    plan = rules.consume(lots, points)
    assert sum(n for _, n in plan) == points
    by_id = {lot.id: lot for lot in lots}
    assert all(0 < n <= by_id[i].remaining for i, n in plan)
    # oldest first: every lot before the last one used was emptied
    for lot_id, n in plan[:-1]:
        assert n == by_id[lot_id].remaining


# ---------------------------------------------------------------------- tiers


MEMBER = TierRule(code="member", rank=0)
SILVER = TierRule(
    code="silver", rank=1, min_spend=Decimal("1000"), min_grade="potential", needs="any"
)
GOLD = TierRule(
    code="gold", rank=2, min_spend=Decimal("3000"), min_points=5000, needs="all", grace_days=60
)
TIERS = [GOLD, MEMBER, SILVER]
BY_CODE = {t.code: t for t in TIERS}


@pytest.mark.parametrize(
    ("facts", "tier"),
    [
        (TierFacts(), "member"),
        (TierFacts(spend=Decimal("999.99")), "member"),
        (TierFacts(spend=Decimal("1000")), "silver"),
        (TierFacts(grade="potential"), "silver"),
        (TierFacts(grade="core"), "silver"),  # core is above potential
        (TierFacts(grade="ordinary"), "member"),
        (TierFacts(spend=Decimal("3000"), points=4999), "silver"),  # gold needs all
        (TierFacts(spend=Decimal("3000"), points=5000), "gold"),
    ],
)
def test_the_highest_tier_whose_criteria_are_met(facts: TierFacts, tier: str) -> None:
    assert rules.tier_qualified(TIERS, facts).code == tier


def test_what_is_missing_for_a_tier() -> None:
    checks = rules.tier_checks(GOLD, TierFacts(spend=Decimal("1200.50"), points=6000))
    assert [(c.criterion, c.missing, c.is_met) for c in checks] == [
        ("spend", "1799.50", False),
        ("points", "0", True),
    ]


def test_moving_up_is_immediate() -> None:
    decision = rules.tier_decide(
        current="member", below_since=None, qualified=GOLD, tiers=BY_CODE, as_of=date(2026, 1, 1)
    )
    assert decision == rules.TierDecision("up", "gold")


def test_moving_down_waits_for_the_grace_period() -> None:
    # given: a gold member who stops qualifying on 1 January (grace 60 days)
    first = rules.tier_decide(
        current="gold", below_since=None, qualified=SILVER, tiers=BY_CODE, as_of=date(2026, 1, 1)
    )
    assert first == rules.TierDecision("grace", "gold", below_since=date(2026, 1, 1))
    # when: 59 days later, still in grace; 60 days later, down
    later = rules.tier_decide(
        current="gold",
        below_since=date(2026, 1, 1),
        qualified=MEMBER,
        tiers=BY_CODE,
        as_of=date(2026, 3, 1),
    )
    last = rules.tier_decide(
        current="gold",
        below_since=date(2026, 1, 1),
        qualified=MEMBER,
        tiers=BY_CODE,
        as_of=date(2026, 3, 2),
    )
    # then
    assert later == rules.TierDecision("grace", "gold", below_since=date(2026, 1, 1))
    assert last == rules.TierDecision("down", "member")


def test_qualifying_again_in_grace_resets_the_clock() -> None:
    decision = rules.tier_decide(
        current="gold",
        below_since=date(2026, 1, 1),
        qualified=GOLD,
        tiers=BY_CODE,
        as_of=date(2026, 1, 20),
    )
    assert decision == rules.TierDecision("keep", "gold", below_since=None)


def test_a_first_placement_joins() -> None:
    decision = rules.tier_decide(
        current=None, below_since=None, qualified=SILVER, tiers=BY_CODE, as_of=date(2026, 1, 1)
    )
    assert decision == rules.TierDecision("join", "silver")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"names": ("", "Gold")}, "name, name_en"),
        ({"min_grade": "vip"}, "min_grade: one of"),
        ({"needs": "most"}, "needs: 'all' or 'any'"),
        ({"grace_days": -1}, "grace_days: between 0 and 3650"),
        ({"min_spend": Decimal("-1")}, "min_spend: must be an amount"),
    ],
)
def test_a_tier_that_makes_no_sense_is_refused(change: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "code": "gold",
        "rank": 2,
        "min_spend": Decimal("3000"),
        "min_grade": None,
        "min_points": None,
        "needs": "any",
        "grace_days": 30,
        "names": ("金卡", "Gold"),
    }
    values.update(change)
    with pytest.raises(ValueError, match=message):
        rules.tier_validate(rules.TierInput(**values))  # type: ignore[arg-type]


def test_the_default_tiers_are_valid_and_ranked() -> None:
    ranks = [spec["rank"] for spec in rules.DEFAULT_TIERS]
    assert ranks == sorted(set(ranks))
    assert [spec["name"] for spec in rules.DEFAULT_TIERS] == ["普通会员", "银卡", "金卡", "钻石"]
