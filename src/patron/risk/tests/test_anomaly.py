"""The anomaly model: a planted outlier ranks first and its reasons name what was planted; the
robust scale, missing values, determinism and the output's shape."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from patron.intelligence.features import output_schema
from patron.risk.anomaly import RESULT_SCHEMA, anomalies, robust_z


def _features(n: int = 300, seed: int = 1) -> pa.Table:
    """Customers with ordinary spend, orders and return rates, and no chargebacks."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "orders": rng.poisson(3, n).astype(np.int64),
            "spend": rng.gamma(2.0, 150.0, n),
            "return_rate": rng.beta(1, 12, n),
            "chargebacks": np.zeros(n, dtype=np.int64),
            "registration_channel": rng.integers(0, 8, n),  # a category: not used
        }
    )


def _plant(table: pa.Table, row: int, **values: float) -> pa.Table:
    for name, value in values.items():
        column = table.column(name).to_numpy().copy()
        column[row] = value
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(column))
    return table


def test_a_planted_outlier_ranks_first_and_its_reasons_name_what_was_planted() -> None:
    # given: customer 42 has six chargebacks and a return rate of 90 %
    features = _plant(_features(), 41, chargebacks=6, return_rate=0.9)
    # when
    result = anomalies(features, contamination=0.01)
    # then
    assert result.schema == RESULT_SCHEMA
    assert result.column("customer_id").to_pylist() == list(range(1, 301))
    scores = result.column("score").to_numpy()
    assert int(np.argmax(scores)) == 41
    assert scores.min() > 0.0 and scores.max() <= 1.0
    assert result.column("is_outlier")[41].as_py() is True
    assert sum(result.column("is_outlier").to_pylist()) == 3  # 1 % of 300
    reasons = result.column("reasons")[41].as_py()
    assert [r["feature"] for r in reasons[:2]] == ["chargebacks", "return_rate"]
    assert reasons[0]["value"] == 6.0
    assert reasons[0]["median"] == 0.0
    assert reasons[0]["z"] > 3


def test_reasons_leave_out_the_category_code_and_features_at_the_median() -> None:
    # given: everyone ordinary except a huge registration_channel code, which is a category
    features = _plant(_features(), 0, registration_channel=999)
    # when
    reasons = anomalies(features, top=10).column("reasons").to_pylist()
    # then
    assert all(r["feature"] != "registration_channel" for row in reasons for r in row)
    assert all(r["z"] != 0 for row in reasons for r in row)
    assert all(len(row) <= 4 for row in reasons)  # four usable features


def test_the_model_is_deterministic_given_the_seed() -> None:
    features = _plant(_features(), 7, spend=50_000.0)
    first = anomalies(features, seed=3)
    assert anomalies(features, seed=3).equals(first)


def test_missing_values_are_ordinary() -> None:
    # given: return rates missing for customers without deliveries, one planted spender
    features = _plant(_features(), 9, spend=80_000.0)
    rates = features.column("return_rate").to_numpy().copy()
    mask = np.zeros(rates.size, dtype=bool)
    mask[100:150] = True
    features = features.set_column(3, "return_rate", pa.array(rates, mask=mask))
    # when
    result = anomalies(features)
    # then
    assert int(np.argmax(result.column("score").to_numpy())) == 9
    missing = [r for row in result.column("reasons").to_pylist()[100:150] for r in row]
    assert all(r["feature"] != "return_rate" for r in missing)


def test_robust_z_falls_back_to_mean_deviation_when_the_iqr_is_zero() -> None:
    # given: mostly 0 (IQR 0), two 1s and a 10; and a column that never varies
    raw = np.zeros((20, 2))
    raw[0, 0], raw[1, 0], raw[2, 0] = 1.0, 1.0, 10.0
    # when
    medians, z = robust_z(raw)
    # then: mean |x − median| = 12 / 20 = 0.6, scale 1.2533 × 0.6
    assert medians.tolist() == [0.0, 0.0]
    assert z[2, 0] == pytest.approx(10 / (1.2533 * 0.6))
    assert z[:, 1].tolist() == [0.0] * 20


def test_it_runs_on_the_columns_of_customer_features() -> None:
    # given: the full feature schema, events unknown (null) for everyone
    schema = output_schema()
    rng = np.random.default_rng(5)
    n = 120
    columns = {}
    for field in schema:
        if field.name == "customer_id":
            columns[field.name] = pa.array(np.arange(n), pa.int64())
        elif field.name.endswith("_30d") and field.name.startswith(("views", "searches")):
            columns[field.name] = pa.nulls(n, field.type)
        else:
            columns[field.name] = pa.array(rng.poisson(2, n)).cast(field.type)
    features = pa.table(columns, schema=schema)
    # when
    result = anomalies(features, contamination=0.05)
    # then
    assert result.num_rows == n
    assert sum(result.column("is_outlier").to_pylist()) == 6


def test_tiny_and_empty_tables() -> None:
    empty = anomalies(_features(0))
    assert empty.num_rows == 0
    assert empty.schema == RESULT_SCHEMA
    one = anomalies(_features(1)).to_pylist()
    assert one == [{"customer_id": 1, "score": 0.0, "is_outlier": False, "reasons": []}]
