"""Risk measures and rules on hand-built sources: exact values per measure, the window and the
cut-off boundaries, minimum volume and thresholds, evidence and its order, back-tests, and
properties that hold whatever is added after the cut-off. Last, the identities loader."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.intelligence.sources import SCHEMAS, Sources
from patron.risk.detection import (
    DEFAULT_RULES,
    IDENTITY_SCHEMA,
    MAX_EVIDENCE,
    MEASURES,
    RESULT_SCHEMA,
    BacktestPoint,
    Hit,
    RuleSpec,
    abuse_counts,
    backtest,
    detect,
    measure_values,
)

AS_OF = datetime(2024, 7, 1, tzinfo=UTC)


def _at(text: str) -> datetime:
    """A UTC instant from ``MM-DD HH:MM`` in 2024."""
    return datetime.strptime(f"2024-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _times(row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    for name, value in values.items():
        row[name] = _at(value) if isinstance(value, str) and name.endswith("_at") else value
    return row


def _customer(customer_id: int, registered: str | None = "01-01 00:00") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "source": "shop",
        "external_id": f"C{customer_id}",
        "kind": "individual",
        "registered_at": _at(registered) if registered else None,
        "province": "上海",
        "registration_channel": "app",
        "company_size": "",
    }


def _order(order_id: int, customer_id: int, placed: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": "completed",
        "placed_at": _at(placed),
        "total_amount": 100.0,
        "discount_amount": 0.0,
        "coupon_code": "",
        "currency": "CNY",
    }
    return _times(row, values)


def _return(return_id: int, order_id: int, kind: str, requested: str) -> dict[str, Any]:
    return {
        "return_id": return_id,
        "order_id": order_id,
        "customer_id": 0,  # the measures take the customer from the order
        "kind": kind,
        "status": "requested",
        "reason": "不想要了",
        "requested_at": _at(requested),
        "refund_amount": 0.0,
        "delivered_at": None,
    }


def _payment(payment_id: int, customer_id: int, status: str, at: str) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "order_id": payment_id,
        "customer_id": customer_id,
        "method": "card",
        "status": status,
        "amount": 10.0,
        "at": _at(at),
    }


def _review(
    review_id: int,
    customer_id: int,
    rating: int,
    created: str,
    *,
    product_id: int | None = 1,
    order_id: int | None = None,
    text: str = "",
) -> dict[str, Any]:
    return {
        "review_id": review_id,
        "customer_id": customer_id,
        "order_id": order_id,
        "product_id": product_id,
        "rating": rating,
        "text": text,
        "created_at": _at(created),
        "helpful_votes": 0,
    }


def _identity(customer_id: int, kind: str, value_hash: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "kind": kind, "value_hash": value_hash}


def _table(name: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SCHEMAS[name])


def _sources(
    *,
    customers: Sequence[dict[str, Any]] = (),
    orders: Sequence[dict[str, Any]] = (),
    payments: Sequence[dict[str, Any]] = (),
    returns: Sequence[dict[str, Any]] = (),
    reviews: Sequence[dict[str, Any]] = (),
    identities: Sequence[dict[str, Any]] | None = None,
) -> Sources:
    extra = {}
    if identities is not None:
        extra["identities"] = pa.Table.from_pylist(list(identities), schema=IDENTITY_SCHEMA)
    return Sources(
        customers=_table("customers", customers),
        orders=_table("orders", orders),
        payments=_table("payments", payments),
        returns=_table("returns", returns),
        reviews=_table("reviews", reviews),
        tickets=_table("tickets", []),
        extra=extra,
    )


def _values(
    sources: Sources, measure: str, window_days: int = 30, **params: float
) -> dict[int, tuple[float, int, list[tuple[str, int]]]]:
    table = measure_values(sources, AS_OF, measure, window_days, params)
    assert table.schema == RESULT_SCHEMA
    ids = table.column("customer_id").to_pylist()
    assert ids == sorted(ids)
    return {
        row["customer_id"]: (
            row["value"],
            row["volume"],
            [(e["type"], e["id"]) for e in row["evidence"]],
        )
        for row in table.to_pylist()
    }


# --- returns ---------------------------------------------------------------------------------
RETURN_ORDERS = [
    _order(101, 1, "05-25 00:00", delivered_at="06-01 00:00"),  # the window's first instant
    _order(102, 1, "06-15 00:00", delivered_at="06-20 00:00"),
    _order(103, 1, "05-20 00:00", delivered_at="05-31 23:59"),  # before the 30-day window
    _order(104, 1, "06-28 00:00", delivered_at="07-01 00:00"),  # at the cut-off: not yet
    _order(105, 1, "06-20 00:00", delivered_at="06-25 00:00"),
    _order(201, 2, "06-05 00:00", delivered_at="06-10 00:00"),
    _order(301, 3, "03-25 00:00", delivered_at="04-01 00:00"),
]
RETURNS = [
    _return(1, 101, "return", "06-02 00:00"),  # one day after delivery
    _return(2, 102, "exchange", "06-21 00:00"),
    _return(3, 103, "return", "06-02 00:00"),  # its order was delivered before the window
    _return(4, 105, "return", "07-01 00:00"),  # at the cut-off
    _return(5, 102, "return", "06-22 00:00"),  # a second request on 102, two days after
    _return(6, 105, "repair", "06-26 00:00"),  # not a return
]


def _return_sources() -> Sources:
    return _sources(orders=RETURN_ORDERS, returns=RETURNS)


def test_return_rate_is_over_the_orders_delivered_in_the_window() -> None:
    # when
    values = _values(_return_sources(), "return_rate")
    # then: 101 and 102 of the three delivered (101, 102, 105) were sent back
    evidence = [("return", 5), ("return", 2), ("return", 1)]
    assert values == {1: (2 / 3, 3, evidence), 2: (0.0, 1, [])}


def test_a_longer_window_reaches_earlier_deliveries() -> None:
    # when: 60 days reach back to 2 May
    values = _values(_return_sources(), "return_rate", window_days=60)
    # then: 103 is in, and its return with it
    evidence = [("return", 5), ("return", 2), ("return", 3), ("return", 1)]
    assert values == {1: (3 / 4, 4, evidence), 2: (0.0, 1, [])}


def test_return_count_counts_every_request() -> None:
    values = _values(_return_sources(), "return_count")
    assert values == {1: (3.0, 3, [("return", 5), ("return", 2), ("return", 1)]), 2: (0.0, 1, [])}


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (3, (2.0, 3, [("return", 5), ("return", 1)])),
        (1, (1.0, 3, [("return", 1)])),  # exactly one day after delivery still counts
    ],
)
def test_quick_returns_are_returns_soon_after_delivery(
    days: float, expected: tuple[float, int, list[tuple[str, int]]]
) -> None:
    values = _values(_return_sources(), "quick_returns", days=days)
    assert values == {1: expected, 2: (0.0, 1, [])}


# --- cancellations ---------------------------------------------------------------------------
CANCEL_ORDERS = [
    _order(401, 1, "06-01 00:00", shipped_at="06-02 00:00", cancelled_at="06-03 00:00"),
    _order(402, 1, "06-05 00:00", shipped_at="06-06 00:00"),
    _order(403, 1, "06-10 00:00", cancelled_at="06-10 01:00"),  # before shipping
    _order(404, 1, "06-20 00:00", shipped_at="06-21 00:00", cancelled_at="07-01 00:00"),
    _order(405, 1, "05-20 00:00", shipped_at="05-25 00:00", cancelled_at="06-02 00:00"),
    _order(406, 1, "06-25 00:00", status="cancelled"),  # no cancellation time
]


def test_cancellations_after_shipment_are_over_the_orders_shipped_in_the_window() -> None:
    values = _values(_sources(orders=CANCEL_ORDERS), "cancel_after_ship")
    # 404 was cancelled at the cut-off (not yet), 405 shipped before the window
    assert values == {1: (1.0, 3, [("order", 401)])}


def test_cancel_rate_is_over_the_orders_placed_in_the_window() -> None:
    values = _values(_sources(orders=CANCEL_ORDERS), "cancel_rate")
    # placed in the window: 401, 402, 403, 404, 406; cancelled by then: 401, 403, 406
    assert values == {1: (0.6, 5, [("order", 406), ("order", 403), ("order", 401)])}


# --- payments --------------------------------------------------------------------------------
PAYMENTS = [
    _payment(1, 1, "chargeback", "06-05 00:00"),
    _payment(2, 1, "succeeded", "06-10 00:00"),
    _payment(3, 1, "defaulted", "06-15 00:00"),
    _payment(4, 1, "refused", "06-20 00:00"),
    _payment(5, 1, "chargeback", "07-01 00:00"),  # at the cut-off
    _payment(6, 1, "chargeback", "05-31 23:59"),  # before the window
    _payment(7, 2, "succeeded", "06-10 00:00"),
]


@pytest.mark.parametrize(
    ("measure", "payment_id"),
    [("chargebacks", 1), ("paylater_defaults", 3), ("cod_refusals", 4)],
)
def test_payment_trouble_is_counted_over_the_payments_in_the_window(
    measure: str, payment_id: int
) -> None:
    values = _values(_sources(payments=PAYMENTS), measure)
    assert values == {1: (1.0, 4, [("payment", payment_id)]), 2: (0.0, 1, [])}


def test_evidence_keeps_the_most_recent_twenty() -> None:
    # given: 25 chargebacks, one a day
    start = datetime(2024, 6, 1, tzinfo=UTC)
    payments = [
        {**_payment(i, 1, "chargeback", "06-01 00:00"), "at": start + timedelta(days=i - 1)}
        for i in range(1, 26)
    ]
    # when
    values = _values(_sources(payments=payments), "chargebacks")
    # then
    assert values[1][:2] == (25.0, 25)
    assert values[1][2] == [("payment", i) for i in range(25, 5, -1)]
    assert len(values[1][2]) == MAX_EVIDENCE


# --- reviews ---------------------------------------------------------------------------------
BURST = [
    _review(11, 2, 1, "06-10 00:00"),
    _review(12, 2, 1, "06-10 10:00"),
    _review(13, 2, 1, "06-11 23:00"),
    _review(14, 2, 1, "06-20 00:00"),
    _review(15, 2, 5, "06-10 05:00"),
    _review(16, 2, 1, "07-01 00:00"),  # at the cut-off
    _review(17, 3, 1, "06-10 00:00"),
    _review(18, 3, 1, "06-12 00:00"),  # exactly 48 hours later: another span
]


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (48, (3.0, 5, [("review", 13), ("review", 12), ("review", 11)])),
        (24, (2.0, 5, [("review", 12), ("review", 11)])),
    ],
)
def test_one_star_burst_is_the_most_one_star_reviews_within_the_span(
    hours: float, expected: tuple[float, int, list[tuple[str, int]]]
) -> None:
    values = _values(_sources(reviews=BURST), "one_star_burst", hours=hours)
    # customer 3's two reviews are 48 hours apart: never in one span; the latest is shown
    assert values == {2: expected, 3: (1.0, 2, [("review", 18)])}


RECEIPT_ORDERS = [
    _order(501, 3, "06-01 00:00", delivered_at="06-05 00:00"),
    _order(502, 3, "06-10 00:00", delivered_at="06-15 00:00"),
    _order(503, 3, "06-12 00:00", shipped_at="06-13 00:00"),
    _order(504, 3, "06-14 00:00", cancelled_at="06-17 00:00"),
    _order(505, 3, "06-15 00:00", delivered_at="07-02 00:00"),  # delivered after the cut-off
]
RECEIPT_REVIEWS = [
    _review(21, 3, 5, "06-06 00:00", order_id=501),  # after delivery: fine
    _review(22, 3, 1, "06-14 00:00", order_id=502),  # before delivery
    _review(23, 3, 1, "06-16 00:00", order_id=503),  # never delivered
    _review(24, 3, 1, "06-18 00:00", order_id=504),  # cancelled
    _review(25, 3, 1, "06-19 00:00", order_id=None),  # no order
    _review(26, 3, 1, "06-20 00:00", order_id=505),  # not delivered as of the cut-off
    _review(27, 3, 1, "06-21 00:00", order_id=999),  # an order we do not know
]


def test_reviews_without_receipt() -> None:
    values = _values(
        _sources(orders=RECEIPT_ORDERS, reviews=RECEIPT_REVIEWS), "reviews_without_receipt"
    )
    ids = [27, 26, 25, 24, 23, 22]
    assert values == {3: (6.0, 7, [("review", i) for i in ids])}


def test_reviews_without_an_order_can_be_left_out() -> None:
    values = _values(
        _sources(orders=RECEIPT_ORDERS, reviews=RECEIPT_REVIEWS),
        "reviews_without_receipt",
        unlinked=0,
    )
    assert values == {3: (4.0, 7, [("review", i) for i in (26, 24, 23, 22)])}


def test_rating_deviation_compares_with_everyone_else_on_the_same_products() -> None:
    # given: product 900 rated 5 and 4 by others, 1 then 2 by customer 6; 901 only by 6;
    # 902 rated 5 by customer 4 and by 6
    reviews = [
        _review(31, 4, 5, "06-05 00:00", product_id=900),
        _review(32, 5, 4, "06-06 00:00", product_id=900),
        _review(33, 6, 1, "06-07 00:00", product_id=900),
        _review(34, 6, 2, "06-08 00:00", product_id=900),
        _review(35, 6, 2, "06-09 00:00", product_id=901),
        _review(36, 4, 5, "06-10 00:00", product_id=902),
        _review(37, 6, 5, "06-11 00:00", product_id=902),
        _review(38, 6, 1, "06-12 00:00", product_id=None),
    ]
    # when
    values = _values(_sources(reviews=reviews), "rating_deviation")
    # then: 6 sits 3.5, 2.5 and 0 stars below the others (its own reviews left out)
    assert values == {
        4: (0.0, 2, []),  # above the others: 0, not negative
        5: (0.0, 1, []),
        6: (2.0, 3, [("review", 34), ("review", 33)]),
    }


ABUSE_REVIEWS = [
    _review(41, 7, 1, "06-01 00:00", product_id=910, text="垃圾店铺，全是骗子！"),
    _review(42, 7, 5, "06-02 00:00", product_id=910, text="加微信领红包，好评返现50元"),
    # clearly negative, says nothing about the product: off-topic
    _review(43, 7, 1, "06-03 00:00", product_id=910, text="今天心情不好，给个差评"),
    # negative, but about the product's quality
    _review(44, 7, 1, "06-04 00:00", product_id=910, text="质量太差了，大家别买"),
    # negative, and another customer's review of the same product talks about the same thing
    _review(45, 7, 2, "06-05 00:00", product_id=911, text="客服态度恶劣，差评"),
    _review(46, 8, 5, "06-06 00:00", product_id=911, text="客服很耐心，好评"),
    # off-topic but rated 3: not "clearly negative"
    _review(47, 7, 3, "06-07 00:00", product_id=910, text="今天心情不好，给个差评"),
    _review(48, 7, 1, "07-01 00:00", product_id=910, text="垃圾店铺，全是骗子！"),
]


def test_abusive_and_off_topic_reviews() -> None:
    values = _values(_sources(reviews=ABUSE_REVIEWS), "abusive_reviews")
    assert values == {
        7: (3.0, 6, [("review", 43), ("review", 42), ("review", 41)]),
        8: (0.0, 1, []),
    }


def test_off_topic_needs_clearly_negative_text() -> None:
    # the off-topic review reads about -0.81
    values = _values(_sources(reviews=ABUSE_REVIEWS), "abusive_reviews", sentiment=-0.9)
    assert values[7] == (2.0, 6, [("review", 42), ("review", 41)])


def test_off_topic_needs_no_other_customer_to_share_its_words() -> None:
    # given: another customer's review of product 910 also talks about 心情 (mood)
    reviews = [*ABUSE_REVIEWS, _review(49, 9, 4, "06-08 00:00", product_id=910, text="心情很好")]
    # when
    values = _values(_sources(reviews=reviews), "abusive_reviews")
    # then
    assert values[7] == (2.0, 6, [("review", 42), ("review", 41)])


def test_abuse_counts_read_whole_tokens_and_runs_of_them() -> None:
    texts = ["垃圾店铺，全是骗子！", "加微信领红包", "买了一卷垃圾袋，很好用", "", None]
    assert abuse_counts(texts).tolist() == [2, 2, 0, 0, 0]


# --- identities ------------------------------------------------------------------------------
IDENTITY_CUSTOMERS = [
    _customer(1, "01-01 00:00"),
    _customer(2, None),  # no registration time: counted
    _customer(3, "02-01 00:00"),
    _customer(4, "07-01 00:00"),  # registered at the cut-off: not yet a customer
    _customer(5, "03-01 00:00"),
]
IDENTITIES = [
    _identity(1, "phone", "H1"),
    _identity(2, "phone", "H1"),
    _identity(1, "email", "E1"),
    _identity(2, "email", "E1"),  # 1 and 2 again: one other customer, not two
    _identity(2, "address", "A1"),
    _identity(3, "address", "A1"),
    _identity(3, "phone", "A1"),  # same hash, other kind: not shared
    _identity(4, "phone", "H1"),
    _identity(5, "phone", ""),  # empty: no identity
    _identity(5, "email", "E5"),
]


def test_shared_identity_counts_other_customers_once() -> None:
    sources = _sources(customers=IDENTITY_CUSTOMERS, identities=IDENTITIES)
    values = _values(sources, "shared_identity", window_days=0)
    assert values == {
        1: (1.0, 2, [("customer", 2)]),
        2: (2.0, 3, [("customer", 3), ("customer", 1)]),  # most recently registered first
        3: (1.0, 2, [("customer", 2)]),
        5: (0.0, 1, []),
    }


def test_shared_identity_ignores_values_shared_too_widely() -> None:
    sources = _sources(customers=IDENTITY_CUSTOMERS, identities=IDENTITIES)
    values = _values(sources, "shared_identity", window_days=0, max_group=1)
    assert {c: v[0] for c, v in values.items()} == {1: 0.0, 2: 0.0, 3: 0.0, 5: 0.0}


def test_identity_measures_without_identities_find_nothing() -> None:
    sources = _sources(customers=IDENTITY_CUSTOMERS)
    assert _values(sources, "shared_identity", window_days=0) == {}
    assert _values(sources, "coupon_abuse") == {}


def test_coupon_abuse_counts_new_accounts_redeeming_first_order_coupons_at_one_address() -> None:
    # given
    customers = [
        _customer(11, "06-02 00:00"),
        _customer(12, "06-04 00:00"),
        _customer(13, "06-06 00:00"),
        _customer(14, "06-08 00:00"),
        _customer(15, "05-01 00:00"),  # registered before the window
        _customer(16, "06-10 00:00"),
        _customer(17, "06-12 00:00"),
    ]
    orders = [
        _order(611, 11, "06-03 00:00", coupon_code="NEW10"),
        _order(612, 12, "06-05 00:00", coupon_code="NEW10"),
        _order(613, 13, "06-07 00:00", coupon_code="NEW10"),
        _order(614, 14, "06-09 00:00"),  # first order without a coupon
        _order(615, 14, "06-10 00:00", coupon_code="NEW10"),
        _order(616, 15, "06-02 00:00", coupon_code="NEW10"),
        _order(617, 16, "07-01 00:00", coupon_code="NEW10"),  # at the cut-off
        _order(618, 17, "06-13 00:00", coupon_code="NEW10"),
    ]
    identities = [_identity(c, "address", "AA") for c in (11, 12, 13, 14, 15, 16)]
    identities += [_identity(13, "address", "BB"), _identity(17, "address", "BB")]
    sources = _sources(customers=customers, orders=orders, identities=identities)
    # when
    values = _values(sources, "coupon_abuse")
    # then: at AA, 11, 12 and 13 redeemed, of the five accounts new in the window
    assert values == {
        11: (3.0, 5, [("customer", 13), ("customer", 12)]),
        12: (3.0, 5, [("customer", 13), ("customer", 11)]),
        13: (3.0, 5, [("customer", 12), ("customer", 11)]),  # AA, its busier address
        17: (2.0, 2, [("customer", 13)]),
    }


# --- rules -----------------------------------------------------------------------------------
def _rule(code: str, measure: str, threshold: float, min_volume: int, **extra: Any) -> RuleSpec:
    values: dict[str, Any] = {
        "code": code,
        "name": code,
        "measure": measure,
        "window_days": 30,
        "threshold": threshold,
        "min_volume": min_volume,
        "severity": "medium",
        "action": "watch",
    }
    values.update(extra)
    return RuleSpec(**values)


def test_a_rule_fires_at_its_threshold_and_minimum_volume() -> None:
    # given
    rules = [
        _rule("AT", "return_count", 3, 3),  # exactly the value and the volume
        _rule("ABOVE", "return_count", 3.5, 1),
        _rule("THIN", "return_count", 1, 4),  # not enough delivered orders
        _rule("ZERO", "return_count", 0, 1),
    ]
    # when
    hits = detect(_return_sources(), AS_OF, rules)
    # then
    evidence = (("return", 5), ("return", 2), ("return", 1))
    assert hits == [
        Hit("AT", 1, 3.0, 3, evidence),
        Hit("ZERO", 1, 3.0, 3, evidence),
        Hit("ZERO", 2, 0.0, 1, ()),
    ]


def test_rules_with_parameters_and_windows_are_measured_apart() -> None:
    rules = [
        _rule("Q3", "quick_returns", 2, 1),
        _rule("Q1", "quick_returns", 2, 1, params={"days": 1}),
        _rule("Q3-60", "quick_returns", 3, 1, window_days=60),
    ]
    hits = detect(_return_sources(), AS_OF, rules)
    assert [(h.rule, h.customer_id, h.value, h.volume) for h in hits] == [
        ("Q3", 1, 2.0, 3),
        ("Q3-60", 1, 3.0, 4),  # 103, delivered in the longer window, came back within 3 days
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: measure_values(s, AS_OF, "nonsense", 30), "unknown measure 'nonsense'"),
        (
            lambda s: measure_values(s, AS_OF, "return_rate", 30, {"days": 3}),
            "measure 'return_rate' has no parameter",
        ),
        (lambda s: measure_values(s, AS_OF, "return_rate", 0), "at least 1 day"),
        (
            lambda s: measure_values(s, AS_OF.replace(tzinfo=None), "return_rate", 30),
            "timezone-aware",
        ),
    ],
)
def test_bad_requests_are_refused_by_name(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(_return_sources())


def test_default_rules_name_known_measures_actions_and_severities() -> None:
    codes = [rule.code for rule in DEFAULT_RULES]
    assert len(codes) == len(set(codes))
    for rule in DEFAULT_RULES:
        assert rule.measure in MEASURES
        assert rule.severity in ("low", "medium", "high")
        assert rule.action in (
            "watch",
            "order_review",
            "payment_method",
            "coupon_ban",
            "credit_limit",
            "account_freeze",
            "blacklist",
        )
        assert set(rule.params) <= set(MEASURES[rule.measure].default_params)
    assert {rule.measure for rule in DEFAULT_RULES} >= set(MEASURES) - {"return_count"}


def test_every_measure_runs_on_empty_sources() -> None:
    for key in MEASURES:
        table = measure_values(_sources(), AS_OF, key, 30)
        assert table.schema == RESULT_SCHEMA
        assert table.num_rows == 0


# --- back-test -------------------------------------------------------------------------------
def test_backtest_compares_the_rule_and_its_change_at_each_cutoff() -> None:
    # given: three returns or more, against any return volume at all (threshold 0)
    rule = _rule("RET", "return_count", 3, 1)
    changed = _rule("RET", "return_count", 0, 1)
    # when
    result = backtest(_return_sources(), AS_OF, rule, changed, days=14)
    # then: on 17 June customer 1 had two returns (101, 103), on 24 June four
    june = [datetime(2024, 6, d, tzinfo=UTC) for d in (17, 24)]
    assert result.cutoffs == (*june, AS_OF)
    assert result.per_cutoff == (
        BacktestPoint(june[0], 0, 2),
        BacktestPoint(june[1], 1, 2),
        BacktestPoint(AS_OF, 1, 2),
    )
    assert (result.old, result.new) == ({1}, {1, 2})
    assert (result.only_old, result.only_new) == (frozenset(), {2})


def test_backtest_always_includes_the_first_day() -> None:
    rule = _rule("RET", "return_count", 3, 1)
    result = backtest(_return_sources(), AS_OF, rule, rule, days=10, step_days=7)
    assert result.cutoffs == (AS_OF - timedelta(days=10), AS_OF - timedelta(days=7), AS_OF)


# --- properties ------------------------------------------------------------------------------
TEXTS = ["垃圾店铺，全是骗子！", "今天心情不好，给个差评", "质量很好", "物流太慢", ""]
LOW_RULES = [RuleSpec(f"R-{key}", key, key, 60, 0, 0, "low", "watch") for key in sorted(MEASURES)]


@st.composite
def _histories(draw: st.DrawFn) -> tuple[Sources, Sources]:
    """Sources before the cut-off, and the same with rows dated at or after it added."""
    minutes = st.integers(min_value=-90 * 24 * 60, max_value=-1)
    later = st.integers(min_value=0, max_value=30 * 24 * 60)
    customers = st.integers(min_value=1, max_value=4)

    def when(offset: int) -> datetime:
        return AS_OF + timedelta(minutes=offset)

    def order(order_id: int, customer: int, offsets: list[int]) -> dict[str, Any]:
        placed, shipped, delivered, cancelled = (when(m) for m in sorted(offsets))
        return {
            **_order(
                order_id, customer, "01-01 00:00", coupon_code=draw(st.sampled_from(["", "NEW"]))
            ),
            "placed_at": placed,
            "shipped_at": shipped if draw(st.booleans()) else None,
            "delivered_at": delivered if draw(st.booleans()) else None,
            "cancelled_at": cancelled if draw(st.booleans()) else None,
        }

    def rows(offsets: st.SearchStrategy[int], first_id: int) -> dict[str, list[dict[str, Any]]]:
        n = draw(st.integers(min_value=0, max_value=8))
        orders = [
            order(first_id + i, draw(customers), [draw(offsets) for _ in range(4)])
            for i in range(n)
        ]
        order_ids = [o["order_id"] for o in orders] or [first_id]
        returns = [
            {
                **_return(first_id + i, draw(st.sampled_from(order_ids)), "return", "01-01 00:00"),
                "requested_at": when(draw(offsets)),
            }
            for i in range(draw(st.integers(min_value=0, max_value=5)))
        ]
        reviews = [
            {
                **_review(
                    first_id + i,
                    draw(customers),
                    draw(st.integers(min_value=1, max_value=5)),
                    "01-01 00:00",
                    product_id=draw(st.sampled_from([1, 2])),
                    order_id=draw(st.sampled_from([*order_ids, None])),
                    text=draw(st.sampled_from(TEXTS)),
                ),
                "created_at": when(draw(offsets)),
            }
            for i in range(draw(st.integers(min_value=0, max_value=6)))
        ]
        payments = [
            {
                **_payment(first_id + i, draw(customers), "chargeback", "01-01 00:00"),
                "status": draw(st.sampled_from(["chargeback", "defaulted", "refused", "ok"])),
                "at": when(draw(offsets)),
            }
            for i in range(draw(st.integers(min_value=0, max_value=4)))
        ]
        return {"orders": orders, "returns": returns, "reviews": reviews, "payments": payments}

    before = rows(minutes, 1)
    after = rows(later, 1000)
    people = [{**_customer(c), "registered_at": when(draw(minutes))} for c in range(1, 5)]
    newcomers = [{**_customer(c), "registered_at": when(draw(later))} for c in (5, 6)]
    hashes = st.sampled_from(["X", "Y"])
    kinds = st.sampled_from(["phone", "address"])
    identities = [_identity(c, draw(kinds), draw(hashes)) for c in range(1, 5)]
    new_identities = [_identity(c, draw(kinds), draw(hashes)) for c in (5, 6)]
    old = _sources(customers=people, identities=identities, **before)
    new = _sources(
        customers=people + newcomers,
        identities=identities + new_identities,
        **{name: before[name] + after[name] for name in before},
    )
    return old, new


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories())
def test_rows_dated_at_or_after_the_cutoff_never_change_a_hit(
    histories: tuple[Sources, Sources],
) -> None:
    # given
    old, new = histories
    # when / then
    assert detect(new, AS_OF, LOW_RULES) == detect(old, AS_OF, LOW_RULES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories(), st.randoms(use_true_random=False))
def test_hits_do_not_depend_on_row_order(histories: tuple[Sources, Sources], rng: Any) -> None:
    # given
    sources = histories[1]

    def shuffled(table: pa.Table) -> pa.Table:
        order = list(range(table.num_rows))
        rng.shuffle(order)
        return table.take(pa.array(order, pa.int64()))

    mixed = Sources(
        **{
            name: shuffled(sources.table(name))
            for name in ("customers", "orders", "payments", "returns", "reviews", "tickets")
        },
        extra={"identities": shuffled(sources.extra["identities"])},
    )
    # when / then
    assert detect(mixed, AS_OF, LOW_RULES) == detect(sources, AS_OF, LOW_RULES)


# --- the identities loader -------------------------------------------------------------------
@pytest.mark.django_db
def test_load_identities_reads_phone_email_and_address_hashes() -> None:
    # given
    from patron.conftest import make_customer
    from patron.customer.models import Address
    from patron.privacy import crypto
    from patron.risk.identities import load_identities

    first = make_customer(phone="13800138000", email="wang@example.com")
    second = make_customer(phone="13800138000")
    make_customer()  # nothing on file
    Address.objects.create(customer=second, detail="人民路1号", detail_hash="addr-1")
    Address.objects.create(customer=first, detail="", detail_hash="")
    # when
    table = load_identities()
    # then
    phone = crypto.lookup_hash("13800138000", kind="phone")
    email = crypto.lookup_hash("wang@example.com", kind="email")
    assert table.schema == IDENTITY_SCHEMA
    assert sorted(table.to_pylist(), key=lambda r: (r["kind"], r["customer_id"])) == [
        {"customer_id": second.pk, "kind": "address", "value_hash": "addr-1"},
        {"customer_id": first.pk, "kind": "email", "value_hash": email},
        {"customer_id": first.pk, "kind": "phone", "value_hash": phone},
        {"customer_id": second.pk, "kind": "phone", "value_hash": phone},
    ]
