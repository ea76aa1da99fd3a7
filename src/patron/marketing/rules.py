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

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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


# ---------------------------------------------------------------------- campaigns


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


#: Campaign status -> {action: next status}. ``launch`` freezes the audience and sends;
#: ``resume`` sends to the members a stopped launch had not reached yet (what a second launch
#: of a running campaign does: nobody is sent twice); ``finish`` closes the period.
CAMPAIGN_MACHINE: dict[str, dict[str, str]] = {
    CampaignStatus.DRAFT: {
        "schedule": CampaignStatus.SCHEDULED,
        "launch": CampaignStatus.RUNNING,
        "cancel": CampaignStatus.CANCELLED,
    },
    CampaignStatus.SCHEDULED: {
        "launch": CampaignStatus.RUNNING,
        "cancel": CampaignStatus.CANCELLED,
    },
    CampaignStatus.RUNNING: {
        "resume": CampaignStatus.RUNNING,
        "finish": CampaignStatus.FINISHED,
        "cancel": CampaignStatus.CANCELLED,
    },
    CampaignStatus.FINISHED: {},
    CampaignStatus.CANCELLED: {},
}


def campaign_next(state: str, action: str) -> str:
    return next_state(CAMPAIGN_MACHINE, "the campaign", state, action)


class GoalMetric(StrEnum):
    REPURCHASE_RATE = "repurchase_rate"
    REVENUE_PER_CUSTOMER = "revenue_per_customer"
    REACTIVATION_RATE = "reactivation_rate"


#: Goal metric -> (unit, Chinese label, English label, definition). Rates are shares (0–1).
GOAL_METRICS: dict[str, tuple[str, str, str, str]] = {
    GoalMetric.REPURCHASE_RATE: (
        "share",
        "复购率",
        "Repurchase rate",
        "share of the group placing a paid order in the period",
    ),
    GoalMetric.REVENUE_PER_CUSTOMER: (
        "CNY",
        "人均销售额",
        "Revenue per customer",
        "paid order totals in the period divided by the group's size (non-buyers count as 0)",
    ),
    GoalMetric.REACTIVATION_RATE: (
        "share",
        "唤醒率",
        "Reactivation rate",
        "share of the group with no paid order in the 180 days before the period who ordered in it",
    ),
}
REACTIVATION_LOOKBACK_DAYS = 180


class OfferKind(StrEnum):
    COUPON = "coupon"
    POINTS = "points"
    GIFT = "gift"
    MESSAGE = "message"


MAX_HOLDOUT_SHARE = Decimal("0.5")
DEFAULT_HOLDOUT_SHARE = Decimal("0.1")


def holdout_size(audience: int, share: Decimal) -> int:
    """Members held out of ``audience``: ``audience × share`` rounded half up (exact, in
    decimals: 25 × 0.1 is 2.5, so 3)."""
    if audience < 0:
        raise ValueError(f"audience must be 0 or more, got {audience}")
    if not Decimal(0) <= share <= MAX_HOLDOUT_SHARE:
        raise ValueError(f"holdout share must be between 0 and {MAX_HOLDOUT_SHARE}, got {share}")
    return int((Decimal(audience) * Decimal(share)).to_integral_value(ROUND_HALF_UP))


def _draw_rank(seed: int, customer_id: int) -> bytes:
    return hashlib.sha256(f"{seed}:{customer_id}".encode()).digest()


def holdout_assign(customer_ids: Sequence[int], share: Decimal, seed: int) -> frozenset[int]:
    """The holdout: the ``holdout_size`` customers whose SHA-256 of ``"seed:id"`` is smallest.

    Reproducible from the recorded seed alone, whatever order the ids come in and on any
    Python version (``random``'s algorithms are not promised to stay the same); every
    customer is equally likely to be held out, independently of who they are."""
    unique = sorted(set(customer_ids))
    size = holdout_size(len(unique), share)
    ranked = sorted(unique, key=lambda customer_id: _draw_rank(seed, customer_id))
    return frozenset(ranked[:size])


def offer_unit_cost(
    *,
    offer_kind: str,
    unit_cost: Decimal | None,
    coupon_kind: str | None = None,
    coupon_value: Decimal | None = None,
) -> Decimal:
    """What one offer costs against the budget: ``unit_cost`` when given, else an amount-off
    coupon's face value (the most it can cost: not every code is redeemed), else 0."""
    if unit_cost is not None:
        return Decimal(unit_cost)
    if offer_kind == OfferKind.COUPON and coupon_kind == CouponKind.AMOUNT_OFF:
        return Decimal(coupon_value or 0)
    return Decimal("0.00")


def budget_allows(*, spent: Decimal, next_cost: Decimal, budget: Decimal | None) -> bool:
    """Whether the next offer may be issued: never beyond the budget (none: no limit)."""
    return budget is None or spent + next_cost <= budget


def campaign_problems(
    *,
    goal_metric: str,
    period_ordered: bool,
    holdout_share: Decimal,
    offer_kind: str,
    has_coupon_template: bool,
    points: int | None,
    gift_text: str,
    channels: Sequence[str],
    send_at_in_period: bool,
    budget: Decimal | None,
    unit_cost: Decimal | None,
    effective_unit_cost: Decimal,
    frequency_cap_messages: int | None,
    frequency_cap_days: int | None,
) -> list[str]:
    """What is wrong with a campaign's plan, one sentence per field (empty: fine)."""
    problems = []
    if goal_metric not in set(GoalMetric):
        problems.append(f"goal_metric: expected one of {', '.join(GoalMetric)}")
    if not period_ordered:
        problems.append("period_end: must be after period_start")
    if not Decimal(0) <= holdout_share <= MAX_HOLDOUT_SHARE:
        problems.append(f"holdout_share: expected 0 to {MAX_HOLDOUT_SHARE}")
    if offer_kind not in set(OfferKind):
        problems.append(f"offer_kind: expected one of {', '.join(OfferKind)}")
    if offer_kind == OfferKind.COUPON and not has_coupon_template:
        problems.append("coupon_template_id: a coupon offer needs a coupon template")
    if offer_kind != OfferKind.COUPON and has_coupon_template:
        problems.append("coupon_template_id: only a coupon offer has a coupon template")
    if offer_kind == OfferKind.POINTS and (points is None or points < 1):
        problems.append("points: a points offer needs a number of points, at least 1")
    if offer_kind != OfferKind.POINTS and points is not None:
        problems.append("points: only a points offer gives points")
    if offer_kind == OfferKind.GIFT and not gift_text.strip():
        problems.append("gift_text: a gift offer needs the gift's description")
    if not channels:
        problems.append("channels: at least one channel")
    unknown = [c for c in channels if c not in CONSENT_CHANNELS]
    if unknown:
        problems.append(f"channels: {unknown[0]!r} is not one of {', '.join(CONSENT_CHANNELS)}")
    if len(set(channels)) != len(channels):
        problems.append("channels: a channel is listed twice")
    if not send_at_in_period:
        problems.append("send_at: must be before period_end")
    if budget is not None and budget <= 0:
        problems.append("budget: expected more than 0 (or none for no limit)")
    if unit_cost is not None and unit_cost < 0:
        problems.append("unit_cost: expected 0 or more")
    if budget is not None and effective_unit_cost <= 0:
        problems.append("unit_cost: give the cost of one offer (CNY) so the budget can be kept")
    if (frequency_cap_messages is None) != (frequency_cap_days is None):
        problems.append("frequency_cap_days: give both the number of messages and the days")
    if frequency_cap_messages is not None and frequency_cap_messages < 1:
        problems.append("frequency_cap_messages: expected at least 1 (or none for no cap)")
    if frequency_cap_days is not None and frequency_cap_days < 1:
        problems.append("frequency_cap_days: expected at least 1")
    return problems


#: Where a customer can be reached on each channel: e-mail needs an address, SMS and phone a
#: phone number; WeChat and app go through the shop's own customer reference, always known.
CHANNEL_NEEDS = {"email": "email", "sms": "phone", "phone": "phone", "wechat": "", "app": ""}


def choose_channel(
    channels: Sequence[str], *, granted: Mapping[str, bool | None], reachable: set[str]
) -> tuple[str, str]:
    """The first of ``channels`` (in the campaign's order) with marketing consent granted
    (the newest row; opt-in) and an address, as ``(channel, "")``; else ``("", outcome)``:
    ``no_address`` when consent exists but no address does, else ``no_consent``."""
    consented = [c for c in channels if granted.get(c) is True]
    for channel in consented:
        if channel in reachable:
            return channel, ""
    return "", "no_address" if consented else "no_consent"


# ---------------------------------------------------------------------- win-back (R-G7)

DEFAULT_COOL_DOWN_DAYS = 90
DEFAULT_WINDOW_DAYS = 60
MAX_DAYS = 730


class WinbackEntry(StrEnum):
    """What a win-back run decides for one customer (``winback_entry``)."""

    ENTER = "enter"
    NO_SCORE = "no_score"
    BELOW_THRESHOLD = "below_threshold"
    COOL_DOWN = "cool_down"
    STILL_AT_RISK = "still_at_risk"


@dataclass(frozen=True)
class PreviousEntry:
    """A customer's latest entry into the programme: when, and when (if ever) a later run of
    the programme saw their churn risk below the threshold."""

    enrolled_at: datetime
    recovered_at: datetime | None


def winback_entry(
    *,
    risk: float | None,
    threshold: float,
    previous: PreviousEntry | None,
    as_of: datetime,
    cool_down_days: int,
) -> WinbackEntry:
    """Whether a customer enters a win-back programme at a run as of ``as_of``.

    The issue asks for customers whose churn risk *rises* above a threshold, with a cool-down.
    A customer enters when all three hold:

    1. their latest churn probability is at or above the threshold (``risk >= threshold``);
    2. they were not entered less than ``cool_down_days`` before ``as_of`` (an entry exactly
       that many days ago no longer blocks);
    3. the risk is a *new rise*: the programme never entered them, or, since their latest
       entry, a run of the programme saw their risk below the threshold (``recovered_at``).

    Rule 3 is why a customer who stays at risk is entered once, not once per cool-down: they
    got their offer, and sending it again every quarter would treat a lasting state as a new
    event. Rule 2 is why a customer whose risk dips and rises again within days is not entered
    twice in a row. A programme's first run enters everyone already at risk: their risk rose
    before the programme existed. A customer with no churn score never enters."""
    if risk is None:
        return WinbackEntry.NO_SCORE
    if risk < threshold:
        return WinbackEntry.BELOW_THRESHOLD
    if previous is None:
        return WinbackEntry.ENTER
    if previous.enrolled_at > as_of - timedelta(days=cool_down_days):
        return WinbackEntry.COOL_DOWN
    if previous.recovered_at is None:
        return WinbackEntry.STILL_AT_RISK
    return WinbackEntry.ENTER


_DRAW_SCALE = Decimal(2**64)


def holdout_draw(seed: int, customer_id: int, share: Decimal) -> bool:
    """Whether a customer is held out of a win-back programme: the first 8 bytes of SHA-256
    of ``"seed:id"`` (the campaigns' draw) read as a number ``u`` in [0, 1), held out when
    ``u < share`` (compared exactly, in integers).

    A campaign draws an exact-size holdout from an audience frozen at launch; a win-back
    programme enrols customers a few at a time, for months, so each customer's group must
    follow from the customer alone: the same at every run and every re-entry, whoever else
    enters with them. The holdout's size is then binomial around ``share`` (balanced in
    expectation, independent of who the customer is); raising the share only moves
    customers from the treatment into the holdout, never back."""
    if not Decimal(0) <= share <= MAX_HOLDOUT_SHARE:
        raise ValueError(f"holdout share must be between 0 and {MAX_HOLDOUT_SHARE}, got {share}")
    draw = int.from_bytes(_draw_rank(seed, customer_id)[:8], "big")
    return Decimal(draw) < Decimal(share) * _DRAW_SCALE


class OfferTier(StrEnum):
    STANDARD = "standard"
    HIGH_VALUE = "high_value"


def _yuan_text(amount: Decimal) -> str:
    return f"¥{amount:,.2f}"


def winback_offer_tier(
    *,
    clv_12m: Decimal | None,
    grade: str,
    min_clv: Decimal | None,
    grades: Sequence[str],
    has_high_value_offer: bool,
) -> tuple[OfferTier, str]:
    """Which of a programme's two offers a customer gets, with the reason in plain words (kept
    on the enrolment): the high-value offer when the programme has one and the customer's
    12-month CLV is at least ``min_clv`` or their grade is one of ``grades``; else the
    standard offer."""
    if not has_high_value_offer:
        return OfferTier.STANDARD, "the programme has one offer for everyone"
    met, unmet = [], []
    if min_clv is not None:
        if clv_12m is None:
            unmet.append("no CLV estimate yet")
        elif clv_12m >= min_clv:
            met.append(f"CLV (12 months) {_yuan_text(clv_12m)} ≥ {_yuan_text(min_clv)}")
        else:
            unmet.append(f"CLV (12 months) {_yuan_text(clv_12m)} < {_yuan_text(min_clv)}")
    if grades:
        listed = ", ".join(grades)
        if grade and grade in grades:
            met.append(f"grade {grade} is one of {listed}")
        else:
            unmet.append(f"grade {grade or 'none'} is not one of {listed}")
    if met:
        return OfferTier.HIGH_VALUE, "high-value offer: " + "; ".join(met)
    return OfferTier.STANDARD, "standard offer: " + "; ".join(unmet)


def _offer_problems(
    prefix: str, *, offer_kind: str, has_coupon_template: bool, points: int | None, gift_text: str
) -> list[str]:
    problems = []
    if offer_kind not in set(OfferKind):
        problems.append(f"{prefix}offer_kind: expected one of {', '.join(OfferKind)}")
    if offer_kind == OfferKind.COUPON and not has_coupon_template:
        problems.append(f"{prefix}coupon_template_id: a coupon offer needs a coupon template")
    if offer_kind != OfferKind.COUPON and has_coupon_template:
        problems.append(f"{prefix}coupon_template_id: only a coupon offer has a coupon template")
    if offer_kind == OfferKind.POINTS and (points is None or points < 1):
        problems.append(f"{prefix}points: a points offer needs a number of points, at least 1")
    if offer_kind != OfferKind.POINTS and points is not None:
        problems.append(f"{prefix}points: only a points offer gives points")
    if offer_kind == OfferKind.GIFT and not gift_text.strip():
        problems.append(f"{prefix}gift_text: a gift offer needs the gift's description")
    return problems


def winback_problems(
    *,
    churn_threshold: Decimal,
    holdout_share: Decimal,
    cool_down_days: int,
    window_days: int,
    offer_kind: str,
    has_coupon_template: bool,
    points: int | None,
    gift_text: str,
    high_value_offer_kind: str,
    has_high_value_coupon_template: bool,
    high_value_points: int | None,
    high_value_gift_text: str,
    high_value_min_clv: Decimal | None,
    high_value_grades: Sequence[str],
    channels: Sequence[str],
    frequency_cap_messages: int | None,
    frequency_cap_days: int | None,
) -> list[str]:
    """What is wrong with a win-back programme, one sentence per field (empty: fine)."""
    problems = []
    if not Decimal(0) < churn_threshold < Decimal(1):
        problems.append("churn_threshold: expected a probability between 0 and 1, e.g. 0.6")
    if not Decimal(0) <= holdout_share <= MAX_HOLDOUT_SHARE:
        problems.append(f"holdout_share: expected 0 to {MAX_HOLDOUT_SHARE}")
    if not 1 <= window_days <= MAX_DAYS:
        problems.append(f"window_days: expected 1 to {MAX_DAYS} days")
    if not 1 <= cool_down_days <= MAX_DAYS:
        problems.append(f"cool_down_days: expected 1 to {MAX_DAYS} days")
    elif cool_down_days < window_days:
        # Otherwise a customer could enter again while their last window is open, and one
        # order would count for two entries.
        problems.append("cool_down_days: at least the measurement window (window_days)")
    problems += _offer_problems(
        "", offer_kind=offer_kind, has_coupon_template=has_coupon_template, points=points,
        gift_text=gift_text,
    )  # fmt: skip
    if high_value_offer_kind:
        problems += _offer_problems(
            "high_value_", offer_kind=high_value_offer_kind,
            has_coupon_template=has_high_value_coupon_template, points=high_value_points,
            gift_text=high_value_gift_text,
        )  # fmt: skip
        if high_value_min_clv is None and not high_value_grades:
            problems.append("high_value_min_clv: say who is high value (a CLV, grades or both)")
    elif (
        has_high_value_coupon_template
        or high_value_points is not None
        or high_value_gift_text.strip()
    ):
        problems.append("high_value_offer_kind: choose the high-value offer's kind")
    if high_value_min_clv is not None and high_value_min_clv < 0:
        problems.append("high_value_min_clv: expected 0 or more")
    unknown_grades = [g for g in high_value_grades if g not in GRADES]
    if unknown_grades:
        problems.append(
            f"high_value_grades: {unknown_grades[0]!r} is not one of {', '.join(GRADES)}"
        )
    if not channels:
        problems.append("channels: at least one channel")
    unknown = [c for c in channels if c not in CONSENT_CHANNELS]
    if unknown:
        problems.append(f"channels: {unknown[0]!r} is not one of {', '.join(CONSENT_CHANNELS)}")
    if len(set(channels)) != len(channels):
        problems.append("channels: a channel is listed twice")
    if (frequency_cap_messages is None) != (frequency_cap_days is None):
        problems.append("frequency_cap_days: give both the number of messages and the days")
    if frequency_cap_messages is not None and frequency_cap_messages < 1:
        problems.append("frequency_cap_messages: expected at least 1 (or none for no cap)")
    if frequency_cap_days is not None and frequency_cap_days < 1:
        problems.append("frequency_cap_days: expected at least 1")
    return problems
