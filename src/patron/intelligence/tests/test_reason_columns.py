"""Reasons built column-wise (reason_columns) are the JSON that explain.py reads."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence import reason_columns as rc
from patron.intelligence.explain import render
from patron.intelligence.models.clusters import _NAME_WORDS, CHINESE, cluster_name_render
from patron.intelligence.reason_texts import TEXTS


def loads(column: pa.Array) -> list[object]:
    return [None if text is None else json.loads(text) for text in column.to_pylist()]


def test_numbers_are_json_and_missing_ones_are_null() -> None:
    values = [1.5, float("nan"), float("inf"), 1e21, -0.25, 2.0]
    assert loads(rc.number(values)) == [1.5, None, None, 1e21, -0.25, 2.0]
    assert loads(rc.number(pa.array([1.23456, None]), decimals=2)) == [1.23, None]
    assert loads(rc.integer([3.0, 4.6, float("nan")])) == [3, 5, None]


def test_text_is_escaped_once_per_distinct_value() -> None:
    assert loads(rc.text(["CNY", 'say "hi"\n', None, "CNY", "退货"])) == [
        "CNY",
        'say "hi"\n',
        None,
        "CNY",
        "退货",
    ]


def test_a_reason_per_row_with_its_key_chosen_by_code() -> None:
    # when
    column = rc.reason(
        (np.array([0, 1, -1]), ("alive.once", "alive.days")),
        {"days": rc.integer([5, 6, 7]), "purchase_days": "2"},
    )
    # then: a negative code gives no reason
    assert loads(column) == [
        {"key": "alive.once", "params": {"days": 5, "purchase_days": 2}},
        {"key": "alive.days", "params": {"days": 6, "purchase_days": 2}},
        None,
    ]
    assert render(loads(column)[1]) == (  # type: ignore[arg-type]
        "bought on 2 different days; the last purchase was 6 days ago"
    )


def test_lists_leave_out_what_is_missing() -> None:
    a = pa.array(['{"key":"a"}', None, None])
    b = pa.array([None, None, None], pa.string())  # null throughout
    c = pa.array(['{"key":"c"}', '{"key":"c"}', None])
    assert loads(rc.listed([a, b, c])) == [[{"key": "a"}, {"key": "c"}], [{"key": "c"}], []]
    assert loads(rc.listed([a, b], empty=None)) == [[{"key": "a"}], None, None]


def test_pyarrow_skip_join_loses_rows_so_we_do_not_use_it() -> None:
    """Why reason_columns joins nulls its own way: if pyarrow fixes this, simplify."""
    a = pa.array(["x"] + [None] * 9)
    b = pa.array([None] * 10, pa.string())
    joined = pc.binary_join_element_wise(a, b, ",", null_handling="skip")
    assert len(joined) != 10  # pyarrow 26: one row
    assert len(rc.listed([a, b])) == 10


def test_feature_reasons_per_slot() -> None:
    # given: two customers, two slots; the second slot of the second customer is empty
    columns = np.array([[1, 0], [0, -1]])
    values = np.array([[0.38, 3.0], [7.0, 0.0]])
    points = np.array([[-41.0, -6.0], [-12.5, 0.0]])
    keep = columns >= 0
    # when
    slots = rc.feature_reasons(
        "credit.feature",
        ["orders", "return_rate"],
        [2.0, float("nan")],
        columns,
        values,
        points,
        keep,
    )
    # then
    assert loads(rc.listed(slots)) == [
        [
            {
                "key": "credit.feature",
                "feature": "return_rate",
                "median": None,
                "value": 0.38,
                "points": -41.0,
            },
            {
                "key": "credit.feature",
                "feature": "orders",
                "median": 2.0,
                "value": 3.0,
                "points": -6.0,
            },
        ],
        [
            {
                "key": "credit.feature",
                "feature": "orders",
                "median": 2.0,
                "value": 7.0,
                "points": -12.5,
            }
        ],
    ]


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64)),
            st.one_of(st.none(), st.text(max_size=12)),
            st.integers(min_value=-1, max_value=1),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_property_columns_equal_the_reasons_built_one_by_one(
    rows: list[tuple[float | None, str | None, int]],
) -> None:
    # given
    values = pa.array([v for v, _, _ in rows], pa.float64())
    texts = [t for _, t, _ in rows]
    codes = np.array([c for _, _, c in rows])
    # when
    column = rc.reason((codes, ("k0", "k1")), {"v": rc.number(values), "t": rc.text(texts)})
    # then: the same as a dict per row, dumped by the standard library
    expected: list[dict[str, object] | None] = []
    for value, text, code in rows:
        if code < 0:
            expected.append(None)
            continue
        number = value if value is not None and math.isfinite(value) else None
        expected.append({"key": f"k{code}", "params": {"v": number, "t": text}})
    assert loads(column) == expected


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    ),
    chunked=st.booleans(),
)
def test_property_lists_equal_the_ones_built_one_by_one(
    rows: list[list[int | None]], chunked: bool
) -> None:
    # given: three item columns, each item absent or {"k": n}; maybe in two chunks
    def column(position: int) -> pa.Array:
        texts = [None if row[position] is None else f'{{"k":{row[position]}}}' for row in rows]
        if chunked and len(texts) > 1:
            return pa.chunked_array([texts[:1], texts[1:]], pa.string())
        return pa.array(texts, pa.string())

    items = [column(p) for p in range(3)]
    lists = [[{"k": n} for n in row if n is not None] for row in rows]
    # when / then
    assert loads(pa.array(rc.listed(items).to_pylist())) == lists
    assert loads(pa.array(rc.listed(items, empty=None).to_pylist())) == [
        found or None for found in lists
    ]
    assert loads(pa.array(rc.listed(items, empty="null").to_pylist())) == [
        found or None for found in lists
    ]


def test_reasons_by_score_decode_as_one_object_and_old_runs_text_too() -> None:
    # given: two customers; the second has no "rfm" reasons
    grade = pa.array(['[{"key":"grade.top"}]', "[]"])
    rfm = pa.chunked_array([['[{"key":"rfm"}]'], [None]], pa.string())
    # when
    column = rc.by_score({"grade": grade, "rfm": rfm})
    # then
    assert [rc.decoded(row) for row in column.to_pylist()] == [
        {"grade": [{"key": "grade.top"}], "rfm": [{"key": "rfm"}]},
        {"grade": []},
    ]
    assert rc.decoded('{"grade":[{"key":"grade.top"}]}') == {"grade": [{"key": "grade.top"}]}
    assert rc.decoded(None) == {} and rc.decoded("[]") == {}


def test_every_key_written_by_the_pipeline_has_a_sentence() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = "".join(
        (root / name).read_text(encoding="utf-8")
        for name in ("pipeline.py", "purchases.py", "grading.py", "value.py")
    )
    keys = set(re.findall(r'"((?:credit|churn|rfm|alive|clv|grade|value)(?:\.[a-z_]+)?)"', sources))
    used = {k for k in keys if k in TEXTS or "." in k}
    assert used - set(TEXTS) == set()


def test_cluster_names_read_in_chinese_word_by_word() -> None:
    assert cluster_name_render("coupon-driven · occasional", "zh-hans") == "爱用券 · 偶购"
    assert cluster_name_render("typical return rate · lapsed (2)", "zh-hans") == (
        "退货率一般 · 久未购买 (2)"
    )
    assert cluster_name_render("coupon-driven · occasional", "en") == ("coupon-driven · occasional")
    words = {word for pair in _NAME_WORDS.values() for word in pair}
    assert words - set(CHINESE) == set()


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_sentence_is_a_valid_template(key: str) -> None:
    import string

    assert list(string.Formatter().parse(TEXTS[key]))
