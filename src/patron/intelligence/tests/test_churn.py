"""Churn model and its comparison with the BG/NBD P(alive)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from patron.intelligence import metrics
from patron.intelligence.models.churn import MONOTONE_CHURN, ChurnModel, compare_churn


def synthetic(n: int, seed: int) -> tuple[pa.Table, npt.NDArray[np.bool_], npt.NDArray[Any]]:
    """Churn driven by recency (strongly) and complaints; spend is noise."""
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0.0, 365.0, n)
    complaints = rng.poisson(0.3, n).astype(float)
    spend = rng.lognormal(6.0, 1.0, n)
    logit = -3.0 + 0.02 * recency + 0.8 * complaints
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    table = pa.table(
        {
            "customer_id": pa.array(np.arange(n), pa.int64()),
            "recency_days": recency,
            "complaints": complaints,
            "spend": spend,
        }
    )
    return table, churned, logit


@functools.cache
def fitted() -> ChurnModel:
    table, churned, _ = synthetic(1500, seed=1)
    return ChurnModel(num_threads=1, seed=0).fit(table, churned)


def test_churn_model_ranks_held_out_churners() -> None:
    # given
    model = fitted()
    holdout, churned, true_logit = synthetic(1000, seed=2)
    # when
    probability = model.probability(holdout)
    # then
    best = metrics.auc(churned, true_logit)
    got = metrics.auc(churned, probability)
    assert best is not None and got is not None
    assert got >= best - 0.03
    assert float(probability.mean()) == pytest.approx(float(churned.mean()), abs=0.03)
    assert model.info_["model"] == "lightgbm"
    assert model.info_["n_churned"] == int(synthetic(1500, seed=1)[1].sum())
    assert model.info_["monotone"] == MONOTONE_CHURN == {"recency_days": 1}


def test_churn_probability_never_falls_as_recency_grows() -> None:
    # given: 50 customers, their days since the last purchase swept from 0 to 400
    model = fitted()
    holdout, _, _ = synthetic(50, seed=3)
    probabilities = []
    # when
    for days in np.linspace(0.0, 400.0, 41):
        swept = holdout.set_column(1, "recency_days", pa.array(np.full(50, days)))
        probabilities.append(model.probability(swept))
    # then
    assert (np.diff(np.stack(probabilities), axis=0) >= 0).all()


def test_churn_reasons_name_the_long_absence() -> None:
    # given: two customers alike but for how long ago they last bought
    model = fitted()
    table = pa.table(
        {
            "recency_days": [10.0, 350.0],
            "complaints": [0.0, 0.0],
            "spend": [400.0, 400.0],
        }
    )
    # when
    reasons = model.reasons(table, top=2)
    strengths = model.strengths(table, top=2)
    base, terms = model.contributions(table)
    # then
    assert reasons[1][0].feature == "recency_days"
    assert reasons[1][0].value == 350.0
    assert reasons[1][0].points > 0
    assert strengths[0][0].feature == "recency_days"
    assert strengths[0][0].points < 0
    assert np.allclose(base + terms.sum(axis=1), model.log_odds(table))
    explained = model.explain(table, top=2)
    assert explained.score is None
    assert (explained.reasons, explained.strengths) == (reasons, strengths)
    assert np.allclose(explained.probability, model.probability(table))


def test_compare_churn_on_a_hand_computed_holdout() -> None:
    # given: the model ranks perfectly; 1 − P(alive) = [0.5, 0.9, 0.4, 0.8] gets 3 of 4 pairs
    y = [1, 1, 0, 0]
    p_model = [0.9, 0.8, 0.2, 0.1]
    p_alive = [0.5, 0.1, 0.6, 0.2]
    # when
    result = compare_churn(y, p_model, p_alive)
    # then
    assert result == {
        "n": 4,
        "churn_rate": 0.5,
        "lightgbm_auc": 1.0,
        "lightgbm_brier": pytest.approx(0.025),
        "btyd_auc": 0.75,
        "btyd_brier": pytest.approx(0.265),
        "better": "lightgbm",
        "decided_by": "auc",
    }


def test_compare_churn_picks_btyd_when_it_ranks_better() -> None:
    # given
    y = [1, 1, 0, 0]
    # when
    result = compare_churn(y, [0.5, 0.9, 0.4, 0.8], [0.1, 0.2, 0.8, 0.9])
    # then
    assert (result["better"], result["decided_by"]) == ("btyd", "auc")
    assert (result["lightgbm_auc"], result["btyd_auc"]) == (0.75, 1.0)


def test_compare_churn_breaks_an_auc_tie_by_brier() -> None:
    # given: both rank perfectly, the model's probabilities are sharper
    y = [1, 0]
    # when
    result = compare_churn(y, [0.9, 0.1], [0.4, 0.6])
    # then
    assert (result["better"], result["decided_by"]) == ("lightgbm", "brier")
    assert result["lightgbm_auc"] == result["btyd_auc"] == 1.0


def test_compare_churn_without_a_model_or_with_one_class() -> None:
    # given / when
    no_model = compare_churn([1, 0], None, [0.3, 0.9])
    one_class = compare_churn([1, 1], [0.9, 0.8], [0.9, 0.8])
    identical = compare_churn([1, 0], [0.6, 0.4], [0.4, 0.6])
    # then
    assert no_model["better"] == "btyd" and no_model["decided_by"] == "no_model"
    assert no_model["lightgbm_auc"] is None and no_model["btyd_auc"] == 1.0
    assert one_class["lightgbm_auc"] is None and one_class["btyd_auc"] is None
    assert (one_class["better"], one_class["decided_by"]) == ("lightgbm", "brier")
    assert (identical["better"], identical["decided_by"]) == ("btyd", "tie")


def test_the_model_with_the_signal_wins_on_a_simulated_holdout() -> None:
    # given: P(alive) that ignores recency (pure noise) against the fitted model
    model = fitted()
    holdout, churned, _ = synthetic(1000, seed=4)
    p_alive = np.random.default_rng(5).uniform(0.2, 0.9, 1000)
    # when
    result = compare_churn(churned, model.probability(holdout), p_alive)
    # then
    assert result["better"] == "lightgbm"
    assert result["lightgbm_auc"] > result["btyd_auc"] + 0.2
