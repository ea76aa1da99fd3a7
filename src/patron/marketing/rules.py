"""Marketing rules without a database: the segment fields and operators, the validation of a
segment's rule tree, its description in plain words, coupon discounts, codes and states.

A segment's rule is JSON::

    {"all": [{"field": "grade", "op": "eq", "value": "core"},
             {"any": [{"field": "province", "op": "in", "value": ["浙江", "江苏"]},
                      {"field": "spend_365d", "op": "gte", "value": 1000}]}]}

The top level is one group (``all`` or ``any``); a group holds conditions and, at the top
level only, groups of conditions. ``validate_rule`` checks every part and names the path of
the first mistake (``rule.all[1].any[0].value: expected a number``); the selectors compile a
valid rule into one queryset (``patron.marketing.selectors.segment_queryset``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from patron.statemachine import next_state


class FieldType(StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    NUMBER = "number"
    DATE = "date"
    CONSENT = "consent"


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"
    GRANTED = "granted"
    NOT_GRANTED = "not_granted"


OP_LABELS: dict[Op, tuple[str, str]] = {
    Op.EQ: ("等于", "is"),
    Op.NE: ("不等于", "is not"),
    Op.IN: ("属于", "is one of"),
    Op.NOT_IN: ("不属于", "is none of"),
    Op.GT: ("大于", "is more than"),
    Op.GTE: ("不小于", "is at least"),
    Op.LT: ("小于", "is less than"),
    Op.LTE: ("不大于", "is at most"),
    Op.BETWEEN: ("介于", "is between"),
    Op.IS_NULL: ("为空", "is empty"),
    Op.NOT_NULL: ("不为空", "is not empty"),
    Op.GRANTED: ("已同意", "is granted for"),
    Op.NOT_GRANTED: ("未同意", "is not granted for"),
}

_NO_VALUE = frozenset({Op.IS_NULL, Op.NOT_NULL})
_ORDERED = (Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN, Op.IS_NULL, Op.NOT_NULL)
OPERATORS: dict[FieldType, tuple[Op, ...]] = {
    FieldType.TEXT: (Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.NOT_NULL),
    FieldType.CHOICE: (Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.NOT_NULL),
    FieldType.NUMBER: _ORDERED,
    FieldType.DATE: _ORDERED,
    FieldType.CONSENT: (Op.GRANTED, Op.NOT_GRANTED),
}

MAX_CONDITIONS = 50
MAX_LIST = 500
MAX_TEXT = 120
MAX_NUMBER = Decimal("1e12")

CONSENT_PURPOSES = ("marketing", "profiling", "service")
CONSENT_CHANNELS = ("sms", "email", "wechat", "phone", "app")
GRADES = ("core", "potential", "ordinary")
RFM_SEGMENTS = (
    "important_value",
    "important_develop",
    "important_retain",
    "important_win_back",
    "general_value",
    "general_develop",
    "general_retain",
    "general_win_back",
)


@dataclass(frozen=True)
class SegmentField:
    """One field a rule may test: its name in the rule, labels, type and allowed operators;
    ``choices`` for fixed vocabularies, ``group`` for the builder's menu."""

    name: str
    label_zh: str
    label_en: str
    type: FieldType
    group: str
    choices: tuple[str, ...] = ()
    unit: str = ""
    is_whole: bool = False

    @property
    def operators(self) -> tuple[Op, ...]:
        return OPERATORS[self.type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label_zh": self.label_zh,
            "label_en": self.label_en,
            "type": self.type.value,
            "group": self.group,
            "operators": [op.value for op in self.operators],
            "choices": list(self.choices),
            "unit": self.unit,
            "is_whole": self.is_whole,
        }


def _f(*args: Any, **kwargs: Any) -> SegmentField:
    return SegmentField(*args, **kwargs)


#: The registry: every field a rule may name, declared once. The selectors map each name to
#: a column, an annotation or a subquery (a test checks that every field here has one).
SEGMENT_FIELDS: dict[str, SegmentField] = {
    f.name: f
    for f in (
        _f("kind", "客户类型", "Customer kind", FieldType.CHOICE, "customer",
           ("individual", "business")),
        _f("province", "省份", "Province", FieldType.TEXT, "customer"),
        _f("city", "城市", "City", FieldType.TEXT, "customer"),
        _f("source_channel", "来源渠道", "Source channel", FieldType.CHOICE, "customer",
           ("online", "offline", "third_party")),
        _f("registered_at", "注册日期", "Registered on", FieldType.DATE, "customer"),
        _f("days_since_registration", "注册天数", "Days since registration",
           FieldType.NUMBER, "customer", unit="days", is_whole=True),
        _f("grade", "客户等级", "Grade", FieldType.CHOICE, "score", GRADES),
        _f("rfm_segment", "RFM 分群", "RFM segment", FieldType.CHOICE, "score", RFM_SEGMENTS),
        _f("churn_probability", "流失概率", "Churn probability", FieldType.NUMBER, "score",
           unit="0–1"),
        _f("clv_12m", "12个月客户价值", "CLV, 12 months", FieldType.NUMBER, "score", unit="CNY"),
        _f("credit_score", "信用分", "Credit score", FieldType.NUMBER, "score", unit="350–950"),
        _f("p_alive", "存活概率", "P(alive)", FieldType.NUMBER, "score", unit="0–1"),
        _f("expected_orders_90d", "90天预期订单", "Expected orders, 90 days",
           FieldType.NUMBER, "score"),
        _f("cluster_name", "聚类", "Cluster", FieldType.TEXT, "score"),
        _f("orders_count", "订单数", "Paid orders", FieldType.NUMBER, "purchases",
           is_whole=True),
        _f("spend_365d", "近365天消费", "Spend, last 365 days", FieldType.NUMBER, "purchases",
           unit="CNY"),
        _f("days_since_last_order", "距上次下单天数", "Days since last order",
           FieldType.NUMBER, "purchases", unit="days", is_whole=True),
        _f("last_order_date", "上次下单日期", "Last order on", FieldType.DATE, "purchases"),
        _f("certification_level", "认证等级", "Certification level", FieldType.TEXT,
           "programmes"),
        _f("loyalty_tier", "会员等级", "Loyalty tier", FieldType.TEXT, "programmes"),
        _f("consent", "授权", "Consent", FieldType.CONSENT, "consent",
           tuple(f"{p}:{c}" for p in CONSENT_PURPOSES for c in CONSENT_CHANNELS)),
    )
}  # fmt: skip


# ---------------------------------------------------------------------- the rule tree


class RuleError(ValueError):
    """A rule that cannot be evaluated; the message starts with the path of the mistake."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: Op
    value: Any = None


@dataclass(frozen=True)
class Group:
    mode: str  # "all" or "any"
    items: tuple[Condition | Group, ...] = field(default_factory=tuple)


def _number(value: Any, path: str, *, is_whole: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise RuleError(f"{path}: expected a number, got {value!r}")
    number = Decimal(str(value))
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise RuleError(f"{path}: expected a finite number below {MAX_NUMBER:,.0f}")
    if is_whole and number != number.to_integral_value():
        raise RuleError(f"{path}: expected a whole number, got {value!r}")
    return number + 0  # -0.0 is 0


def _date(value: Any, path: str) -> date:
    if not isinstance(value, str):
        raise RuleError(f"{path}: expected a date YYYY-MM-DD, got {value!r}")
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise RuleError(f"{path}: expected a date YYYY-MM-DD, got {value!r}")


def _text(value: Any, spec: SegmentField, path: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise RuleError(f"{path}: expected a non-blank text, got {value!r}")
    if len(value) > MAX_TEXT:
        raise RuleError(f"{path}: at most {MAX_TEXT} characters")
    if spec.choices and value not in spec.choices:
        raise RuleError(f"{path}: {value!r} is not one of {', '.join(spec.choices)}")
    return value.strip()


def _scalar(value: Any, spec: SegmentField, path: str) -> Any:
    if spec.type is FieldType.NUMBER:
        return _number(value, path, is_whole=spec.is_whole)
    if spec.type is FieldType.DATE:
        return _date(value, path)
    return _text(value, spec, path)


def _value(spec: SegmentField, op: Op, value: Any, path: str) -> Any:
    if op in _NO_VALUE:
        if value is not None:
            raise RuleError(f"{path}: {op.value} takes no value (send null or leave it out)")
        return None
    if op in (Op.IN, Op.NOT_IN):
        if not isinstance(value, list) or not value:
            raise RuleError(f"{path}: expected a non-empty list")
        if len(value) > MAX_LIST:
            raise RuleError(f"{path}: at most {MAX_LIST} values")
        return tuple(dict.fromkeys(_scalar(v, spec, f"{path}[{i}]") for i, v in enumerate(value)))
    if op is Op.BETWEEN:
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(f"{path}: expected a list of two bounds [low, high]")
        low, high = (_scalar(v, spec, f"{path}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise RuleError(f"{path}: the low bound {low} is above the high bound {high}")
        return (low, high)
    if op in (Op.GRANTED, Op.NOT_GRANTED):
        return _text(value, spec, path)
    return _scalar(value, spec, path)


def _condition(raw: Mapping[str, Any], path: str) -> Condition:
    unknown = sorted(set(raw) - {"field", "op", "value"})
    if unknown:
        raise RuleError(f"{path}: unknown key {unknown[0]!r} (a condition has field, op, value)")
    name = raw.get("field")
    spec = SEGMENT_FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise RuleError(
            f"{path}.field: unknown field {name!r}; known: {', '.join(sorted(SEGMENT_FIELDS))}"
        )
    op_text = raw.get("op")
    op = Op(op_text) if isinstance(op_text, str) and op_text in set(Op) else None
    if op is None or op not in spec.operators:
        allowed = ", ".join(o.value for o in spec.operators)
        raise RuleError(f"{path}.op: {raw.get('op')!r} is not allowed for {name}; use {allowed}")
    return Condition(spec.name, op, _value(spec, op, raw.get("value"), f"{path}.value"))


def _group(raw: Any, path: str, *, depth: int) -> Group:
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in ("all", "any"):
        raise RuleError(f'{path}: expected a group {{"all": [...]}} or {{"any": [...]}}')
    mode = next(iter(raw))
    items = raw[mode]
    path = f"{path}.{mode}"
    if not isinstance(items, list) or not items:
        raise RuleError(f"{path}: expected a non-empty list of conditions")
    parsed: list[Condition | Group] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if isinstance(item, Mapping) and set(item) & {"all", "any"}:
            if depth >= 1:
                raise RuleError(f"{where}: groups nest one level deep only")
            parsed.append(_group(item, where, depth=depth + 1))
        elif isinstance(item, Mapping):
            parsed.append(_condition(item, where))
        else:
            raise RuleError(f"{where}: expected a condition {{field, op, value}} or a group")
    return Group(mode, tuple(parsed))


def conditions(rule: Group) -> list[Condition]:
    found: list[Condition] = []
    for item in rule.items:
        found.extend(conditions(item) if isinstance(item, Group) else [item])
    return found


def validate_rule(raw: Any) -> Group:
    """The rule as a tree of ``Group``/``Condition``; ``RuleError`` naming the path of the
    first mistake (``rule.all[1].any[0].value: expected a number``)."""
    rule = _group(raw, "rule", depth=0)
    if len(conditions(rule)) > MAX_CONDITIONS:
        raise RuleError(f"rule: at most {MAX_CONDITIONS} conditions")
    return rule


def _plain_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain_value(v) for v in value]
    return value


def rule_to_json(rule: Group) -> dict[str, Any]:
    """The canonical JSON of a validated rule (what is stored)."""

    def item(node: Condition | Group) -> dict[str, Any]:
        if isinstance(node, Group):
            return rule_to_json(node)
        out: dict[str, Any] = {"field": node.field, "op": node.op.value}
        if node.op not in _NO_VALUE:
            out["value"] = _plain_value(node.value)
        return out

    return {rule.mode: [item(i) for i in rule.items]}


def describe(rule: Group, *, language: str = "en") -> str:
    """The rule in plain words, e.g. ``Grade is core and (Province is one of 浙江, 江苏 or …)``."""
    is_zh = language.lower().startswith("zh")

    def value_text(node: Condition) -> str:
        if node.op in _NO_VALUE:
            return ""
        value = node.value
        if isinstance(value, tuple):
            joiner = " – " if node.op is Op.BETWEEN else ", "
            return " " + joiner.join(str(_plain_value(v)) for v in value)
        return f" {_plain_value(value)}"

    def one(node: Condition | Group) -> str:
        if isinstance(node, Group):
            return f"({text(node)})"
        spec = SEGMENT_FIELDS[node.field]
        label = spec.label_zh if is_zh else spec.label_en
        op = OP_LABELS[node.op][0 if is_zh else 1]
        return f"{label} {op}{value_text(node)}"

    def text(group: Group) -> str:
        if is_zh:
            joiner = " 且 " if group.mode == "all" else " 或 "
        else:
            joiner = " and " if group.mode == "all" else " or "
        return joiner.join(one(i) for i in group.items)

    return text(rule)


# ---------------------------------------------------------------------- coupons


class CouponKind(StrEnum):
    AMOUNT_OFF = "amount_off"
    PERCENT_OFF = "percent_off"


CENT = Decimal("0.01")
#: Code letters without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 10


def coupon_code() -> str:
    """A random code (``secrets``): 25^10 ≈ 9.5e13 codes, so collisions are retried, rare."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def coupon_discount(kind: str, value: Decimal, order_total: Decimal) -> Decimal:
    """The discount on an order of ``order_total``: a fixed amount or a percentage (rounded
    half up to the cent), never more than the order total, never negative."""
    total = max(Decimal("0"), Decimal(order_total)).quantize(CENT, ROUND_HALF_UP)
    if CouponKind(kind) is CouponKind.AMOUNT_OFF:
        discount = Decimal(value)
    else:
        discount = total * Decimal(value) / Decimal(100)
    return min(total, max(Decimal("0"), discount)).quantize(CENT, ROUND_HALF_UP)


def template_problems(
    *,
    kind: str,
    value: Decimal,
    min_order_amount: Decimal,
    valid_days: int | None,
    has_valid_until: bool,
    valid_window_ordered: bool,
    per_customer_limit: int | None,
    stock: int | None,
    budget: Decimal | None,
) -> list[str]:
    """What is wrong with a coupon template's terms, one sentence per field (empty: fine)."""
    problems = []
    if kind not in CouponKind.__members__.values():
        problems.append(f"kind: expected one of {', '.join(CouponKind)}")
    elif value <= 0:
        problems.append("value: expected more than 0")
    elif kind == CouponKind.PERCENT_OFF and value > 100:
        problems.append("value: a percentage is at most 100")
    if min_order_amount < 0:
        problems.append("min_order_amount: expected 0 or more")
    if valid_days is None and not has_valid_until:
        problems.append("valid_days: give valid_days, valid_until or both")
    if valid_days is not None and valid_days < 1:
        problems.append("valid_days: expected at least 1")
    if not valid_window_ordered:
        problems.append("valid_until: must be after valid_from")
    if per_customer_limit is not None and per_customer_limit < 1:
        problems.append("per_customer_limit: expected at least 1 (or none for no limit)")
    if stock is not None and stock < 1:
        problems.append("stock: expected at least 1 (or none for no limit)")
    if budget is not None and budget <= 0:
        problems.append("budget: expected more than 0 (or none for no limit)")
    return problems


class CouponStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    VOID = "void"


COUPON_MACHINE: dict[str, dict[str, str]] = {
    CouponStatus.ISSUED: {
        "redeem": CouponStatus.REDEEMED,
        "expire": CouponStatus.EXPIRED,
        "void": CouponStatus.VOID,
    },
    CouponStatus.REDEEMED: {},
    CouponStatus.EXPIRED: {},
    CouponStatus.VOID: {},
}


def coupon_next(state: str, action: str) -> str:
    return next_state(COUPON_MACHINE, "the coupon", state, action)


def issue_plan(
    *,
    customer_ids: Sequence[int | None],
    issued_before: Mapping[int, int],
    per_customer_limit: int | None,
    stock: int | None,
    issued_total: int,
) -> list[str]:
    """Why issuing one coupon per entry of ``customer_ids`` (None: an open code) would break
    the stock or a customer's limit; empty when it may go ahead (all or nothing)."""
    problems = []
    if stock is not None and issued_total + len(customer_ids) > stock:
        left = max(0, stock - issued_total)
        problems.append(f"stock: {left} of {stock} codes left, {len(customer_ids)} asked for")
    if per_customer_limit is not None:
        counts = dict(issued_before)
        over = []
        for customer_id in customer_ids:
            if customer_id is None:
                continue
            counts[customer_id] = counts.get(customer_id, 0) + 1
            if counts[customer_id] == per_customer_limit + 1:
                over.append(customer_id)
        if over:
            shown = ", ".join(str(c) for c in over[:10]) + (" …" if len(over) > 10 else "")
            problems.append(
                f"per_customer_limit: customers {shown} would hold more than "
                f"{per_customer_limit} coupon(s) of this template"
            )
    return problems
