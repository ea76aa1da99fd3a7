"""The win-back rules without a database: who enters (the threshold, the cool-down, a new rise),
the holdout draw (deterministic per programme and customer, balanced, monotonic in the share),
the personalised offer's tier and reason, and the programme's checks."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.marketing import rules
from patron.marketing.rules import OfferTier, PreviousEntry, WinbackEntry

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
COOL_DOWN = 90


def _entry(risk: float | None, previous: PreviousEntry | None = None) -> WinbackEntry:
    return rules.winback_entry(
        risk=risk, threshold=0.6, previous=previous, as_of=NOW, cool_down_days=COOL_DOWN
    )


def _days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


# ---------------------------------------------------------------------- who enters


@pytest.mark.parametrize(
    ("risk", "previous", "expected"),
    [
        (None, None, WinbackEntry.NO_SCORE),
        (0.59, None, WinbackEntry.BELOW_THRESHOLD),
        (0.6, None, WinbackEntry.ENTER),  # at the threshold counts
        (0.95, None, WinbackEntry.ENTER),  # first entry: the programme never saw them
        # entered 10 days ago, recovered since: still in the cool-down
        (0.9, PreviousEntry(_days_ago(10), _days_ago(3)), WinbackEntry.COOL_DOWN),
        # entered 10 days ago, never recovered: the cool-down says no first
        (0.9, PreviousEntry(_days_ago(10), None), WinbackEntry.COOL_DOWN),
        # 89.99 days ago is within the 90-day cool-down; exactly 90 days ago is not
        (0.9, PreviousEntry(_days_ago(89.99), _days_ago(30)), WinbackEntry.COOL_DOWN),
        (0.9, PreviousEntry(_days_ago(90), _days_ago(30)), WinbackEntry.ENTER),
        # out of the cool-down but never seen below the threshold since: not a new rise
        (0.9, PreviousEntry(_days_ago(200), None), WinbackEntry.STILL_AT_RISK),
        # out of the cool-down and recovered since: a new rise
        (0.7, PreviousEntry(_days_ago(200), _days_ago(100)), WinbackEntry.ENTER),
        # below the threshold: never enters, whatever the history
        (0.2, PreviousEntry(_days_ago(200), _days_ago(100)), WinbackEntry.BELOW_THRESHOLD),
    ],
)
def test_the_entry_rule(
    risk: float | None, previous: PreviousEntry | None, expected: WinbackEntry
) -> None:
    assert _entry(risk, previous) is expected


RISK = st.one_of(st.none(), st.floats(min_value=0, max_value=1))


@settings(max_examples=200, deadline=None)
@given(
    observations=st.lists(st.tuples(st.integers(1, 60), RISK), min_size=1, max_size=40),
    threshold=st.sampled_from([0.3, 0.5, 0.6, 0.8]),
    cool_down=st.integers(1, 120),
)
def test_entries_are_rises_outside_the_cool_down(
    observations: list[tuple[int, float | None]], threshold: float, cool_down: int
) -> None:
    """Replay a customer's risk over successive runs as the service does (recovery marked at
    each run before deciding) and check the invariants the issue asks for."""
    # given
    when = NOW
    entries: list[datetime] = []
    previous: PreviousEntry | None = None
    seen: list[tuple[datetime, float | None, WinbackEntry]] = []

    # when
    for gap, risk in observations:
        when += timedelta(days=gap)
        if (
            previous is not None
            and previous.recovered_at is None
            and risk is not None
            and risk < threshold
        ):
            previous = PreviousEntry(previous.enrolled_at, when)
        decision = rules.winback_entry(
            risk=risk, threshold=threshold, previous=previous, as_of=when, cool_down_days=cool_down
        )
        seen.append((when, risk, decision))
        if decision is WinbackEntry.ENTER:
            entries.append(when)
            previous = PreviousEntry(when, None)

    # then: every entry is at or above the threshold
    for _when, risk, decision in seen:
        if decision is WinbackEntry.ENTER:
            assert risk is not None and risk >= threshold
    # no two entries within the cool-down
    for first, second in itertools.pairwise(entries):
        assert second - first >= timedelta(days=cool_down)
    # between two entries the risk was seen below the threshold: each entry is a new rise
    for first, second in itertools.pairwise(entries):
        assert any(
            first < when < second and risk is not None and risk < threshold
            for when, risk, _ in seen
        )
    # the first time the risk is at or above the threshold, the customer enters
    first_at_risk = next((s for s in seen if s[1] is not None and s[1] >= threshold), None)
    if first_at_risk is not None:
        assert first_at_risk[2] is WinbackEntry.ENTER


# ---------------------------------------------------------------------- the holdout draw

SHARES = st.sampled_from([Decimal("0.05"), Decimal("0.1"), Decimal("0.2"), Decimal("0.5")])


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**63 - 1),
    ids=st.lists(st.integers(1, 10**9), min_size=1, max_size=50, unique=True),
    share=SHARES,
)
def test_the_draw_depends_on_the_programme_and_the_customer_only(
    seed: int, ids: list[int], share: Decimal
) -> None:
    # when: drawn in one order, in the reverse order, and one by one
    forwards = {c: rules.holdout_draw(seed, c, share) for c in ids}
    backwards = {c: rules.holdout_draw(seed, c, share) for c in reversed(ids)}
    alone = {c: rules.holdout_draw(seed, c, share) for c in ids[:1]}

    # then
    assert forwards == backwards
    assert alone[ids[0]] == forwards[ids[0]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), start=st.integers(1, 10**8), share=SHARES)
def test_the_draw_is_balanced(seed: int, start: int, share: Decimal) -> None:
    """Over 4,000 customers (consecutive ids: the worst case for a poor hash) the held-out
    share is within five standard deviations of the target, and the same in even and odd
    ids (the group does not follow who the customer is)."""
    # given
    n = 4000
    p = float(share)
    sd = math.sqrt(n * p * (1 - p))

    # when
    held = [c for c in range(start, start + n) if rules.holdout_draw(seed, c, share)]

    # then
    assert abs(len(held) - n * p) < 5 * sd
    even = sum(1 for c in held if c % 2 == 0)
    assert abs(even - len(held) / 2) < 5 * math.sqrt(len(held) / 4) + 1


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), customer=st.integers(1, 10**9))
def test_raising_the_share_only_adds_to_the_holdout(seed: int, customer: int) -> None:
    drawn = [rules.holdout_draw(seed, customer, Decimal(s) / 100) for s in range(0, 51, 5)]
    assert drawn == sorted(drawn)  # False … False True … True
    assert drawn[0] is False  # a share of 0 holds nobody out


def test_another_programme_draws_differently() -> None:
    first = [rules.holdout_draw(1, c, Decimal("0.5")) for c in range(1, 200)]
    second = [rules.holdout_draw(2, c, Decimal("0.5")) for c in range(1, 200)]
    assert first != second


def test_a_share_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="holdout share"):
        rules.holdout_draw(1, 1, Decimal("0.6"))


# ---------------------------------------------------------------------- the personalised offer


@pytest.mark.parametrize(
    ("clv", "grade", "expected", "reason"),
    [
        (Decimal("3200"), "ordinary", OfferTier.HIGH_VALUE,
         "high-value offer: CLV (12 months) ¥3,200.00 ≥ ¥2,000.00"),
        (Decimal("800"), "core", OfferTier.HIGH_VALUE, "high-value offer: grade core is one of core"),
        (Decimal("800"), "potential", OfferTier.STANDARD,
         "standard offer: CLV (12 months) ¥800.00 < ¥2,000.00; grade potential is not one of core"),
        (None, "", OfferTier.STANDARD,
         "standard offer: no CLV estimate yet; grade none is not one of core"),
    ],
)  # fmt: skip
def test_the_offer_tier_and_its_reason(
    clv: Decimal | None, grade: str, expected: OfferTier, reason: str
) -> None:
    assert rules.winback_offer_tier(
        clv_12m=clv, grade=grade, min_clv=Decimal("2000"), grades=["core"],
        has_high_value_offer=True,
    ) == (expected, reason)  # fmt: skip


def test_without_a_high_value_offer_everyone_gets_the_standard_one() -> None:
    assert rules.winback_offer_tier(
        clv_12m=Decimal("99999"), grade="core", min_clv=Decimal("1"), grades=["core"],
        has_high_value_offer=False,
    ) == (OfferTier.STANDARD, "the programme has one offer for everyone")  # fmt: skip


# ---------------------------------------------------------------------- the programme's checks


def _problems(**changes: object) -> list[str]:
    values: dict[str, object] = {
        "churn_threshold": Decimal("0.6"),
        "holdout_share": Decimal("0.1"),
        "cool_down_days": 90,
        "window_days": 60,
        "offer_kind": "coupon",
        "has_coupon_template": True,
        "points": None,
        "gift_text": "",
        "high_value_offer_kind": "",
        "has_high_value_coupon_template": False,
        "high_value_points": None,
        "high_value_gift_text": "",
        "high_value_min_clv": None,
        "high_value_grades": [],
        "channels": ["sms"],
        "frequency_cap_messages": 2,
        "frequency_cap_days": 7,
    }
    values.update(changes)
    return rules.winback_problems(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"churn_threshold": Decimal("1")}, "churn_threshold: expected a probability between 0 and 1, e.g. 0.6"),
        ({"churn_threshold": Decimal("0")}, "churn_threshold: expected a probability between 0 and 1, e.g. 0.6"),
        ({"holdout_share": Decimal("0.51")}, "holdout_share: expected 0 to 0.5"),
        ({"cool_down_days": 30}, "cool_down_days: at least the measurement window (window_days)"),
        ({"window_days": 0}, "window_days: expected 1 to 730 days"),
        ({"has_coupon_template": False}, "coupon_template_id: a coupon offer needs a coupon template"),
        ({"offer_kind": "points", "has_coupon_template": False}, "points: a points offer needs a number of points, at least 1"),
        ({"high_value_offer_kind": "points", "high_value_points": 500}, "high_value_min_clv: say who is high value (a CLV, grades or both)"),
        ({"high_value_points": 500}, "high_value_offer_kind: choose the high-value offer's kind"),
        ({"high_value_offer_kind": "points", "high_value_grades": ["vip"]}, "high_value_points: a points offer needs a number of points, at least 1"),
        ({"high_value_grades": ["vip"]}, "high_value_grades: 'vip' is not one of core, potential, ordinary"),
        ({"channels": []}, "channels: at least one channel"),
        ({"frequency_cap_days": None}, "frequency_cap_days: give both the number of messages and the days"),
    ],
)  # fmt: skip
def test_programme_checks(changes: dict[str, object], problem: str | None) -> None:
    found = _problems(**changes)
    if problem is None:
        assert found == []
    else:
        assert found[0] == problem
