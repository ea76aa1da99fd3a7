"""Back-test metrics on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from patron.intelligence.metrics import auc, brier, calibration_table, ks

Y = [0, 0, 1, 1]
SCORE = [0.1, 0.4, 0.35, 0.8]


def test_auc_counts_correctly_ordered_pairs() -> None:
    # given: of the four (event, non-event) pairs, 0.35 < 0.4 is the one out of order
    # when / then
    assert auc(Y, SCORE) == 0.75
    assert auc(Y, [-s for s in SCORE]) == 0.25
    assert auc(np.array([True, False]), [0.2, 0.2]) == 0.5


def test_ks_is_the_largest_gap_between_the_class_distributions() -> None:
    # given: at 0.8 half the events and no non-event are above; at 0.35 all events and half
    # the non-events
    # when / then
    assert ks(Y, SCORE) == 0.5
    assert ks(Y, [-s for s in SCORE]) == 0.5
    assert ks([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0


def test_brier_is_the_mean_squared_error_of_the_probabilities() -> None:
    assert brier([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.0]) == pytest.approx((0.01 + 0.04 + 0.16) / 4)
    assert brier([1, 1], [1.0, 1.0]) == 0.0


def test_metrics_are_none_when_undefined() -> None:
    assert auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert ks([0, 0], [0.1, 0.2]) is None
    assert brier([], []) is None
    assert calibration_table([], []) == []


def test_metrics_refuse_mismatched_or_nan_input() -> None:
    with pytest.raises(ValueError, match="y has 2 rows but the scores have 3"):
        auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        brier([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration_table([0, 1], [0.1, 1.2])


def test_calibration_table_uniform_bins() -> None:
    # given: two rows in [0, 0.5), three in [0.5, 1] (1.0 falls in the top bin)
    y = [0, 1, 1, 1, 0]
    p = [0.1, 0.3, 0.5, 1.0, 0.6]
    # when
    table = calibration_table(y, p, bins=2)
    # then
    assert table == [
        {"lower": 0.0, "upper": 0.5, "count": 2, "mean_predicted": 0.2, "observed_rate": 0.5},
        {
            "lower": 0.5,
            "upper": 1.0,
            "count": 3,
            "mean_predicted": pytest.approx(0.7),
            "observed_rate": pytest.approx(2 / 3),
        },
    ]


def test_calibration_table_leaves_out_empty_bins() -> None:
    table = calibration_table([0, 1], [0.05, 0.95], bins=10)
    assert [(row["lower"], row["count"]) for row in table] == [(0.0, 1), (0.9, 1)]


def test_calibration_table_quantile_bins_hold_equal_counts() -> None:
    # given
    p = np.linspace(0.01, 0.08, 8)
    y = np.array([0, 0, 0, 0, 0, 1, 0, 1])
    # when
    table = calibration_table(y, p, bins=4, strategy="quantile")
    # then
    assert [row["count"] for row in table] == [2, 2, 2, 2]
    assert [row["observed_rate"] for row in table] == [0.0, 0.0, 0.5, 0.5]
    assert table[0]["mean_predicted"] == pytest.approx(0.015)


def test_calibration_table_quantile_with_a_single_value() -> None:
    table = calibration_table([0, 1, 1], [0.3, 0.3, 0.3], strategy="quantile")
    assert table == [
        {
            "lower": 0.3,
            "upper": 0.3,
            "count": 3,
            "mean_predicted": pytest.approx(0.3),
            "observed_rate": pytest.approx(2 / 3),
        }
    ]
