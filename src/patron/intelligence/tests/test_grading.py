"""Grades under an editable policy: composite, thresholds, hard rules, hysteresis, moves."""

from __future__ import annotations

import copy
import json
import math
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence.grading import (
    DEFAULT_POLICY,
    GRADES,
    Grade,
    GradeInput,
    GradePolicy,
    HardRule,
    grade,
    moves,
    percentile_rank,
    policy_preview,
    stability,
)

SETTINGS = settings(max_examples=60, deadline=None)


def _policy(**changes: Any) -> dict[str, Any]:
    """A one-input policy on ``clv_12m`` with thresholds 0.8 / 0.5 and no margin."""
    policy: dict[str, Any] = {
        "version": 3,
        "inputs": {"clv_12m": 1.0},
        "thresholds": {"core_min": 0.8, "potential_min": 0.5},
        "requires": {"core": [], "potential": []},
        "hysteresis": 0.0,
    }
    policy.update(changes)
    return policy


def _table(**columns: Any) -> pa.Table:
    n = len(next(iter(columns.values())))
    return pa.table({"customer_id": np.arange(1, n + 1), **columns})


# ---------------------------------------------------------------------- the policy


def test_the_default_policy_is_valid_and_round_trips_through_json() -> None:
    # given
    policy = GradePolicy.from_dict(json.loads(json.dumps(DEFAULT_POLICY)))
    # when
    again = GradePolicy.from_dict(policy.to_dict())
    # then
    assert again == policy
    assert policy.to_dict() == DEFAULT_POLICY
    assert policy.input_columns() == (
        "clv_12m",
        "credit_score",
        "p_alive",
        "rfm_m",
        "word_of_mouth",
    )
    assert policy.rules == (
        HardRule(grade="core", column="credit_score", op=">=", value=600.0),
        HardRule(grade="core", column="p_alive", op=">=", value=0.3),
    )


def _mutate(path: str, value: Any) -> dict[str, Any]:
    policy = copy.deepcopy(DEFAULT_POLICY)
    *parents, last = path.split("/")
    target: Any = policy
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return policy


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("inputs/clv_12m", -0.4, "inputs.clv_12m: weight must be a number ≥ 0"),
        ("inputs/clv_12m", "0.4", "inputs.clv_12m: must be a number"),
        ("inputs", {}, "inputs: must map column names to weights"),
        ("inputs", {"clv_12m": 0.0}, "inputs: the weights sum to 0"),
        ("lower_is_better", ["churn_probability"], "lower_is_better.churn_probability: not one"),
        ("thresholds/core_min", 0.4, "thresholds.core_min: must be above potential_min"),
        ("thresholds/core_min", 1.2, "thresholds.core_min: must be between 0 and 1"),
        ("thresholds/potential_min", _DELETE, "thresholds.potential_min: missing"),
        ("thresholds/ordinary_min", 0.1, "thresholds.ordinary_min: unknown field"),
        ("requires/core/0/op", "==", "requires.core[0].op: must be one of >=, >, <=, <"),
        ("requires/core/1/value", "high", "requires.core[1].value: must be a number"),
        ("requires/core/0", {"column": "x", "op": ">="}, "requires.core[0]: must have exactly"),
        ("requires/ordinary", [], "requires.ordinary: only core and potential have rules"),
        ("hysteresis", 0.2, "hysteresis: must be less than half the gap"),
        ("hysteresis", -0.01, "hysteresis: must be a number ≥ 0"),
        ("version", "2", "version: must be an integer"),
        ("colour", "blue", "colour: unknown policy field"),
    ],
)
def test_an_invalid_policy_names_the_field(path: str, value: Any, message: str) -> None:
    # given
    data = _mutate(path, value)
    # when / then
    with pytest.raises(ValueError) as error:
        GradePolicy.from_dict(data)
    assert str(error.value).startswith(message)


def test_weights_need_not_sum_to_one() -> None:
    # given: the same proportions, scaled
    table = _table(clv_12m=[1.0, 2.0, 3.0, 4.0, 5.0], credit_score=[900, 700, 500, 800, 600])
    halves = _policy(inputs={"clv_12m": 0.5, "credit_score": 0.5})
    twos = _policy(inputs={"clv_12m": 2, "credit_score": 2})
    # when / then
    assert grade(table, halves).composite.tolist() == grade(table, twos).composite.tolist()


# ---------------------------------------------------------------------- grading


def test_percentile_ranks_share_ties_and_put_missing_last() -> None:
    assert percentile_rank(np.array([10.0, 20.0, 20.0, 40.0])).tolist() == [0, 0.5, 0.5, 1]
    assert percentile_rank(np.array([3.0, np.nan, 1.0])).tolist() == [1.0, 0.0, 0.5]
    assert percentile_rank(np.array([7.0])).tolist() == [0.5]
    assert percentile_rank(np.array([])).tolist() == []


def test_grades_from_the_composite_and_the_two_thresholds() -> None:
    # given: ranks 0, .25, .5, .75, 1
    table = _table(clv_12m=[10.0, 20.0, 30.0, 40.0, 50.0])
    # when
    result = grade(table, _policy())
    # then
    assert result.customer_id.tolist() == [1, 2, 3, 4, 5]
    assert result.composite.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert result.grade.tolist() == ["ordinary", "ordinary", "potential", "potential", "core"]
    assert result.counts() == {"core": 1, "potential": 2, "ordinary": 2}
    assert result.policy_version == 3
    assert result.sentences(4) == ("12-month value in the top 20 % of customers",)
    assert result.sentences(0) == ("12-month value in the bottom 20 % of customers",)


def test_reasons_name_the_inputs_that_weighed_most() -> None:
    # given: customer 5 is best on value, worst on credit; churn is lower-is-better
    table = _table(
        clv_12m=[10.0, 20.0, 30.0, 40.0, 50.0],
        credit_score=[900.0, 800.0, 700.0, 600.0, None],
        churn_probability=[0.9, 0.7, 0.5, 0.3, 0.1],
    )
    policy = _policy(
        inputs={"clv_12m": 0.5, "credit_score": 0.2, "churn_probability": 0.3},
        lower_is_better=["churn_probability"],
    )
    # when
    result = grade(table, policy)
    # then: lifted by value and low churn risk; customer 1 held down by the same two
    assert result.percentile["churn_probability"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert result.composite[4] == pytest.approx(0.8)
    assert result.grade[4] == "core"
    assert result.sentences(4) == (
        "12-month value in the top 20 % of customers",
        "churn risk in the lowest 20 % of customers",
    )
    assert result.sentences(0) == (
        "12-month value in the bottom 20 % of customers",
        "churn risk in the highest 20 % of customers",
    )
    assert result.reasons_text()[4] == (
        "12-month value in the top 20 % of customers; churn risk in the lowest 20 % of customers"
    )


def test_a_failed_hard_rule_drops_a_grade_and_says_why() -> None:
    # given: the two best customers; one has poor credit, the other none at all
    table = _table(
        clv_12m=[10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
        credit_score=[700.0, 700.0, 700.0, 700.0, 500.0, None],
    )
    policy = _policy(
        thresholds={"core_min": 0.7, "potential_min": 0.5},
        requires={"core": [{"column": "credit_score", "op": ">=", "value": 600}]},
    )
    # when
    result = grade(table, policy)
    # then
    assert result.grade.tolist()[3:] == ["potential", "potential", "potential"]
    assert result.held_back.tolist() == [False, False, False, False, True, True]
    assert result.sentences(4)[-1] == "held back from core: requires credit score >= 600"


def test_failing_the_rules_of_two_grades_drops_two() -> None:
    # given
    table = _table(clv_12m=[10.0, 20.0, 30.0], complaints=[0.0, 0.0, 3.0])
    policy = _policy(
        requires={
            "core": [{"column": "complaints", "op": "<", "value": 1}],
            "potential": [{"column": "complaints", "op": "<=", "value": 2}],
        }
    )
    # when
    result = grade(table, policy)
    # then
    assert result.grade.tolist() == ["ordinary", "potential", "ordinary"]
    assert result.sentences(2)[-2:] == (
        "held back from core: requires complaints < 1",
        "held back from potential: requires complaints <= 2",
    )


def test_hysteresis_keeps_customers_near_a_threshold_where_they_were() -> None:
    # given: 101 customers whose composite is i / 100; margin 0.02 around 0.80 and 0.50
    table = _table(clv_12m=np.arange(101, dtype=np.float64))
    policy = _policy(hysteresis=0.02)
    customer = {0.79: 80, 0.81: 82, 0.49: 50, 0.77: 78}  # composite -> customer id
    previous = {80: "core", 82: "potential", 50: "potential", 78: "core"}
    # when
    result = grade(table, policy, previous=previous)
    fresh = grade(table, policy)
    # then
    by_id = result.as_mapping()
    assert by_id[customer[0.79]] == "core"  # 0.79 ≥ 0.80 − 0.02: stays core
    assert by_id[customer[0.81]] == "potential"  # 0.81 < 0.80 + 0.02: not yet core
    assert by_id[customer[0.49]] == "potential"
    assert by_id[customer[0.77]] == "potential"  # below the margin: moves
    assert fresh.as_mapping()[customer[0.79]] == "potential"
    assert fresh.as_mapping()[customer[0.81]] == "core"
    assert result.sentences(79)[-1] == (
        "kept core: score 0.79 is within the 0.02 margin below the core threshold 0.80"
    )
    assert result.sentences(81)[-1] == (
        "stays potential: score 0.81 has not cleared the core threshold 0.80 by the 0.02 margin"
    )


def test_missing_columns_and_unknown_previous_grades_are_refused() -> None:
    table = _table(clv_12m=[1.0, 2.0])
    with pytest.raises(ValueError, match="table: column 'credit_score' \\(used by the policy\\)"):
        grade(table, DEFAULT_POLICY)
    with pytest.raises(ValueError, match="previous\\[2\\]: unknown grade 'gold'"):
        grade(table, _policy(), previous={2: "gold"})


def test_grades_as_an_arrow_table() -> None:
    # given
    result = grade(_table(clv_12m=[1.0, 2.0]), _policy())
    # when
    table = result.to_table()
    # then
    assert table.schema.names == ["customer_id", "grade", "composite", "reasons"]
    assert table.column("grade").to_pylist() == ["ordinary", "core"]
    assert table.column("reasons").type == pa.string()
    assert [json.loads(r) for r in table.column("reasons").to_pylist()] == [
        json.loads(result.reasons[i].as_py()) for i in range(2)
    ]


# ---------------------------------------------------------------------- moves


def test_moves_count_transitions_new_and_departed_customers() -> None:
    # given
    before = {1: "core", 2: "core", 3: "ordinary", 4: "ordinary", 9: "potential"}
    after = grade(_table(clv_12m=[50.0, 30.0, 45.0, 10.0, 40.0]), _policy())
    assert after.grade.tolist() == ["core", "ordinary", "potential", "ordinary", "potential"]
    # when
    result = moves(before, after)
    # then
    assert result == {
        "grades": ["core", "potential", "ordinary"],
        "matrix": [[1, 0, 1], [0, 0, 0], [0, 1, 1]],
        "up": 1,
        "down": 1,
        "unchanged": 2,
        "new": 1,
        "left": 1,
    }
    assert stability(before, after) == 0.5


def test_previewing_a_stricter_policy_shows_who_would_move_down() -> None:
    # given
    table = _table(clv_12m=[10.0, 20.0, 30.0, 40.0, 50.0])
    stricter = _policy(thresholds={"core_min": 0.9, "potential_min": 0.6})
    # when
    preview = policy_preview(table, current=_policy(), proposed=stricter)
    # then: customer 3 (0.5) falls to ordinary; the rest keep their grade
    assert preview["down"] == 1
    assert preview["up"] == 0
    assert preview["matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]


def test_stability_of_identical_runs_is_one_and_of_disjoint_runs_undefined() -> None:
    result = grade(_table(clv_12m=[1.0, 2.0, 3.0]), _policy())
    assert stability(result, result) == 1.0
    assert math.isnan(stability({}, result))


# ---------------------------------------------------------------------- properties

_values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.just(float("nan")),
)
_grade_names = st.sampled_from(GRADES)


_RULE_GRADES: tuple[Grade, ...] = ("core", "potential")


@st.composite
def _policies(draw: st.DrawFn, with_rules: bool = True) -> GradePolicy:
    columns = ["a", "b", "c"]
    weights = draw(st.lists(st.floats(0.05, 1.0), min_size=3, max_size=3))
    potential_min = draw(st.floats(0.05, 0.7))
    core_min = draw(st.floats(potential_min + 0.05, 0.99))
    margin = draw(st.floats(0.0, (core_min - potential_min) / 2 * 0.99))
    rules: tuple[HardRule, ...] = ()
    if with_rules:
        rules = tuple(
            HardRule(grade=cast(Grade, g), column=draw(st.sampled_from(columns)), op=op, value=v)
            for g, op, v in draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(_RULE_GRADES),
                        st.sampled_from([">=", ">"]),  # raising a value can only help
                        st.floats(-1e3, 1e3),
                    ),
                    max_size=2,
                )
            )
        )
    return GradePolicy(
        inputs=tuple(GradeInput(c, w) for c, w in zip(columns, weights, strict=True)),
        core_min=core_min,
        potential_min=potential_min,
        rules=rules,
        hysteresis=margin,
    )


@st.composite
def _tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(1, 25))
    return _table(**{c: draw(st.lists(_values, min_size=n, max_size=n)) for c in "abc"})


@SETTINGS
@given(table=_tables(), policy=_policies(), data=st.data())
def test_property_only_the_three_grades_and_composites_in_range(
    table: pa.Table, policy: GradePolicy, data: st.DataObject
) -> None:
    previous = {
        i: data.draw(_grade_names) for i in table.column("customer_id").to_pylist() if i % 2
    }
    result = grade(table, policy, previous=previous)
    assert len(result) == table.num_rows
    assert set(result.grade.tolist()) <= set(GRADES)
    assert np.all((result.composite >= 0) & (result.composite <= 1))
    assert all(len(result.sentences(i)) >= 1 for i in range(len(result)))


_LEVEL = {"ordinary": 0, "potential": 1, "core": 2}


@SETTINGS
@given(table=_tables(), policy=_policies(), data=st.data())
def test_property_raising_one_input_never_lowers_that_customers_grade(
    table: pa.Table, policy: GradePolicy, data: st.DataObject
) -> None:
    # given: one customer, one input, a higher value; everybody else unchanged
    n = table.num_rows
    index = data.draw(st.integers(0, n - 1))
    column = data.draw(st.sampled_from(["a", "b", "c"]))
    values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
    old = values[index]
    new = data.draw(st.floats(min_value=-1e6 if np.isnan(old) else old, max_value=2e6))
    raised = values.copy()
    raised[index] = new
    higher = table.set_column(table.schema.get_field_index(column), column, pa.array(raised))
    previous = data.draw(
        st.dictionaries(st.sampled_from(table.column("customer_id").to_pylist()), _grade_names)
    )
    # when
    before = grade(table, policy, previous=previous)
    after = grade(higher, policy, previous=previous)
    # then
    assert _LEVEL[str(after.grade[index])] >= _LEVEL[str(before.grade[index])]
    assert after.composite[index] >= before.composite[index] - 1e-12


@SETTINGS
@given(table=_tables(), policy=_policies(with_rules=False), data=st.data())
def test_property_hysteresis_never_flips_a_customer_inside_their_band(
    table: pa.Table, policy: GradePolicy, data: st.DataObject
) -> None:
    # given: previous grades for everybody
    ids = table.column("customer_id").to_pylist()
    previous = {i: data.draw(_grade_names) for i in ids}
    # when
    result = grade(table, policy, previous=previous)
    # then: whoever did not cross (threshold ± margin) keeps their grade
    margin = policy.hysteresis
    bands = {
        "core": (policy.core_min - margin, math.inf),
        "potential": (policy.potential_min - margin, policy.core_min + margin),
        "ordinary": (-math.inf, policy.potential_min + margin),
    }
    for customer, composite, now in zip(ids, result.composite, result.grade, strict=True):
        low, high = bands[previous[customer]]
        if low <= composite < high:
            assert now == previous[customer]


@SETTINGS
@given(table=_tables(), policy=_policies(), data=st.data())
def test_property_the_moves_matrix_counts_every_customer_once(
    table: pa.Table, policy: GradePolicy, data: st.DataObject
) -> None:
    # given: a previous run that knows some of the customers, and some who have left
    ids = table.column("customer_id").to_pylist()
    before = {i: data.draw(_grade_names) for i in ids if data.draw(st.booleans())}
    before.update({1000 + i: "core" for i in range(data.draw(st.integers(0, 3)))})
    after = grade(table, policy)
    # when
    result = moves(before, after)
    # then
    matrix_total = sum(map(sum, result["matrix"]))
    assert matrix_total + result["new"] == table.num_rows
    assert matrix_total == result["up"] + result["down"] + result["unchanged"]
    assert result["left"] == len(before) - matrix_total
    assert moves(after, after)["matrix"] == np.diag([after.counts()[g] for g in GRADES]).tolist()


@SETTINGS
@given(policy=_policies())
def test_property_a_policy_survives_its_json_form(policy: GradePolicy) -> None:
    assert GradePolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_moves_refuse_an_unknown_previous_grade() -> None:
    after = grade(_table(clv_12m=[1.0, 2.0]), _policy())
    with pytest.raises(ValueError, match="before\\[2\\]: unknown grade 'gold'"):
        moves({1: "core", 2: "gold"}, after)
