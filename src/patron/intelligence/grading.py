"""Customer grades — core / potential / ordinary — under a grade policy that staff edit.

The policy is **data** (R-B3, DESIGN §4): which scores feed the grade and with what weight,
the two thresholds, hard rules a customer must meet for a grade, and a hysteresis margin. The
application stores policies as versioned JSON (:meth:`GradePolicy.to_dict`) and re-grades
every quarter (R-B4); :func:`moves` previews a policy change before it is applied and
measures how stable grades are from one quarter to the next.

How a grade is decided
----------------------
1. Every input column is turned into a **percentile rank in [0, 1] within the scored
   population**: ``(average rank - 1) / (n - 1)``, ties sharing their average rank, so the
   lowest customer gets 0 and the highest 1 (a lone customer gets 0.5). Ranks, not min/max
   scaling, because money is heavy-tailed: one very large customer would squash everybody
   else towards 0 under min/max, while a rank keeps its meaning ("better than 92 % of
   customers") whatever the scale of the score. A missing value ranks 0: no evidence earns
   no credit. Columns listed in ``lower_is_better`` are ranked reversed.
2. The **composite** is the weighted mean of the ranks (weights need not sum to 1). Being an
   average of ranks it is more concentrated than any one rank: the less the inputs agree,
   the fewer customers reach a high ``core_min`` — :func:`policy_preview` shows the counts
   before a policy is applied.
3. ``composite ≥ core_min`` → core, ``≥ potential_min`` → potential, else ordinary. When the
   customer's previous grade is given, **hysteresis** shifts each threshold by the margin
   towards keeping that grade: a customer who held a grade at or above a threshold keeps it
   down to ``threshold - margin``; one below it needs ``threshold + margin`` to rise.
4. **Hard rules** (``requires``) come last and are not softened by hysteresis: a customer
   failing a rule of their grade drops one grade, and again if they fail the rules of that
   one. A missing value fails a rule.

Every customer gets **reasons** in plain words: the two inputs that lifted them most (or, for
ordinary customers, held them down most) — "12-month value in the top 8 % of customers" —,
every hard rule that held them back, and the hysteresis margin when it decided.

Pure numpy / pyarrow; no Django.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from patron.intelligence import reason_columns as rc
from patron.intelligence.explain import render

__all__ = [
    "DEFAULT_POLICY",
    "GRADES",
    "Grade",
    "GradeInput",
    "GradePolicy",
    "Grades",
    "HardRule",
    "grade",
    "moves",
    "policy_preview",
    "stability",
]

FloatArray = npt.NDArray[np.float64]
Grade = Literal["core", "potential", "ordinary"]

#: Best first. The order is the one of the moves matrix.
GRADES: Final[tuple[Grade, Grade, Grade]] = ("core", "potential", "ordinary")
_LEVEL: Final[dict[str, int]] = {"ordinary": 0, "potential": 1, "core": 2}
_OPERATORS: Final[tuple[str, ...]] = (">=", ">", "<=", "<")

#: The policy shipped with Patron (version 1). Weights favour predicted value; credit and
#: P(alive) keep risky or lapsed customers out of the top; ``word_of_mouth`` comes from
#: :func:`patron.intelligence.value.customer_value`.
DEFAULT_POLICY: Final[dict[str, Any]] = {
    "version": 1,
    "inputs": {
        "clv_12m": 0.4,
        "credit_score": 0.2,
        "p_alive": 0.2,
        "rfm_m": 0.1,
        "word_of_mouth": 0.1,
    },
    "lower_is_better": [],
    # On the demo merchant these make about 12 % of buyers core and 38 % potential.
    "thresholds": {"core_min": 0.72, "potential_min": 0.60},
    "requires": {
        "core": [
            {"column": "credit_score", "op": ">=", "value": 600},
            {"column": "p_alive", "op": ">=", "value": 0.3},
        ],
        "potential": [],
    },
    "hysteresis": 0.02,
}

#: Plain words for the columns the pipeline produces; others are shown by name.
COLUMN_LABELS: Final[dict[str, str]] = {
    "clv_12m": "12-month value",
    "credit_score": "credit score",
    "p_alive": "chance of still being active",
    "churn_probability": "churn risk",
    "expected_orders_90d": "expected orders in the next 90 days",
    "rfm_r": "recency score",
    "rfm_f": "frequency score",
    "rfm_m": "spend score",
    "word_of_mouth": "word of mouth",
    "helpful_votes": "helpful review votes",
    "spend": "spend",
    "spend_365d": "spend in the last 12 months",
    "orders": "orders",
    "orders_90d": "orders in the last 90 days",
    "aov": "average order value",
    "mean_rating": "average rating",
    "return_rate": "return rate",
    "complaints": "complaints",
    "current_value": "current value",
    "potential_value": "potential value",
    "tenure_days": "tenure",
    "certification_rank": "certification level",
}


#: The same in Chinese, for reasons read in Chinese.
COLUMN_LABELS_ZH: Final[dict[str, str]] = {
    "clv_12m": "12 个月价值",
    "credit_score": "信用分",
    "p_alive": "仍然活跃的概率",
    "churn_probability": "流失风险",
    "expected_orders_90d": "未来 90 天的预计订单数",
    "rfm_r": "最近购买得分",
    "rfm_f": "购买频次得分",
    "rfm_m": "消费金额得分",
    "word_of_mouth": "口碑",
    "helpful_votes": "评价获得的“有用”票数",
    "spend": "消费金额",
    "spend_365d": "近 12 个月消费",
    "orders": "订单数",
    "orders_90d": "近 90 天订单数",
    "aov": "平均客单价",
    "mean_rating": "平均评分",
    "return_rate": "退货率",
    "complaints": "投诉次数",
    "current_value": "当前价值",
    "potential_value": "潜在价值",
    "tenure_days": "客龄",
    "certification_rank": "认证等级",
}

#: Grade names inside reasons, in each language.
GRADE_WORDS: Final[dict[str, dict[str, str]]] = {
    "core": {"en": "core", "zh-hans": "核心客户"},
    "potential": {"en": "potential", "zh-hans": "潜力客户"},
    "ordinary": {"en": "ordinary", "zh-hans": "普通客户"},
}


def column_label(column: str) -> str:
    """Plain words for a score column."""
    return COLUMN_LABELS.get(column, column.replace("_", " "))


def column_words(column: str) -> dict[str, str]:
    """A score column's label in each language, as a reason parameter."""
    return {
        "en": column_label(column),
        "zh-hans": COLUMN_LABELS_ZH.get(column, column_label(column)),
    }


# ---------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class GradeInput:
    """One score feeding the composite."""

    column: str
    weight: float
    is_higher_better: bool = True


@dataclass(frozen=True)
class HardRule:
    """``column op value`` must hold for a customer to keep ``grade``."""

    grade: Grade
    column: str
    op: str
    value: float

    def holds(self, values: FloatArray) -> npt.NDArray[np.bool_]:
        """Where the rule holds; a missing value never does."""
        with np.errstate(invalid="ignore"):
            if self.op == ">=":
                result = values >= self.value
            elif self.op == ">":
                result = values > self.value
            elif self.op == "<=":
                result = values <= self.value
            else:
                result = values < self.value
        return np.asarray(result & ~np.isnan(values), dtype=np.bool_)

    def describe(self, language: str = "en") -> str:
        label = column_words(self.column)["zh-hans" if language.startswith("zh") else "en"]
        return f"{label} {self.op} {_number(self.value)}"


@dataclass(frozen=True)
class GradePolicy:
    """A grade policy. Build it from staff-edited JSON with :meth:`from_dict`; every
    validation error is a ``ValueError`` whose message starts with the offending field."""

    inputs: tuple[GradeInput, ...]
    core_min: float
    potential_min: float
    rules: tuple[HardRule, ...] = ()
    hysteresis: float = 0.0
    version: int = 1

    def __post_init__(self) -> None:
        # Heaviest input first, then by name: one order whatever the storage kept
        # (PostgreSQL's jsonb does not keep the order of an object's keys).
        by_weight = tuple(sorted(self.inputs, key=lambda item: (-item.weight, item.column)))
        object.__setattr__(self, "inputs", by_weight)
        # one canonical order (core rules first) so that equal policies compare equal
        ordered = tuple(sorted(self.rules, key=lambda rule: -_LEVEL.get(rule.grade, 0)))
        object.__setattr__(self, "rules", ordered)
        if not self.inputs:
            raise ValueError("inputs: at least one input column is required")
        columns = [i.column for i in self.inputs]
        if len(set(columns)) != len(columns):
            raise ValueError("inputs: a column is listed twice")
        for item in self.inputs:
            if not item.column:
                raise ValueError("inputs: empty column name")
            if not (math.isfinite(item.weight) and item.weight >= 0):
                raise ValueError(f"inputs.{item.column}: weight must be a number ≥ 0")
        if sum(i.weight for i in self.inputs) <= 0:
            raise ValueError("inputs: the weights sum to 0")
        if not (math.isfinite(self.potential_min) and 0 <= self.potential_min <= 1):
            raise ValueError("thresholds.potential_min: must be between 0 and 1")
        if not (math.isfinite(self.core_min) and 0 <= self.core_min <= 1):
            raise ValueError("thresholds.core_min: must be between 0 and 1")
        if self.core_min <= self.potential_min:
            raise ValueError("thresholds.core_min: must be above potential_min")
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0):
            raise ValueError("hysteresis: must be a number ≥ 0")
        if 2 * self.hysteresis >= self.core_min - self.potential_min:
            raise ValueError(
                "hysteresis: must be less than half the gap between core_min and potential_min"
            )
        for index, rule in enumerate(self.rules):
            field = f"requires.{rule.grade}[{index}]"
            if rule.grade not in ("core", "potential"):
                raise ValueError(f"requires.{rule.grade}: only core and potential have rules")
            if not rule.column:
                raise ValueError(f"{field}.column: empty")
            if rule.op not in _OPERATORS:
                raise ValueError(f"{field}.op: must be one of {', '.join(_OPERATORS)}")
            if not math.isfinite(rule.value):
                raise ValueError(f"{field}.value: must be a finite number")
        if self.version < 1:
            raise ValueError("version: must be ≥ 1")

    def input_columns(self) -> tuple[str, ...]:
        """Every column the policy reads: the weighted inputs, then the hard rules' columns."""
        names = [i.column for i in self.inputs] + [r.column for r in self.rules]
        return tuple(dict.fromkeys(names))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GradePolicy:
        """Parse and validate the JSON form (see :data:`DEFAULT_POLICY`)."""
        if not isinstance(data, Mapping):
            raise ValueError("policy: must be an object")
        unknown = set(data) - {
            "version",
            "inputs",
            "lower_is_better",
            "thresholds",
            "requires",
            "hysteresis",
        }
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown policy field")
        raw_inputs = data.get("inputs")
        if not isinstance(raw_inputs, Mapping) or not raw_inputs:
            raise ValueError("inputs: must map column names to weights")
        lower = data.get("lower_is_better", [])
        if not isinstance(lower, Sequence) or isinstance(lower, str):
            raise ValueError("lower_is_better: must be a list of input columns")
        for column in lower:
            if column not in raw_inputs:
                raise ValueError(f"lower_is_better.{column}: not one of the inputs")
        inputs = tuple(
            GradeInput(
                column=str(column),
                weight=_as_float(weight, f"inputs.{column}"),
                is_higher_better=column not in lower,
            )
            for column, weight in raw_inputs.items()
        )
        thresholds = data.get("thresholds")
        if not isinstance(thresholds, Mapping):
            raise ValueError("thresholds: must be an object with core_min and potential_min")
        unknown = set(thresholds) - {"core_min", "potential_min"}
        if unknown:
            raise ValueError(f"thresholds.{sorted(unknown)[0]}: unknown field")
        for name in ("core_min", "potential_min"):
            if name not in thresholds:
                raise ValueError(f"thresholds.{name}: missing")
        requires = data.get("requires", {})
        if not isinstance(requires, Mapping):
            raise ValueError("requires: must map a grade to a list of rules")
        rules: list[HardRule] = []
        for grade_name, items in requires.items():
            if grade_name not in ("core", "potential"):
                raise ValueError(f"requires.{grade_name}: only core and potential have rules")
            if not isinstance(items, Sequence) or isinstance(items, str):
                raise ValueError(f"requires.{grade_name}: must be a list of rules")
            for index, item in enumerate(items):
                field = f"requires.{grade_name}[{index}]"
                if not isinstance(item, Mapping) or set(item) != {"column", "op", "value"}:
                    raise ValueError(f"{field}: must have exactly column, op and value")
                rules.append(
                    HardRule(
                        grade=grade_name,
                        column=str(item["column"]),
                        op=str(item["op"]),
                        value=_as_float(item["value"], f"{field}.value"),
                    )
                )
        version = data.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError("version: must be an integer")
        return cls(
            inputs=inputs,
            core_min=_as_float(thresholds["core_min"], "thresholds.core_min"),
            potential_min=_as_float(thresholds["potential_min"], "thresholds.potential_min"),
            rules=tuple(rules),
            hysteresis=_as_float(data.get("hysteresis", 0.0), "hysteresis"),
            version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; ``GradePolicy.from_dict(p.to_dict()) == p``."""
        return {
            "version": self.version,
            "inputs": {i.column: i.weight for i in self.inputs},
            "lower_is_better": [i.column for i in self.inputs if not i.is_higher_better],
            "thresholds": {"core_min": self.core_min, "potential_min": self.potential_min},
            "requires": {
                name: [
                    {"column": r.column, "op": r.op, "value": r.value}
                    for r in self.rules
                    if r.grade == name
                ]
                for name in ("core", "potential")
            },
            "hysteresis": self.hysteresis,
        }


def _as_float(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field}: must be a number")
    return float(value)


# ---------------------------------------------------------------------- grading


@dataclass(frozen=True)
class Grades:
    """Grades of one run, aligned arrays (one entry per customer, in table order).

    Attributes
    ----------
    customer_id : ndarray
    grade : ndarray of str
        ``"core"``, ``"potential"`` or ``"ordinary"``.
    composite : ndarray of float
        Weighted mean of the percentile ranks, in [0, 1].
    percentile : dict of column -> ndarray
        Each input's percentile rank (already reversed for ``lower_is_better`` columns).
    held_back : ndarray of bool
        A hard rule lowered the grade.
    reasons : pyarrow string array
        Per customer, a JSON list of reasons (``patron.intelligence.explain`` shapes): the
        inputs that weighed most, any rule that held them back, and hysteresis when it
        decided.
    policy_version : int
    """

    customer_id: npt.NDArray[Any]
    grade: npt.NDArray[np.str_]
    composite: FloatArray
    percentile: dict[str, FloatArray]
    held_back: npt.NDArray[np.bool_]
    reasons: pa.Array
    policy_version: int

    def __len__(self) -> int:
        return int(self.customer_id.shape[0])

    def as_mapping(self) -> dict[Any, str]:
        """customer id -> grade, the form :func:`moves` takes as ``before``."""
        return dict(zip(self.customer_id.tolist(), self.grade.tolist(), strict=True))

    def counts(self) -> dict[str, int]:
        """Customers per grade, every grade present."""
        return {name: int(np.count_nonzero(self.grade == name)) for name in GRADES}

    def sentences(self, index: int, language: str = "en") -> tuple[str, ...]:
        """The reasons of the customer at ``index`` in plain words (English templates; the
        web app translates them through its catalogue)."""
        return tuple(render(r, language=language) for r in json.loads(self.reasons[index].as_py()))

    def reasons_text(self, separator: str = "; ") -> list[str]:
        """Each customer's reasons joined into one line."""
        return [separator.join(self.sentences(i)) for i in range(len(self))]

    def to_table(self) -> pa.Table:
        """customer_id, grade, composite, reasons (JSON text)."""
        return pa.table(
            {
                "customer_id": self.customer_id,
                "grade": pa.array(self.grade.tolist(), pa.string()),
                "composite": self.composite,
                "reasons": self.reasons,
            }
        )


def _tie_ranks(values: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Ascending ranks 1..n of ``values`` (no NaN) with ties: (average, lowest, highest).

    One sort serves all three, which is what a million customers need."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    highest = np.cumsum(counts).astype(np.float64)
    lowest = highest - counts + 1.0
    return (
        ((lowest + highest) / 2.0)[inverse],
        lowest[inverse],
        highest[inverse],
    )


def percentile_rank(values: FloatArray) -> FloatArray:
    """``(average rank - 1) / (n - 1)`` in [0, 1]; NaN ranks 0, below every value.

    Ties share their rank, so raising one customer's value never lowers their rank.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.full(1, 0.5)
    average, _, _ = _tie_ranks(np.where(np.isnan(values), -np.inf, values))
    return np.where(np.isnan(values), 0.0, (average - 1.0) / (n - 1.0))


def grade(
    table: pa.Table,
    policy: GradePolicy | Mapping[str, Any],
    previous: Mapping[Any, str] | None = None,
) -> Grades:
    """Grade every customer of ``table`` (one row per customer, ``customer_id`` + the
    policy's columns) under ``policy``.

    ``previous`` (customer id -> grade) turns on hysteresis for the customers it names; the
    rest are graded as new. See the module docstring for the exact rule.
    """
    if not isinstance(policy, GradePolicy):
        policy = GradePolicy.from_dict(policy)
    for column in ("customer_id", *policy.input_columns()):
        if column not in table.column_names:
            raise ValueError(f"table: column {column!r} (used by the policy) is missing")
    customer_id = np.asarray(table.column("customer_id").to_numpy(zero_copy_only=False))
    n = customer_id.shape[0]

    raw = {i.column: _column(table, i.column) for i in policy.inputs}
    percentile: dict[str, FloatArray] = {}
    total_weight = sum(i.weight for i in policy.inputs)
    composite = np.zeros(n)
    for item in policy.inputs:
        values = raw[item.column]
        ranked = percentile_rank(values if item.is_higher_better else -values)
        percentile[item.column] = ranked
        composite += (item.weight / total_weight) * ranked
    # rounded so that a weighted sum meant to be 0.8 is not 0.7999999999 at a threshold
    composite = np.clip(np.round(composite, 9), 0.0, 1.0)

    previous_level = _previous_levels(customer_id, previous)
    by_score = _levels(composite, policy, previous_level)
    no_hysteresis = _levels(composite, policy, np.full(n, -1))

    # hard rules, core's first: whoever fails one drops a grade, then faces that grade's rules
    level = by_score.copy()
    failed: dict[int, list[HardRule]] = {}
    for target in (2, 1):
        at_level = level == target
        fails_any = np.zeros(n, dtype=bool)
        for rule in (r for r in policy.rules if _LEVEL[r.grade] == target):
            failing = at_level & ~rule.holds(_column(table, rule.column))
            for index in np.flatnonzero(failing).tolist():
                failed.setdefault(index, []).append(rule)
            fails_any |= failing
        level = np.where(fails_any, target - 1, level)
    held_back = level < by_score

    names = np.array(["ordinary", "potential", "core"])
    grades = names[level]
    reasons = _reasons(policy, raw, percentile, composite, by_score, no_hysteresis, failed)
    return Grades(
        customer_id=customer_id,
        grade=grades,
        composite=composite,
        percentile=percentile,
        held_back=held_back,
        reasons=reasons,
        policy_version=policy.version,
    )


def _column(table: pa.Table, name: str) -> FloatArray:
    column = pc.cast(table.column(name), pa.float64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _previous_levels(customer_id: npt.NDArray[Any], previous: Mapping[Any, str] | None) -> Any:
    """Previous grade as a level (2 core … 0 ordinary), -1 where unknown."""
    levels = np.full(customer_id.shape[0], -1, dtype=np.int64)
    if not previous:
        return levels
    for index, key in enumerate(customer_id.tolist()):
        name = previous.get(key)
        if name is None:
            continue
        if name not in _LEVEL:
            raise ValueError(f"previous[{key}]: unknown grade {name!r}")
        levels[index] = _LEVEL[name]
    return levels


def _levels(composite: FloatArray, policy: GradePolicy, previous_level: Any) -> Any:
    """Level from the composite, with each threshold shifted by the margin towards keeping
    the previous grade (no shift for customers without one)."""
    margin = policy.hysteresis
    level = np.zeros(composite.shape[0], dtype=np.int64)
    for target, threshold in ((1, policy.potential_min), (2, policy.core_min)):
        shift = np.where(
            previous_level < 0, 0.0, np.where(previous_level >= target, -margin, margin)
        )
        level += (composite >= threshold + shift).astype(np.int64)
    return level


def _number(value: float) -> str:
    if value == round(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _standing(item: GradeInput, values: FloatArray, ranked: FloatArray) -> npt.NDArray[np.int64]:
    """Where each customer stands on one input, as a code (see :func:`_standing_heads`):
    0 = no value, 1..100 = in the top (or lowest) *code* %, 101..200 = in the bottom (or
    highest) *code - 100* %. Shares are exact: the top share counts the customers at least
    as good (the best of 100 is in the top 1 %), the bottom share those at most as good."""
    n = max(values.size, 1)
    oriented = values if item.is_higher_better else -values
    oriented = np.where(np.isnan(oriented), -np.inf, oriented)
    _, lowest, highest = _tie_ranks(oriented)
    at_least_as_good = n - lowest + 1.0
    top = np.ceil(100 * at_least_as_good / n - 1e-9).clip(1, 100)
    bottom = np.ceil(100 * highest / n - 1e-9).clip(1, 100)
    code = np.where(ranked >= 0.5, top, 100 + bottom)
    return np.where(np.isnan(values), 0, code).astype(np.int64)


def _standing_heads(item: GradeInput) -> list[str]:
    """The start of the reason for each kind of :func:`_standing` code of one input — no
    value, in the best share, in the worst share — up to the share's value."""
    label = rc.dump(column_words(item.column))
    best, worst = ("top", "bottom") if item.is_higher_better else ("lowest", "highest")
    return [
        f'{{"key":"grade.{kind}","params":{{"label":{label},"share":'
        for kind in ("none", best, worst)
    ]


def _reasons(
    policy: GradePolicy,
    raw: dict[str, FloatArray],
    percentile: dict[str, FloatArray],
    composite: FloatArray,
    by_score: Any,
    no_hysteresis: Any,
    failed: dict[int, list[HardRule]],
) -> pa.Array:
    """Per customer, a JSON list of reasons (``explain.py`` shapes, keys of
    ``reason_texts``): the two inputs that weighed most, then hysteresis and any hard rule
    where they decided. Built column-wise (``reason_columns``): it runs for everyone."""
    n = composite.shape[0]
    if n == 0:
        return pa.array([], pa.string())
    inputs = [i for i in policy.inputs if i.weight > 0]
    total_weight = sum(i.weight for i in inputs)
    weights = np.array([i.weight / total_weight for i in inputs])
    ranks = np.column_stack([percentile[i.column] for i in inputs])
    # graded up: what lifted them (weight × rank); ordinary: what held them down
    lead = np.where((by_score > 0)[:, None], weights * ranks, weights * (1.0 - ranks))
    top = np.argsort(-lead, axis=1, kind="stable")[:, :2]
    codes = np.column_stack([_standing(i, raw[i.column], percentile[i.column]) for i in inputs])
    heads = [head for i in inputs for head in _standing_heads(i)]  # input j: 3 * j + kind
    chosen = np.take_along_axis(codes, top, axis=1)
    kind = np.where(chosen == 0, 0, np.where(chosen <= 100, 1, 2))
    share = np.where(kind == 0, np.nan, np.where(kind == 1, chosen, chosen - 100))
    slots = [
        rc.concat(rc.pick(3 * top[:, s] + kind[:, s], heads), rc.integer(share[:, s]), "}}")
        for s in range(top.shape[1])
    ]

    thresholds = {1: policy.potential_min, 2: policy.core_min}
    names = GRADES[::-1]  # by level
    margin = _number(policy.hysteresis)
    extra: dict[int, list[dict[str, Any]]] = {}
    for index in np.flatnonzero(by_score != no_hysteresis).tolist():
        scored, plain = int(by_score[index]), int(no_hysteresis[index])
        params = {
            "grade": GRADE_WORDS[names[scored]],
            "score": round(float(composite[index]), 4),
            "margin": margin,
        }
        if scored > plain:
            reason = {"key": "grade.kept", "params": {**params, "threshold": thresholds[scored]}}
        else:
            target = {"target": GRADE_WORDS[names[plain]], "threshold": thresholds[plain]}
            reason = {"key": "grade.stays", "params": {**params, **target}}
        extra[index] = [reason]
    for index, rules in failed.items():
        extra.setdefault(index, []).extend(
            {
                "key": "grade.held_back",
                "params": {
                    "grade": GRADE_WORDS[rule.grade],
                    "rule": {"en": rule.describe("en"), "zh-hans": rule.describe("zh-hans")},
                },
            }
            for rule in rules
        )
    return rc.listed([*slots, rc.sparse_items(n, extra)])


# ---------------------------------------------------------------------- moves


def moves(before: Mapping[Any, str] | Grades, after: Mapping[Any, str] | Grades) -> dict[str, Any]:
    """Transition counts from ``before`` (customer id -> grade, or a previous run) to
    ``after``; used to preview a policy change and to watch quarterly re-grades.

    Returns a JSON-ready dict: ``grades`` (``["core", "potential", "ordinary"]``), ``matrix``
    (``matrix[i][j]`` counts customers graded ``grades[i]`` before and ``grades[j]`` after,
    over the customers present in both), ``up``, ``down``, ``unchanged`` (those customers
    again, by direction), ``new`` (graded only after) and ``left`` (graded only before).
    """
    previous = before.as_mapping() if isinstance(before, Grades) else before
    index: dict[str, int] = {name: i for i, name in enumerate(GRADES)}
    if isinstance(after, Grades):
        ids, after_names = after.customer_id.tolist(), after.grade.tolist()
    else:
        ids, after_names = list(after.keys()), list(after.values())
    old_names = [previous.get(key) for key in ids]
    unknown = {name for name in old_names if name is not None and name not in index}
    if unknown:
        key = ids[old_names.index(sorted(unknown)[0])]
        raise ValueError(f"before[{key}]: unknown grade {previous[key]!r}")
    old = np.array([-1 if name is None else index[name] for name in old_names], dtype=np.int64)
    now = np.array([index[name] for name in after_names], dtype=np.int64)
    known = old >= 0
    matrix = np.bincount(3 * old[known] + now[known], minlength=9).reshape(3, 3)
    seen = int(known.sum())
    new = len(ids) - seen
    return {
        "grades": list(GRADES),
        "matrix": matrix.tolist(),
        # rows and columns run core → ordinary: below the diagonal is a move up
        "up": int(np.tril(matrix, -1).sum()),
        "down": int(np.triu(matrix, 1).sum()),
        "unchanged": int(np.trace(matrix)),
        "new": new,
        "left": len(previous) - seen,
    }


def stability(before: Mapping[Any, str] | Grades, after: Grades) -> float:
    """Share of the customers graded in both runs whose grade did not change (NaN when no
    customer is in both)."""
    counts = moves(before, after)
    both = counts["up"] + counts["down"] + counts["unchanged"]
    return counts["unchanged"] / both if both else float("nan")


def policy_preview(
    table: pa.Table,
    *,
    current: GradePolicy | Mapping[str, Any],
    proposed: GradePolicy | Mapping[str, Any],
    previous: Mapping[Any, str] | None = None,
) -> dict[str, Any]:
    """How many customers would move if ``proposed`` replaced ``current`` today."""
    return moves(grade(table, current, previous), grade(table, proposed, previous))
