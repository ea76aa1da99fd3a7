"""Credit model, score scale and fallback scorecard on synthetic feature tables."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence import metrics
from patron.intelligence.models import credit
from patron.intelligence.models.credit import (
    MONOTONE_RISK,
    SCORE_SCALE,
    CreditModel,
    Reason,
    Scorecard,
    ScoreScale,
    booster_contributions,
    feature_matrix,
    fit_credit,
    platt_scaling,
    rank_reasons,
    top_contributions,
)

# Bad outcomes depend on these features with known signs; aov and mean_rating are noise.
TRUE_LOGIT = {
    "chargebacks": 2.0,
    "pay_later_defaults": 2.0,
    "return_rate": 7.0,
    "tenure_days": -0.002,
    "orders": -0.1,
}


def synthetic(n: int, seed: int) -> tuple[pa.Table, npt.NDArray[np.bool_], npt.NDArray[Any]]:
    rng = np.random.default_rng(seed)
    columns = {
        "chargebacks": rng.poisson(0.15, n).astype(float),
        "pay_later_defaults": rng.poisson(0.05, n).astype(float),
        "return_rate": rng.beta(1.0, 5.0, n),
        "tenure_days": rng.uniform(0.0, 1200.0, n),
        "orders": 1.0 + rng.poisson(5.0, n),
    }
    logit = np.asarray(-3.5 + sum(TRUE_LOGIT[k] * v for k, v in columns.items()))
    bad = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    rating = np.where(rng.random(n) < 0.3, np.nan, rng.uniform(1.0, 5.0, n))
    table = pa.table(
        {
            "customer_id": pa.array(np.arange(n), type=pa.int64()),
            **columns,
            "aov": rng.lognormal(5.0, 0.5, n),
            "mean_rating": pa.array(rating, from_pandas=True),  # NaN → null
            "province": pa.array(["浙江"] * n),  # text: not a feature
        }
    )
    return table, bad, logit


@functools.cache
def fitted() -> CreditModel:
    table, bad, _ = synthetic(2000, seed=1)
    return CreditModel(num_threads=1, seed=0).fit(table, bad)


FEATURES = ["chargebacks", "pay_later_defaults", "return_rate", "tenure_days", "orders"]
TYPICAL = {
    "chargebacks": 0.0,
    "pay_later_defaults": 0.0,
    "return_rate": 0.1,
    "tenure_days": 600.0,
    "orders": 6.0,
    "aov": 150.0,
    "mean_rating": 4.0,
}


def rows(*records: Mapping[str, float | None]) -> pa.Table:
    names = list(records[0])
    return pa.table({name: pa.array([r[name] for r in records], pa.float64()) for name in names})


# --- the learned model ------------------------------------------------------------------


def test_credit_model_ranks_held_out_bad_outcomes() -> None:
    # given: a model fitted on one sample, a fresh sample from the same process
    model = fitted()
    holdout, bad, true_logit = synthetic(1500, seed=2)
    # when
    probability = model.probability(holdout)
    score = model.score(holdout)
    # then: close to the best possible ranking (the true log-odds)
    best = metrics.auc(bad, true_logit)
    got = metrics.auc(bad, probability)
    assert best is not None and got is not None
    assert got >= 0.80
    assert got >= best - 0.05
    assert metrics.auc(bad, -score) == pytest.approx(got, abs=0.01)
    # calibrated: the mean probability is near the observed rate
    assert float(probability.mean()) == pytest.approx(float(bad.mean()), abs=0.02)


def test_credit_model_reports_what_it_learned() -> None:
    # given
    _, bad, _ = synthetic(2000, seed=1)
    # when
    model = fitted()
    # then
    info = model.info_
    assert info["model"] == "lightgbm"
    assert (info["n_train"], info["n_validation"]) == (1500, 500)
    assert info["n_bad"] == int(bad.sum())
    assert info["base_rate"] == bad.mean()
    assert 1 <= info["best_iteration"] <= 200
    assert model.feature_names_ == [*FEATURES, "aov", "mean_rating"]
    assert set(info["feature_importance_gain"]) == set(model.feature_names_)
    gain = info["feature_importance_gain"]
    assert gain["return_rate"] > gain["aov"]
    assert info["monotone"] == {name: MONOTONE_RISK[name] for name in FEATURES}
    assert model.params_["num_threads"] == 1
    assert model.params_["num_leaves"] == 15
    assert model.params_["min_data_in_leaf"] == 15
    assert model.params_["platt_a"] > 0
    assert model.params_["score_scale"]["base_score"] == 600.0


def test_beyond_max_rows_a_stratified_sample_is_learned_from() -> None:
    # given: 2,000 customers and room for 800
    table, bad, _ = synthetic(2000, seed=1)
    model = CreditModel(seed=0)
    model.max_rows = 800
    # when
    model.fit(table, bad)
    # then: 800 rows learned from (600 + 200 held out), the bad share kept
    info = model.info_
    assert (info["n_rows"], info["n_train"], info["n_validation"]) == (2000, 600, 200)
    assert info["n_bad"] == int(bad.sum())
    assert model.params_["max_rows"] == 800
    assert model.params_["min_data_in_leaf"] == 6
    auc = metrics.auc(bad, model.probability(table))
    assert auc is not None and auc > 0.8


def test_credit_model_fit_is_deterministic() -> None:
    # given
    table, bad, _ = synthetic(600, seed=3)
    # when
    first = CreditModel(seed=7).fit(table, bad).probability(table)
    second = CreditModel(seed=7).fit(table, bad).probability(table)
    # then
    assert np.array_equal(first, second)


@pytest.mark.parametrize("feature", FEATURES)
def test_monotone_constraints_hold_on_a_grid(feature: str) -> None:
    # given: 100 held-out customers, the feature swept over its range for each
    model = fitted()
    holdout, _, _ = synthetic(100, seed=4)
    grid = np.linspace(0.0, {"return_rate": 1.0, "tenure_days": 2000.0}.get(feature, 10.0), 25)
    direction = MONOTONE_RISK[feature]
    scores = []
    # when
    for value in grid:
        swept = holdout.set_column(
            holdout.schema.get_field_index(feature), feature, pa.array(np.full(100, value))
        )
        scores.append(model.score(swept))
    # then: a +1 feature never raises the score, a −1 feature never lowers it
    steps = np.diff(np.stack(scores), axis=0) * direction
    assert (steps <= 0).all()


@settings(max_examples=60, deadline=None)
@given(
    base=st.fixed_dictionaries(
        {
            "chargebacks": st.integers(0, 6).map(float),
            "pay_later_defaults": st.integers(0, 4).map(float),
            "return_rate": st.floats(0.0, 1.0),
            "tenure_days": st.floats(0.0, 3000.0),
            "orders": st.integers(1, 60).map(float),
            "aov": st.floats(1.0, 5000.0),
            "mean_rating": st.one_of(st.none(), st.floats(1.0, 5.0)),
        }
    ),
    feature=st.sampled_from(FEATURES),
    step=st.floats(0.0, 1000.0),
)
def test_raising_a_risk_feature_never_raises_the_score(
    base: dict[str, float | None], feature: str, step: float
) -> None:
    # given
    model = fitted()
    lower = dict(base)
    higher = dict(base)
    higher[feature] = float(base[feature] or 0.0) + step
    # when
    score = model.score(rows(lower, higher))
    probability = model.probability(rows(lower, higher))
    # then
    if MONOTONE_RISK[feature] > 0:
        assert score[1] <= score[0]
        assert probability[1] >= probability[0]
    else:
        assert score[1] >= score[0]
        assert probability[1] <= probability[0]


any_value = st.one_of(st.none(), st.just(math.nan), st.floats(min_value=-1e12, max_value=1e12))


@settings(max_examples=60, deadline=None)
@given(record=st.fixed_dictionaries({name: any_value for name in TYPICAL}))
def test_scores_stay_within_350_and_950(record: dict[str, float | None]) -> None:
    # given: any values at all, missing ones included
    table = rows(record)
    # when
    model_score = fitted().score(table)
    card_score = Scorecard().score(table)
    # then
    assert model_score.dtype == np.int64 and card_score.dtype == np.int64
    assert 350 <= int(model_score[0]) <= 950
    assert 350 <= int(card_score[0]) <= 950
    assert 0.0 < float(fitted().probability(table)[0]) < 1.0


@pytest.mark.parametrize(
    ("feature", "value"),
    [("chargebacks", 3.0), ("pay_later_defaults", 2.0), ("return_rate", 0.9)],
)
def test_reasons_name_the_feature_that_was_made_bad(feature: str, value: float) -> None:
    # given: a typical customer, and the same customer with one feature made bad
    model = fitted()
    typical = dict(TYPICAL)
    made_bad = {**TYPICAL, feature: value}
    # when
    score = model.score(rows(typical, made_bad))
    reasons = model.reasons(rows(typical, made_bad), top=3)
    # then
    assert score[1] < score[0]
    first = reasons[1][0]
    assert (first.feature, first.value) == (feature, value)
    assert first.points < -20
    assert all(r.points < 0 for r in reasons[1])
    assert [r.points for r in reasons[1]] == sorted(r.points for r in reasons[1])
    assert feature not in [r.feature for r in reasons[0]]


def test_strengths_are_what_pushed_the_score_up() -> None:
    # given: a long-standing, frequent customer who never returns anything
    model = fitted()
    good = {**TYPICAL, "return_rate": 0.0, "tenure_days": 1200.0, "orders": 20.0}
    # when
    strengths = model.strengths(rows(good), top=2)[0]
    reasons = model.reasons(rows(good), top=2)[0]
    # then
    assert len(strengths) == 2
    assert strengths[0].points >= strengths[1].points > 0
    assert "return_rate" in [s.feature for s in strengths]
    assert all(r.points < 0 for r in reasons)
    assert model.score(rows(good))[0] > model.score(rows(TYPICAL))[0]


def test_contributions_add_up_to_the_score() -> None:
    # given
    model = fitted()
    holdout, _, _ = synthetic(200, seed=5)
    # when
    base, points = model.contributions(holdout)
    # then
    assert points.shape == (200, len(model.feature_names_))
    raw = base + points.sum(axis=1)
    assert np.array_equal(SCORE_SCALE.clip(raw), model.score(holdout))
    assert np.allclose(SCORE_SCALE.probability(raw), model.probability(holdout))


def test_explain_gives_score_probability_reasons_and_strengths_in_one_pass() -> None:
    # given
    model = fitted()
    holdout, _, _ = synthetic(300, seed=10)
    # when
    explained = model.explain(holdout, top=2)
    # then
    assert explained.score is not None
    assert np.array_equal(explained.score, model.score(holdout))
    assert np.allclose(explained.probability, model.probability(holdout), rtol=1e-12)
    assert explained.reasons == model.reasons(holdout, top=2)
    assert explained.strengths == model.strengths(holdout, top=2)


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_deduplicated_contributions_are_lightgbms_own(zero_as_missing: bool) -> None:
    # given: a model with splits whose missing type is NaN (mean_rating has nulls), None, or
    # Zero (zero_as_missing), scored on rows with NaN, exact zeros and extreme values
    table, bad, _ = synthetic(1500, seed=11)
    matrix, names = feature_matrix(table)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "min_data_in_leaf": 10,
        "num_threads": 1,
        "seed": 0,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
        "zero_as_missing": zero_as_missing,
    }
    booster = lgb.train(params, lgb.Dataset(matrix, bad.astype(float)), num_boost_round=30)
    rows_to_explain, _ = feature_matrix(synthetic(2000, seed=12)[0])
    rows_to_explain[::7, 2] = np.nan
    rows_to_explain[::5, 0] = 0.0
    rows_to_explain[::11, 3] = 1e300
    # when
    direct = booster_contributions(booster, rows_to_explain, 30, deduplicate=False)
    deduplicated = booster_contributions(booster, rows_to_explain, 30, deduplicate=True)
    # then
    assert deduplicated.shape == direct.shape == (2000, len(names) + 1)
    assert np.allclose(deduplicated, direct, rtol=0.0, atol=1e-12)
    assert np.allclose(direct.sum(axis=1), booster.predict(rows_to_explain, raw_score=True))


def test_deduplicated_contributions_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: chunks of 700 rows
    monkeypatch.setattr(credit, "_CHUNK_ROWS", 700)
    model = fitted()
    matrix, _ = feature_matrix(synthetic(2000, seed=13)[0], model.feature_names_)
    iterations = model.info_["best_iteration"]
    # when
    chunked = booster_contributions(model.booster, matrix, iterations, deduplicate=True)
    # then
    direct = booster_contributions(model.booster, matrix, iterations, deduplicate=False)
    assert np.allclose(chunked, direct, rtol=0.0, atol=1e-12)


def test_a_missing_value_is_reported_as_none() -> None:
    model = fitted()
    reasons = model.reasons(rows({**TYPICAL, "return_rate": 0.9, "mean_rating": None}), top=10)
    by_name = {r.feature: r for r in reasons[0]}
    assert by_name["return_rate"].value == 0.9
    assert "mean_rating" not in by_name or by_name["mean_rating"].value is None


def test_scoring_needs_the_fitted_features() -> None:
    model = fitted()
    with pytest.raises(ValueError, match="lacks column\\(s\\): tenure_days"):
        model.score(rows({k: v for k, v in TYPICAL.items() if k != "tenure_days"}))
    with pytest.raises(RuntimeError, match="not fitted"):
        CreditModel().score(rows(TYPICAL))


def test_fit_refuses_too_few_of_a_class_and_bad_directions() -> None:
    table, _, _ = synthetic(100, seed=6)
    labels = np.zeros(100, dtype=bool)
    labels[:9] = True
    with pytest.raises(ValueError, match="at least 10 rows of each class, got 9 bad and 91 other"):
        CreditModel().fit(table, labels)
    with pytest.raises(ValueError, match="rows but there are 99 labels"):
        CreditModel().fit(table, labels[:99])
    with pytest.raises(ValueError, match="monotone directions"):
        CreditModel(monotone={"orders": 2})


# --- choosing the model -----------------------------------------------------------------


def test_fit_credit_falls_back_to_the_scorecard_below_min_bad() -> None:
    # given: 400 rows with 29 bad outcomes
    table, _, _ = synthetic(400, seed=8)
    labels = np.zeros(400, dtype=bool)
    labels[::14][:29] = True
    # when
    model = fit_credit(table, labels)
    # then
    assert isinstance(model, Scorecard)
    assert model.info_["n_bad"] == 29
    assert model.info_["fallback_reason"] == (
        "29 bad and 371 good outcomes in 400 rows; the learned model needs at least 30 of "
        "each and 300 rows"
    )
    assert model.info_["missing_features"] == [
        "cod_refusals",
        "failed_payments",
        "quick_return_rate",
        "cancel_rate",
        "cancels_after_shipment",
        "low_rating_share",
    ]


def test_fit_credit_falls_back_below_min_rows_and_learns_above() -> None:
    # given
    small, small_bad, _ = synthetic(250, seed=9)
    large, large_bad, _ = synthetic(1200, seed=9)
    # when
    few_rows = fit_credit(small, np.arange(250) % 5 == 0)
    learned = fit_credit(large, large_bad, num_threads=1, seed=0)
    # then
    assert isinstance(few_rows, Scorecard)
    assert isinstance(learned, CreditModel)
    assert int(large_bad.sum()) >= 30
    assert learned.info_["n_bad"] == int(large_bad.sum())
    assert small_bad.size == 250


# --- the scorecard ----------------------------------------------------------------------


def scorecard_rows() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "chargebacks": pa.array([1, 5, 0], pa.int64()),
            "pay_later_defaults": pa.array([0, 3, 0], pa.int64()),
            "cod_refusals": pa.array([0, 1, 0], pa.int64()),
            "return_rate": pa.array([0.5, None, 0.1], pa.float64()),
            "tenure_days": pa.array([360.0, 0.0, 2000.0]),
            "orders": pa.array([4, 1, 100], pa.int64()),
            "is_business": pa.array([False, False, True]),
            "province": pa.array(["浙江", "广东", "上海"]),
        }
    )


def test_scorecard_points_follow_the_table() -> None:
    # given
    #   1: 700 − 120 (1 chargeback) − 60 (return rate 50 %: 30 points above 20 %) + 36 (360
    #      days) + 15 (3 orders after the first) = 571
    #   2: 700 − 240 (5 chargebacks, capped) − 200 (3 defaults, capped) − 60 (1 refusal) = 200,
    #      clipped to 350; the unknown return rate costs nothing
    #   3: 700 + 73 (tenure, capped) + 70 (orders, capped) = 843
    table = scorecard_rows()
    card = Scorecard()
    # when
    score = card.score(table)
    # then
    assert score.tolist() == [571, 350, 843]
    base, points = card.contributions(table)
    assert base.tolist() == [700.0, 700.0, 700.0]
    assert (base + points.sum(axis=1)).tolist() == pytest.approx([571.0, 200.0, 843.0])


def test_scorecard_reasons_and_strengths() -> None:
    # given
    table = scorecard_rows()
    card = Scorecard()
    # when
    reasons = card.reasons(table, top=3)
    strengths = card.strengths(table, top=3)
    # then
    assert as_tuples(reasons) == [
        [("chargebacks", 1.0, -120.0), ("return_rate", 0.5, -60.0)],
        [
            ("chargebacks", 5.0, -240.0),
            ("pay_later_defaults", 3.0, -200.0),
            ("cod_refusals", 1.0, -60.0),
        ],
        [],
    ]
    assert as_tuples(strengths) == [
        [("tenure_days", 360.0, 36.0), ("orders", 4.0, 15.0)],
        [],
        [("tenure_days", 2000.0, 73.0), ("orders", 100.0, 70.0)],
    ]
    assert all(isinstance(r, Reason) for row in reasons + strengths for r in row)


def as_tuples(reasons: list[list[Reason]]) -> list[list[tuple[str, float | None, float]]]:
    """Points rounded to 1e-9: 200 × (0.5 − 0.2) is 59.99999999999999 in floating point."""
    return [[(r.feature, r.value, round(r.points, 9)) for r in row] for row in reasons]


def test_scorecard_explain_matches_its_parts() -> None:
    table = scorecard_rows()
    card = Scorecard()
    explained = card.explain(table, top=3)
    assert explained.score is not None
    assert explained.score.tolist() == [571, 350, 843]
    assert explained.probability.tolist() == card.probability(table).tolist()
    assert explained.reasons == card.reasons(table, top=3)
    assert explained.strengths == card.strengths(table, top=3)


def test_scorecard_probability_inverts_the_score_scale() -> None:
    # given
    table = scorecard_rows()
    # when
    probability = Scorecard().probability(table)
    # then: at 350 the odds are 50:1 halved (350 − 600) / 50 = −5 times, i.e. 50/32:1
    assert probability[1] == pytest.approx(1.0 / (1.0 + 50.0 / 2**5))
    assert probability[0] == pytest.approx(1.0 / (1.0 + 50.0 * 2 ** ((571 - 600) / 50)))


def test_scorecard_fit_records_counts_and_learns_nothing() -> None:
    # given
    table = scorecard_rows()
    before = Scorecard().score(table)
    # when
    card = Scorecard().fit(table, [True, False, False])
    # then
    assert card.info_ == {
        "model": "scorecard",
        "n_train": 3,
        "missing_features": [
            "failed_payments",
            "quick_return_rate",
            "cancel_rate",
            "cancels_after_shipment",
            "low_rating_share",
        ],
        "n_bad": 1,
        "base_rate": 1 / 3,
    }
    assert card.score(table).tolist() == before.tolist()
    assert card.params_["base_points"] == 700.0
    assert card.params_["rules"][0] == {
        "feature": "chargebacks",
        "points_per_unit": -120.0,
        "threshold": 0.0,
        "cap": 240.0,
    }


# --- the scale, calibration and feature tables ------------------------------------------


def test_score_scale_anchor_points() -> None:
    scale = ScoreScale()
    assert scale.score([1 / 51, 1 / 101, 1 / 201, 0.9, 1e-9]).tolist() == [600, 650, 700, 350, 950]
    assert scale.probability([600.0, 650.0]) == pytest.approx([1 / 51, 1 / 101])
    assert scale.factor == pytest.approx(50 / math.log(2))
    assert scale.offset == pytest.approx(600 - 50 / math.log(2) * math.log(50))


def test_platt_scaling_recovers_a_known_sigmoid() -> None:
    # given: outcomes drawn with P = sigmoid(0.5 m − 1)
    rng = np.random.default_rng(0)
    margin = rng.normal(0.0, 2.0, 20_000)
    outcome = rng.random(margin.size) < 1.0 / (1.0 + np.exp(-(0.5 * margin - 1.0)))
    # when
    a, b = platt_scaling(margin, outcome)
    # then
    assert a == pytest.approx(0.5, abs=0.03)
    assert b == pytest.approx(-1.0, abs=0.05)


def test_platt_scaling_keeps_the_slope_positive() -> None:
    # given: margins that rank exactly backwards
    a, _ = platt_scaling([3.0, 2.0, 1.0, 0.0], [0, 0, 1, 1])
    # then
    assert a == 1e-3


def test_feature_matrix_picks_numeric_columns_and_maps_nulls_to_nan() -> None:
    # given
    table = pa.table(
        {
            "customer_id": pa.array([1, 2], pa.int64()),
            "orders": pa.array([3, None], pa.int64()),
            "is_business": pa.array([True, None]),
            "province": pa.array(["浙江", "广东"]),
        }
    )
    # when
    matrix, names = feature_matrix(table)
    # then
    assert names == ["orders", "is_business"]
    assert matrix[0].tolist() == [3.0, 1.0]
    assert np.isnan(matrix[1]).all()
    with pytest.raises(ValueError, match="'province' is string, not numeric"):
        feature_matrix(table, ["province"])


@settings(max_examples=200, deadline=None)
@given(
    matrix=st.lists(
        st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 1.0, 3.0]), min_size=5, max_size=5),
        min_size=1,
        max_size=20,
    ),
    top=st.integers(min_value=0, max_value=6),
    direction=st.sampled_from([-1, 1]),
)
def test_property_top_contributions_are_a_stable_sort_of_each_row(
    matrix: list[list[float]], top: int, direction: int
) -> None:
    # given: many ties (values drawn from a few)
    points = np.array(matrix)
    # when
    columns, top_points = top_contributions(points, top, direction)
    # then: the same as sorting each row whole, ties in column order
    signed = points * direction
    for row, (cols, pts) in enumerate(zip(columns.tolist(), top_points.tolist(), strict=True)):
        ranked = sorted(range(5), key=lambda j: (-signed[row, j], j))[:top]
        expected = [j if signed[row, j] > 0 else -1 for j in ranked]
        assert cols == expected
        assert pts == [points[row, j] if j >= 0 else 0.0 for j in expected]


def test_top_contributions_and_reasons_pick_by_sign_and_size() -> None:
    # given: three features, two customers
    points = np.array([[-5.0, 2.0, -9.0], [0.0, 4.0, 4.0]])
    values = np.array([[1.0, np.nan, 3.0], [0.0, 5.0, 6.0]])
    # when
    down_columns, down_points = top_contributions(points, 2, -1)
    up_columns, up_points = top_contributions(points, 2, +1)
    reasons = rank_reasons(["a", "b", "c"], values, points, 2, -1)
    strengths = rank_reasons(["a", "b", "c"], values, points, 2, +1)
    # then: ties keep column order, empty slots are -1 / 0
    assert down_columns.tolist() == [[2, 0], [-1, -1]]
    assert down_points.tolist() == [[-9.0, -5.0], [0.0, 0.0]]
    assert up_columns.tolist() == [[1, -1], [1, 2]]
    assert up_points.tolist() == [[2.0, 0.0], [4.0, 4.0]]
    assert reasons == [[Reason("c", 3.0, -9.0), Reason("a", 1.0, -5.0)], []]
    assert strengths == [[Reason("b", None, 2.0)], [Reason("b", 5.0, 4.0), Reason("c", 6.0, 4.0)]]
    with pytest.raises(ValueError, match="top must be >= 0"):
        top_contributions(points, -1, 1)
