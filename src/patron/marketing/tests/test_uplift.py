"""The uplift statistics (no database): Wilson and Newcombe intervals against scipy and the
published values, Welch's interval against scipy, the holdout draw as a property."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from patron.marketing import rules, uplift


@pytest.mark.parametrize(
    ("successes", "n"), [(0, 1), (1, 1), (0, 10), (3, 10), (81, 263), (500, 1000), (7, 7)]
)
def test_wilson_matches_scipy(successes: int, n: int) -> None:
    # when
    ours = uplift.wilson_interval(successes, n)
    theirs = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    # then
    assert ours is not None
    assert ours.estimate == pytest.approx(successes / n)
    assert (ours.low, ours.high) == (
        pytest.approx(theirs.low, abs=1e-12),
        pytest.approx(theirs.high, abs=1e-12),
    )


def test_wilson_at_90_percent_matches_scipy() -> None:
    ours = uplift.wilson_interval(12, 40, confidence=0.90)
    theirs = stats.binomtest(12, 40).proportion_ci(confidence_level=0.90, method="wilson")
    assert ours is not None
    assert (ours.low, ours.high) == (pytest.approx(theirs.low), pytest.approx(theirs.high))


#: Newcombe (1998), Statistics in Medicine 17, Table II, method 10 (hybrid score), to 4 places.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_TABLE_II)
def test_newcombe_reproduces_the_published_table(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    # when
    interval = uplift.newcombe_difference(*counts)
    # then
    assert interval is not None
    assert interval.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (round(interval.low, 4), round(interval.high, 4)) == published
    assert interval.method == uplift.NEWCOMBE


def test_an_empty_group_has_no_interval() -> None:
    assert uplift.wilson_interval(0, 0) is None
    assert uplift.newcombe_difference(1, 5, 0, 0) is None
    assert uplift.welch_difference(uplift.Sample.of([1.0, 2.0]), uplift.Sample.of([3.0])) is None


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        uplift.wilson_interval(6, 5)
    with pytest.raises(ValueError):
        uplift.wilson_interval(1, 5, confidence=1.5)


def test_welch_matches_scipy_on_revenue_like_data() -> None:
    # given: skewed revenue with most customers at 0
    rng = np.random.default_rng(11)
    a = np.where(rng.random(400) < 0.2, rng.lognormal(5, 1, 400), 0.0)
    b = np.where(rng.random(60) < 0.15, rng.lognormal(5, 1, 60), 0.0)
    # when
    ours = uplift.welch_difference(uplift.Sample.of(a), uplift.Sample.of(b))
    theirs = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    # then
    assert ours is not None
    assert ours.estimate == pytest.approx(a.mean() - b.mean())
    assert (ours.low, ours.high) == (pytest.approx(theirs.low), pytest.approx(theirs.high))


def test_zeros_padded_by_size_equal_explicit_zeros() -> None:
    # given: three buyers among ten customers
    padded = uplift.Sample.of([150.0, 200.0, 300.0], size=10)
    explicit = uplift.Sample.of([150.0, 200.0, 300.0] + [0.0] * 7)
    # then
    assert padded.n == explicit.n == 10
    assert padded.mean == pytest.approx(65.0)
    assert padded.variance == pytest.approx(explicit.variance)
    assert padded.variance == pytest.approx(float(np.var([150, 200, 300] + [0] * 7, ddof=1)))


def test_mean_interval_matches_scipy() -> None:
    values = [0.0, 0.0, 120.0, 80.5, 0.0, 310.0]
    ours = uplift.mean_interval(uplift.Sample.of(values))
    theirs = stats.t.interval(0.95, len(values) - 1, np.mean(values), stats.sem(values))
    assert ours is not None
    assert (ours.low, ours.high) == (pytest.approx(theirs[0]), pytest.approx(theirs[1]))


def test_no_variance_gives_the_point_itself() -> None:
    interval = uplift.welch_difference(uplift.Sample.of([0.0] * 5), uplift.Sample.of([0.0] * 3))
    assert interval == uplift.Interval(0.0, 0.0, 0.0, 0.95, uplift.WELCH)
    assert interval.is_significant is False


def test_significance_is_an_interval_that_leaves_out_zero() -> None:
    assert uplift.Interval(0.1, 0.02, 0.2, 0.95, "m").is_significant
    assert uplift.Interval(-0.1, -0.2, -0.01, 0.95, "m").is_significant
    assert not uplift.Interval(0.1, -0.02, 0.2, 0.95, "m").is_significant


def test_scaling_keeps_the_method_and_refuses_non_positive_factors() -> None:
    scaled = uplift.Interval(0.02, -0.01, 0.05, 0.95, "m").scaled(2)
    assert (scaled.estimate, scaled.low, scaled.high) == (0.04, -0.02, 0.1)
    with pytest.raises(ValueError):
        scaled.scaled(0)


def test_precision_notes() -> None:
    assert uplift.precision_notes(100, 0)[0].startswith("No holdout")
    assert uplift.precision_notes(20, 3)[0] == (
        "Small groups (20 treated, 3 held out): the interval is wide; read the uplift as a "
        "direction at most."
    )
    assert uplift.precision_notes(900, 100, events=250) == []
    assert uplift.precision_notes(900, 100, events=4)[0].startswith("Only 4 customer(s)")


# ---------------------------------------------------------------------- the holdout draw


@given(
    n=st.integers(min_value=0, max_value=3000),
    share=st.decimals(min_value=0, max_value=Decimal("0.5"), places=3),
    seed=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_the_holdout_is_within_one_member_of_its_share(n: int, share: Decimal, seed: int) -> None:
    # when
    held = rules.holdout_assign(range(1, n + 1), share, seed)
    # then
    assert abs(len(held) - round(n * float(share))) <= 1
    assert len(held) == rules.holdout_size(n, share)
    assert held <= set(range(1, n + 1))


@given(seed=st.integers(min_value=0, max_value=2**31), n=st.integers(min_value=1, max_value=300))
def test_the_draw_is_reproducible_whatever_the_order(seed: int, n: int) -> None:
    ids = list(range(100, 100 + n))
    shuffled = ids[:]
    random.Random(seed).shuffle(shuffled)
    assert rules.holdout_assign(ids, Decimal("0.2"), seed) == rules.holdout_assign(
        shuffled, Decimal("0.2"), seed
    )


def test_the_holdout_size_rounds_half_up() -> None:
    assert [rules.holdout_size(n, Decimal("0.1")) for n in (0, 1, 4, 5, 15, 25, 1000)] == [
        0, 0, 0, 1, 2, 3, 100,
    ]  # fmt: skip
    assert rules.holdout_size(3, Decimal("0.5")) == 2
    with pytest.raises(ValueError):
        rules.holdout_size(10, Decimal("0.6"))


def test_each_customer_is_held_out_about_as_often() -> None:
    # given: 2,000 draws over 20 customers at 25 %
    counts = dict.fromkeys(range(20), 0)
    for seed in range(2000):
        for customer in rules.holdout_assign(list(range(20)), Decimal("0.25"), seed):
            counts[customer] += 1
    # then: each is held out in about 500 draws (binomial sd ≈ 19)
    assert all(420 < n < 580 for n in counts.values()), counts
