"""The whole pipeline as a library: one row per customer, deterministic, and blind to anything
at or after the cut-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from patron.intelligence import grading
from patron.intelligence import reason_columns as rc
from patron.intelligence.explain import render
from patron.intelligence.pipeline import (
    MIN_CHURN_LOG_ODDS,
    MIN_CREDIT_POINTS,
    Config,
    Result,
    explain,
    run,
)
from patron.intelligence.sources import Sources, conform, empty

CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")
HOUR = 3_600_000_000


def _sources(customers: int = 400, seed: int = 3, *, spread: bool = False) -> Sources:
    """Customers buying at their own rate over two years; a few with chargebacks and returns.
    Orders go to customers in time order (the first customers bought first), or with
    ``spread`` at random times for everyone."""
    rng = np.random.default_rng(seed)
    start = int((CUTOFF - timedelta(days=730)).timestamp() * 1e6)
    end = int((CUTOFF + timedelta(days=60)).timestamp() * 1e6)  # some rows after the cut-off
    counts = rng.poisson(rng.gamma(1.5, 3.0, customers)) + 1
    ids = np.repeat(np.arange(customers), counts)
    placed = rng.integers(start, end, len(ids))
    placed = placed if spread else np.sort(placed)
    order = np.argsort(ids, kind="stable")
    ids, placed = ids[order], placed[order]
    n = len(ids)
    order_id = np.arange(1, n + 1)
    amount = np.round(rng.gamma(3.0, 60.0, n), 2)
    risky = np.isin(ids, rng.choice(customers, customers // 10, replace=False))
    orders = pa.table(
        {
            "order_id": order_id,
            "customer_id": ids,
            "status": np.full(n, "completed"),
            "placed_at": pa.array(placed, UTC_US),
            "paid_at": pa.array(placed + HOUR, UTC_US),
            "shipped_at": pa.array(placed + 10 * HOUR, UTC_US),
            "delivered_at": pa.array(placed + 50 * HOUR, UTC_US),
            "cancelled_at": pa.nulls(n, UTC_US),
            "total_amount": amount,
            "discount_amount": np.zeros(n),
            "coupon_code": np.full(n, ""),
            "currency": np.full(n, "CNY"),
        }
    )
    bad = risky & (rng.random(n) < 0.4)
    payments = pa.table(
        {
            "payment_id": order_id,
            "order_id": order_id,
            "customer_id": ids,
            "method": np.where(bad, "pay_later", "alipay"),
            "status": np.where(bad, "chargeback", "succeeded"),
            "amount": amount,
            "at": pa.array(placed + HOUR, UTC_US),
        }
    )
    customers_table = pa.table(
        {
            "customer_id": np.arange(customers),
            "source": np.full(customers, "t"),
            "external_id": np.arange(customers).astype(str),
            "kind": np.full(customers, "individual"),
            "registered_at": pa.array(np.full(customers, start - 24 * HOUR), UTC_US),
            "province": np.full(customers, "上海"),
            "registration_channel": np.full(customers, "app"),
            "company_size": np.full(customers, ""),
        }
    )
    return Sources(
        customers=conform("customers", customers_table),
        orders=conform("orders", orders),
        payments=conform("payments", payments),
        returns=empty("returns"),
        reviews=empty("reviews"),
        tickets=empty("tickets"),
    )


def _before(sources: Sources, cutoff: datetime) -> Sources:
    instant = pa.scalar(cutoff, UTC_US)
    return Sources(
        customers=sources.customers,
        orders=sources.orders.filter(pc.less(sources.orders.column("placed_at"), instant)),
        payments=sources.payments.filter(pc.less(sources.payments.column("at"), instant)),
        returns=sources.returns,
        reviews=sources.reviews,
        tickets=sources.tickets,
    )


POLICY = grading.GradePolicy.from_dict(grading.DEFAULT_POLICY)


@pytest.fixture(scope="module")
def result() -> Result:
    return run(_sources(), CUTOFF, policy=POLICY, config=Config(time_zone="UTC"))


@pytest.fixture(scope="module")
def scored(result: Result) -> pa.Table:
    return result.scores


def test_every_customer_gets_one_row_with_scores_and_reasons(result: Result) -> None:
    # then
    scored = result.scores
    assert scored.column("customer_id").to_pylist() == list(range(400))
    credit = scored.column("credit_score").to_numpy()
    assert credit.min() >= 350 and credit.max() <= 950
    assert set(scored.column("grade").to_pylist()) <= {"core", "potential", "ordinary"}
    reasons = rc.decoded(scored.column("reasons")[0].as_py())
    assert {"grade", "p_alive", "clv_12m", "rfm", "value"} <= set(reasons)
    assert render(reasons["p_alive"][0]).startswith("bought ")
    assert result.explainer_inputs is not None
    credit_reasons = explain(result.explainers["credit"], result.explainer_inputs.slice(0, 1))[0]
    assert credit_reasons
    for reason in credit_reasons:
        assert "{" not in render(reason) and "{" not in render(reason, language="zh-hans")


@pytest.fixture(scope="module")
def with_churn_model() -> Result:
    """Customers buying at any time, and the churn back-test made to prefer LightGBM."""
    from patron.intelligence import pipeline

    def lightgbm_wins(*args: object) -> dict[str, object]:
        return {"better": "lightgbm"}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "compare_churn", lightgbm_wins)
        sources = _sources(spread=True)
        return run(sources, CUTOFF, policy=POLICY, config=Config(time_zone="UTC"))


@pytest.mark.parametrize("which", ["result", "with_churn_model"])
def test_reasons_given_on_reading_are_the_models_own_top_contributions(
    which: str, request: pytest.FixtureRequest
) -> None:
    # given: the run's explainers and what they read, as the lake keeps them
    result: Result = request.getfixturevalue(which)
    inputs = result.explainer_inputs
    expected_models = {"credit", "churn"} if which == "with_churn_model" else {"credit"}
    assert inputs is not None and set(result.explainers) == expected_models
    minimums = {"credit": MIN_CREDIT_POINTS, "churn": MIN_CHURN_LOG_ODDS}
    for name, explainer in result.explainers.items():
        minimum = minimums[name]
        # when: every customer at once, and a few one at a time (as a page reads them)
        every = explain(explainer, inputs)
        # then: the same reasons either way, in the reasons' stored form
        for row in (0, 17, 399):
            assert explain(explainer, inputs.slice(row, 1)) == [every[row]]
        # and they are the model's largest contributions in the score's bad direction
        model = explainer.model
        ranked = model.reasons(inputs)  # the model's own ranking, unfiltered
        bought = pc.is_valid(result.scores.column("churn_probability")).to_pylist()
        for row, given in enumerate(every):
            expected = [
                (r.feature, round(r.points, 2)) for r in ranked[row] if abs(r.points) >= minimum
            ]
            if name == "churn" and not bought[row]:
                assert given is None, row  # no churn risk, so no reasons for it
            elif not expected:
                assert given == (
                    None if name == "churn" else [{"key": "credit.nothing", "params": {}}]
                )
            else:
                assert given is not None
                assert [(g["feature"], g["points"]) for g in given] == expected, row


def test_nothing_at_or_after_the_cut_off_changes_the_scores(scored: pa.Table) -> None:
    # given: the same sources without anything at or after the cut-off
    trimmed = _before(_sources(), CUTOFF)
    # when
    again = run(trimmed, CUTOFF, policy=POLICY, config=Config(time_zone="UTC")).scores
    # then (compared as Python values, NaN as missing: NaN never equals itself)
    assert _values(again) == _values(scored)


def _values(table: pa.Table) -> dict[str, list[object]]:
    return {
        name: [None if value != value else value for value in table.column(name).to_pylist()]
        for name in table.column_names
    }


def test_customers_with_chargebacks_score_lower() -> None:
    # given
    sources = _sources()
    scores = run(sources, CUTOFF, policy=POLICY, config=Config(time_zone="UTC")).scores
    payments = sources.payments.filter(
        pc.and_(
            pc.equal(sources.payments.column("status"), "chargeback"),
            pc.less(sources.payments.column("at"), pa.scalar(CUTOFF, UTC_US)),
        )
    )
    charged = np.isin(
        scores.column("customer_id").to_numpy(), payments.column("customer_id").to_numpy()
    )
    credit = scores.column("credit_score").to_numpy().astype(float)
    # then
    assert credit[charged].mean() < credit[~charged].mean() - 100


def test_certifications_none_of_which_is_in_force_at_the_cut_off_rank_zero() -> None:
    """A back-dated run (a replay, a back-test) on a shop whose certifications were all granted
    after the cut-off: every rank is 0, not an index error."""
    from patron.intelligence.pipeline import certification_rank

    later = pa.scalar(CUTOFF + timedelta(days=30), UTC_US)
    table = pa.table(
        {
            "customer_id": pa.array([1, 2], pa.int64()),
            "rank": pa.array([2, 3], pa.int64()),
            "granted_at": pa.array([later.as_py()] * 2, UTC_US),
            "expires_at": pa.array([(CUTOFF + timedelta(days=400))] * 2, UTC_US),
            "ended_at": pa.array([None, None], UTC_US),
        }
    )
    assert certification_rank(table, np.array([1, 2, 3]), CUTOFF).to_pylist() == [0, 0, 0]


def test_a_scorecard_rule_on_a_feature_not_computed_is_explained_as_missing() -> None:
    # given: a scorecard whose rules name a feature the features table lacks
    from patron.intelligence.models.credit import Scorecard
    from patron.intelligence.pipeline import Explainer, explainer_inputs

    features = pa.table({"customer_id": [1, 2], "chargebacks": [0, 2]})
    model = Scorecard().fit(features)
    assert model.info_["missing_features"]  # the default rules name more than chargebacks
    explainer = Explainer(model, "credit.feature", -1, 5.0, {"chargebacks": 0.0})
    # when
    inputs = explainer_inputs(features, features, [explainer])
    given = explain(explainer, inputs)
    # then: the missing features are null, and the chargebacks are the reason
    assert set(model.feature_names_) <= set(inputs.column_names)
    assert given[0] is None and given[1] is not None
    assert [reason["feature"] for reason in given[1]] == ["chargebacks"]
