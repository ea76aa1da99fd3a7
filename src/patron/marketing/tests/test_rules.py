"""The pure rules: validating a segment's rule (paths of mistakes), plain words, discounts,
codes, the coupon state machine and the issue plan."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from patron.marketing import rules
from patron.marketing.rules import Condition, Group, Op, RuleError
from patron.statemachine import TransitionRefused


def test_a_nested_rule_validates_to_a_tree() -> None:
    # given
    raw = {
        "all": [
            {"field": "grade", "op": "eq", "value": "core"},
            {"any": [{"field": "spend_365d", "op": "gte", "value": 1000}]},
        ]
    }

    # when
    rule = rules.validate_rule(raw)

    # then
    assert rule == Group(
        "all",
        (
            Condition("grade", Op.EQ, "core"),
            Group("any", (Condition("spend_365d", Op.GTE, Decimal("1000")),)),
        ),
    )
    assert rules.rule_to_json(rule) == raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "rule: expected a group"),
        ({"all": []}, "rule.all: expected a non-empty list of conditions"),
        ({"all": [{"field": "shoe_size", "op": "eq", "value": 1}]}, "rule.all[0].field: unknown"),
        (
            {"all": [{"field": "province", "op": "gt", "value": "浙江"}]},
            "rule.all[0].op: 'gt' is not allowed for province; use eq, ne, in, not_in",
        ),
        (
            {"all": [{"field": "grade", "op": "eq", "value": "gold"}]},
            "rule.all[0].value: 'gold' is not one of core, potential, ordinary",
        ),
        (
            {
                "all": [
                    {"field": "kind", "op": "eq", "value": "business"},
                    {"any": [{"field": "clv_12m", "op": "gt", "value": "many"}]},
                ]
            },
            "rule.all[1].any[0].value: expected a number, got 'many'",
        ),
        (
            {"any": [{"field": "orders_count", "op": "gte", "value": 2.5}]},
            "rule.any[0].value: expected a whole number",
        ),
        (
            {
                "all": [
                    {
                        "field": "registered_at",
                        "op": "between",
                        "value": ["2025-02-01", "2025-01-01"],
                    }
                ]
            },
            "rule.all[0].value: the low bound 2025-02-01 is above the high bound 2025-01-01",
        ),
        (
            {"all": [{"field": "last_order_date", "op": "lt", "value": "2025-13-01"}]},
            "rule.all[0].value: expected a date YYYY-MM-DD",
        ),
        (
            {"all": [{"field": "province", "op": "is_null", "value": "x"}]},
            "rule.all[0].value: is_null takes no value",
        ),
        (
            {"all": [{"field": "consent", "op": "granted", "value": "marketing:pigeon"}]},
            "rule.all[0].value: 'marketing:pigeon' is not one of",
        ),
        (
            {"all": [{"any": [{"all": [{"field": "city", "op": "not_null"}]}]}]},
            "rule.all[0].any[0]: groups nest one level deep only",
        ),
        (
            {"all": [{"field": "province", "op": "in", "value": []}]},
            "rule.all[0].value: expected a non-empty list",
        ),
        (
            {"all": [{"field": "city", "op": "eq", "value": "杭州", "extra": 1}]},
            "rule.all[0]: unknown key 'extra'",
        ),
        ({"all": [{"field": "p_alive", "op": "lt", "value": True}]}, "expected a number, got True"),
    ],
)
def test_a_bad_rule_names_the_path_of_the_mistake(raw: Any, message: str) -> None:
    with pytest.raises(RuleError) as error:
        rules.validate_rule(raw)
    assert message in str(error.value)


def test_every_field_declares_its_operators() -> None:
    for spec in rules.SEGMENT_FIELDS.values():
        assert spec.operators, spec.name
        assert spec.as_dict()["operators"] == [op.value for op in spec.operators]


def test_a_rule_in_plain_words() -> None:
    # given
    rule = rules.validate_rule(
        {
            "all": [
                {"field": "grade", "op": "eq", "value": "core"},
                {"any": [
                    {"field": "province", "op": "in", "value": ["浙江", "江苏"]},
                    {"field": "spend_365d", "op": "between", "value": [1000, 5000.5]},
                ]},
                {"field": "consent", "op": "granted", "value": "marketing:sms"},
            ]
        }
    )  # fmt: skip

    # then
    assert rules.describe(rule) == (
        "Grade is core and (Province is one of 浙江, 江苏 or Spend, last 365 days is between "
        "1000 – 5000.5) and Consent is granted for marketing:sms"
    )
    assert rules.describe(rule, language="zh-hans").startswith("客户等级 等于 core 且 (省份 属于")


@pytest.mark.parametrize(
    ("kind", "value", "total", "expected"),
    [
        ("amount_off", "20", "199.00", "20.00"),
        ("amount_off", "50", "30.00", "30.00"),  # never more than the order
        ("percent_off", "15", "199.99", "30.00"),  # 29.9985 rounds half up
        ("percent_off", "12.5", "80.04", "10.01"),  # 10.005 rounds half up
        ("percent_off", "100", "58.80", "58.80"),
        ("percent_off", "10", "0", "0.00"),
    ],
)
def test_discounts_to_the_cent(kind: str, value: str, total: str, expected: str) -> None:
    assert rules.coupon_discount(kind, Decimal(value), Decimal(total)) == Decimal(expected)


def test_codes_use_no_look_alike_characters() -> None:
    codes = {rules.coupon_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 10 and not set(c) & set("0O1IL2Z5S8B") for c in codes)


def test_a_redeemed_coupon_cannot_be_voided() -> None:
    assert rules.coupon_next("issued", "redeem") == "redeemed"
    with pytest.raises(TransitionRefused, match="the coupon is redeemed: cannot void"):
        rules.coupon_next("redeemed", "void")


def test_the_issue_plan_names_the_stock_and_the_customers_over_their_limit() -> None:
    assert (
        rules.issue_plan(
            customer_ids=[1, 2, 2],
            issued_before={1: 1},
            per_customer_limit=1,
            stock=10,
            issued_total=7,
        )
        == [
            "stock: 3 of 10 codes left, 3 asked for",
            "per_customer_limit: customers 1, 2 would hold more than 1 coupon(s) of this template",
        ][1:]
    )
    assert rules.issue_plan(
        customer_ids=[None] * 4, issued_before={}, per_customer_limit=1, stock=10, issued_total=7
    ) == ["stock: 3 of 10 codes left, 4 asked for"]


def test_template_terms_are_checked_as_a_whole() -> None:
    assert rules.template_problems(
        kind="percent_off",
        value=Decimal("120"),
        min_order_amount=Decimal("0"),
        valid_days=None,
        has_valid_until=False,
        valid_window_ordered=True,
        per_customer_limit=0,
        stock=None,
        budget=None,
    ) == [
        "value: a percentage is at most 100",
        "valid_days: give valid_days, valid_until or both",
        "per_customer_limit: expected at least 1 (or none for no limit)",
    ]
