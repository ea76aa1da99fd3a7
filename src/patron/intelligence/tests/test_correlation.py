"""Rank correlations with intervals, and the simple model, on data whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from patron.intelligence import correlation


def test_the_interval_follows_fisher_with_the_bonett_wright_error() -> None:
    low, high = correlation.fisher_interval(0.3, 103)
    se = math.sqrt((1 + 0.045) / 100)
    assert low == pytest.approx(math.tanh(math.atanh(0.3) - correlation.Z_95 * se))
    assert high == pytest.approx(math.tanh(math.atanh(0.3) + correlation.Z_95 * se))
    assert correlation.fisher_interval(0.5, 3) == (-1.0, 1.0)


def _data(n: int = 2000, seed: int = 1) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    drives = rng.normal(size=n)
    hurts = rng.normal(size=n)
    noise = rng.normal(size=n)
    logit = 1.2 * drives - 0.8 * hurts
    outcome = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    sparse = np.where(np.arange(n) < 20, rng.normal(size=n), np.nan)  # 20 values only
    table = pa.table(
        {"drives": drives, "hurts": hurts, "noise": noise, "sparse": sparse, "flat": np.ones(n)}
    )
    return table, outcome


def test_factors_that_drive_the_outcome_come_first_with_the_right_sign() -> None:
    table, outcome = _data()
    factors = correlation.factor_correlations(
        table, outcome, ["noise", "hurts", "drives", "sparse", "flat"]
    )
    by_name = {f.feature: f for f in factors}
    assert [f.feature for f in factors][:2] == ["drives", "hurts"]
    assert by_name["drives"].rho > 0.3 and by_name["drives"].is_clear
    assert by_name["hurts"].rho < -0.2 and by_name["hurts"].is_clear
    assert by_name["drives"].low < by_name["drives"].rho < by_name["drives"].high
    assert by_name["drives"].customers == 2000
    # too few values, or no spread: nothing to say
    assert "sparse" not in by_name and "flat" not in by_name


def test_the_model_weighs_the_clear_factors_and_scores_unseen_customers() -> None:
    table, outcome = _data()
    result = correlation.study(table, outcome, ["drives", "hurts", "noise"], name="repurchase")
    assert result.customers == 2000 and result.positive == int(outcome.sum())
    weights = {w.feature: w.coefficient for w in result.model_weights}
    assert set(weights) == {"drives", "hurts"}  # noise is not clear: left out of the model
    assert weights["drives"] > 0.8 and weights["hurts"] < -0.5
    assert result.model_auc is not None and result.model_auc > 0.7


def test_one_outcome_only_gives_no_model() -> None:
    table, _ = _data(200)
    result = correlation.study(table, np.ones(200), ["drives"], name="satisfaction")
    assert result.factors == [] and result.model_auc is None and result.model_weights == []
