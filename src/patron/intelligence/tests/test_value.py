"""Customer value: current, potential (peer headroom × P(alive)) and word of mouth (R-B6)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence.explain import render
from patron.intelligence.value import customer_value


def said(result: pa.Table, language: str = "en") -> list[list[str]]:
    """Each customer's value reasons in plain words."""
    return [
        [render(r, language=language) for r in json.loads(text)]
        for text in result.column("value_reasons").to_pylist()
    ]


def _table(**columns: Any) -> pa.Table:
    n = len(next(iter(columns.values())))
    return pa.table({"customer_id": np.arange(1, n + 1), **columns})


def test_potential_is_the_gap_to_the_peers_75th_percentile_times_p_alive() -> None:
    # given: one peer group; P75 of 100, 200, 300, 400 is 325
    table = _table(spend_365d=[100.0, 200.0, 300.0, 400.0], p_alive=[1.0, 0.5, 1.0, 0.2])
    # when
    result = customer_value(table)
    # then
    assert result.column("current_value").to_pylist() == [100.0, 200.0, 300.0, 400.0]
    assert result.column("potential_value").to_pylist() == [225.0, 62.5, 25.0, 0.0]
    assert result.schema.names == [
        "customer_id",
        "current_value",
        "potential_value",
        "word_of_mouth",
        "value_reasons",
    ]


def test_peers_are_the_same_cluster_before_the_same_rfm_segment() -> None:
    # given: two clusters of very different spend; segments that would mix them
    table = _table(
        spend_365d=[10.0, 20.0, 30.0, 1000.0, 2000.0, 3000.0],
        cluster=[0, 0, 0, 1, 1, 1],
        rfm_segment=["a", "b", "a", "b", "a", "b"],
    )
    # when
    by_cluster = customer_value(table)
    by_segment = customer_value(table, peer_column="rfm_segment")
    everybody = customer_value(table, peer_column=None)
    # then: cluster P75s are 25 and 2500
    assert by_cluster.column("potential_value").to_pylist() == [15.0, 5.0, 0.0, 1500.0, 500.0, 0.0]
    # segment a = 10, 30, 2000 -> P75 1015; segment b = 20, 1000, 3000 -> P75 2000
    assert by_segment.column("potential_value").to_pylist() == [
        1005.0,
        1980.0,
        985.0,
        1000.0,
        0.0,
        0.0,
    ]
    # all six: P75 = 1000 + 0.75 * (2000 - 1000) = 1750
    assert everybody.column("potential_value").to_pylist()[0] == 1740.0
    assert said(by_cluster)[0][1] == (
        "could spend 15 more a year: customers in cluster 0 reach 25 (75th percentile)"
    )


def test_rfm_segments_are_named_in_words() -> None:
    # given
    table = _table(spend_365d=[10.0, 30.0], rfm_segment=["important_value", "important_value"])
    # when
    reasons = said(customer_value(table))
    # then: P75 of 10, 30 is 25
    assert reasons[0][1] == (
        "could spend 15 more a year: customers in the Important value segment reach 25 "
        "(75th percentile)"
    )


def test_word_of_mouth_weighs_votes_positive_reviews_and_referrals() -> None:
    # given
    table = _table(
        spend_365d=[0.0, 0.0, 0.0],
        helpful_votes=[4, 0, None],
        positive_reviews=[2, 1, 0],
        referrals=[1, 0, 3],
    )
    # when
    result = customer_value(table)
    # then: 1 per vote, 3 per positive review, 10 per referral
    assert result.column("word_of_mouth").to_pylist() == [20.0, 3.0, 30.0]
    assert said(result)[0][2] == (
        "word of mouth: 4 helpful votes on reviews, 2 positive reviews, 1 referral"
    )


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"mean_sentiment": [0.7, 0.5, None]}, [9.0, 0.0, 0.0]),
        ({"mean_rating": [4.5, 3.0, None]}, [9.0, 0.0, 0.0]),
        ({}, [0.0, 0.0, 0.0]),
    ],
)
def test_without_a_positive_review_count_sentiment_or_rating_decides(
    columns: dict[str, list[float | None]], expected: list[float]
) -> None:
    # given: three reviews each
    table = _table(spend_365d=[1.0, 1.0, 1.0], reviews=[3, 3, 3], **columns)
    # when / then
    assert customer_value(table).column("word_of_mouth").to_pylist() == expected


def test_reasons_in_plain_words() -> None:
    # given
    table = _table(
        spend_365d=[1200.0, 5000.0, None, 100.0],
        p_alive=[0.8, 0.9, 0.05, 0.0],
        cluster=[3, 3, 3, 3],
        helpful_votes=[0, 12, 0, 0],
    )
    # when
    reasons = said(customer_value(table))
    # then: P75 of 1200, 5000, 0, 100 in cluster 3 is 2150
    assert reasons[0] == [
        "spent 1,200 in the last 12 months",
        "could spend 760 more a year: customers in cluster 3 reach 2,150 (75th percentile); "
        "80 % likely still active",
        "no word of mouth yet",
    ]
    assert reasons[1] == [
        "spent 5,000 in the last 12 months",
        "already at or above the 75th percentile of customers in cluster 3",
        "word of mouth: 12 helpful votes on reviews",
    ]
    assert reasons[2][0] == "no purchases in the last 12 months"
    assert reasons[2][1] == (
        "could spend 108 more a year: customers in cluster 3 reach 2,150 (75th percentile); "
        "5 % likely still active"
    )
    assert reasons[3][1] == (
        "little realistic headroom: customers in cluster 3 reach 2,150; 0 % likely still active"
    )


def test_without_p_alive_everybody_counts_as_active() -> None:
    # given
    table = _table(spend_365d=[0.0, 100.0])
    # when
    result = customer_value(table)
    # then: P75 = 75
    assert result.column("potential_value").to_pylist() == [75.0, 0.0]
    assert said(result)[0][1] == (
        "could spend 75 more a year: all customers reach 75 (75th percentile)"
    )


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match="table: column 'spend_365d' is missing"):
        customer_value(pa.table({"customer_id": [1]}))
    with pytest.raises(ValueError, match="peer_column: column 'segment' is not in the table"):
        customer_value(_table(spend_365d=[1.0]), peer_column="segment")


def test_an_empty_table_gives_an_empty_result() -> None:
    result = customer_value(_table(spend_365d=pa.array([], pa.float64())))
    assert result.num_rows == 0
    assert result.column("value_reasons").type == pa.string()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(0, 1e6)),
            st.one_of(st.none(), st.floats(0, 1)),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_property_potential_is_never_negative_nor_above_the_gap(
    rows: list[tuple[float | None, float | None, int]],
) -> None:
    # given
    spend, alive, cluster = (list(column) for column in zip(*rows, strict=True))
    table = _table(spend_365d=spend, p_alive=alive, cluster=cluster)
    # when
    result = customer_value(table)
    # then
    potential = np.array(result.column("potential_value").to_pylist())
    current = np.array(result.column("current_value").to_pylist())
    assert np.all(potential >= 0)
    for group in set(cluster):
        members = np.array(cluster) == group
        gap = np.quantile(current[members], 0.75) - current[members]
        assert np.all(potential[members] <= np.maximum(gap, 0) + 1e-6)
    assert all(len(lines) == 3 for lines in said(result))
