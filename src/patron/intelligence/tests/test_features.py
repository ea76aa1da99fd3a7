"""Customer features as of a cut-off: exact values on hand-built sources, no leakage, events
present or absent, and properties that hold whatever the input order."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence.features import (
    EVENT_FEATURES,
    FEATURES,
    FeatureInfo,
    customer_features,
    output_schema,
)
from patron.intelligence.sources import SCHEMAS, Sources
from patron.intelligence.text import sentiment

CUTOFF = datetime(2024, 7, 1, tzinfo=UTC)
EVENTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("customer_external_id", pa.string()),
        ("event_type", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _at(text: str) -> datetime:
    """A UTC instant from ``YYYY-MM-DD HH:MM``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86_400


def _customer(customer_id: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "source": "shop",
        "external_id": f"C{customer_id}",
        "kind": "individual",
        "registered_at": None,
        "province": "上海",
        "registration_channel": "",
        "company_size": "",
    }
    row.update(values)
    return row


CUSTOMERS = [
    _customer(1, registered_at=_at("2023-12-01 00:00"), registration_channel="WeChat mini program"),
    _customer(
        2,
        kind="business",
        registered_at=_at("2024-03-01 00:00"),
        registration_channel="jd",
        company_size="medium",
    ),
    _customer(3),
]


def _with_times(row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    for name, value in values.items():
        row[name] = _at(value) if isinstance(value, str) and name.endswith("_at") else value
    return row


def _order(order_id: int, customer_id: int, placed: str, total: float, **values: Any) -> dict:
    """A completed order paid when placed, unless ``values`` say otherwise."""
    row: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": "completed",
        "placed_at": _at(placed),
        "paid_at": _at(placed),
        "total_amount": total,
        "discount_amount": 0.0,
        "coupon_code": "",
        "currency": "CNY",
    }
    return _with_times(row, values)


def _payment(payment_id: int, customer_id: int, at: str, method: str, status: str) -> dict:
    return {
        "payment_id": payment_id,
        "order_id": payment_id,
        "customer_id": customer_id,
        "method": method,
        "status": status,
        "amount": 10.0,
        "at": _at(at),
    }


def _return(return_id: int, order_id: int, requested: str, delivered: str, **values: Any) -> dict:
    row: dict[str, Any] = {
        "return_id": return_id,
        "order_id": order_id,
        "customer_id": 1,
        "kind": "return",
        "status": "refunded",
        "reason": "不想要了",
        "requested_at": _at(requested),
        "refund_amount": 0.0,
        "delivered_at": _at(delivered),
    }
    return _with_times(row, values)


def _review(review_id: int, customer_id: int, product_id: int | None, rating: int, **values: Any):
    row: dict[str, Any] = {
        "review_id": review_id,
        "customer_id": customer_id,
        "order_id": None,
        "product_id": product_id,
        "rating": rating,
        "text": "",
        "created_at": _at("2024-05-01 00:00"),
        "helpful_votes": 0,
    }
    return _with_times(row, values)


def _ticket(ticket_id: int, customer_id: int, opened: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ticket_id": ticket_id,
        "customer_id": customer_id,
        "channel": "chat",
        "category": "物流查询",
        "is_complaint": False,
        "opened_at": _at(opened),
        "first_response_at": None,
        "resolved_at": None,
        "satisfaction": None,
    }
    return _with_times(row, values)


def _event(external_id: str, event_type: str, occurred: str, source: str = "shop") -> dict:
    return {
        "source": source,
        "customer_external_id": external_id,
        "event_type": event_type,
        "occurred_at": _at(occurred),
    }


def _table(name: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SCHEMAS[name])


def _sources(
    *,
    customers: Sequence[dict[str, Any]] = CUSTOMERS,
    orders: Sequence[dict[str, Any]] = (),
    payments: Sequence[dict[str, Any]] = (),
    returns: Sequence[dict[str, Any]] = (),
    reviews: Sequence[dict[str, Any]] = (),
    tickets: Sequence[dict[str, Any]] = (),
    events: Sequence[dict[str, Any]] | None = None,
) -> Sources:
    return Sources(
        customers=_table("customers", customers),
        orders=_table("orders", orders),
        payments=_table("payments", payments),
        returns=_table("returns", returns),
        reviews=_table("reviews", reviews),
        tickets=_table("tickets", tickets),
        events=None if events is None else pa.Table.from_pylist(list(events), EVENTS_SCHEMA),
    )


def _by_customer(table: pa.Table) -> dict[int, dict[str, Any]]:
    return {row["customer_id"]: row for row in table.to_pylist()}


def _features(sources: Sources, cutoff: datetime = CUTOFF) -> dict[int, dict[str, Any]]:
    return _by_customer(customer_features(sources, cutoff))


def _pick(row: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: row[name] for name in names}


# --- purchases, cancellations, promotions -------------------------------------------------------


def test_purchases_count_what_was_bought_before_the_cutoff() -> None:
    # given: two purchases on 10 June, one in January; a cancelled, an unpaid and a later order
    orders = [
        _order(
            1,
            1,
            "2024-01-10 10:00",
            100.0,
            shipped_at="2024-01-11 09:00",
            delivered_at="2024-01-12 15:00",
            discount_amount=20.0,
            coupon_code="SPRING",
        ),
        _order(
            2,
            1,
            "2024-06-10 08:00",
            300.0,
            shipped_at="2024-06-11 08:00",
            delivered_at="2024-06-12 10:00",
        ),
        _order(3, 1, "2024-06-10 20:00", 50.0, status="shipped", shipped_at="2024-06-11 08:00"),
        _order(
            4,
            1,
            "2024-05-01 09:00",
            80.0,
            status="cancelled",
            paid_at=None,
            cancelled_at="2024-05-01 09:30",
        ),
        _order(5, 1, "2024-06-20 12:00", 40.0, status="created", paid_at=None),
        _order(6, 1, "2024-07-02 12:00", 999.0),
    ]
    # when
    row = _features(_sources(orders=orders))[1]
    # then
    first, last = _at("2024-01-10 10:00"), _at("2024-06-10 20:00")
    expected = {
        "orders": 3,
        "purchase_days": 2,
        "spend": 450.0,
        "aov": 150.0,
        "recency_days": _days(CUTOFF - last),
        "tenure_days": 213.0,
        "orders_30d": 2,
        "orders_90d": 2,
        "orders_180d": 3,
        "orders_365d": 3,
        "spend_90d": 350.0,
        "spend_365d": 450.0,
    }
    assert _pick(row, expected) == expected
    assert row["recency_days"] == pytest.approx(20 + 4 / 24, rel=1e-12)
    assert row["days_between_orders"] == pytest.approx(_days(last - first) / 2, rel=1e-12)
    assert (row["orders_placed"], row["cancel_rate"], row["cancels_after_shipment"]) == (5, 0.2, 0)
    assert row["delivered_orders"] == 2
    assert (row["coupon_share"], row["discount_share"]) == (1 / 3, 20 / 470)
    assert (row["return_rate"], row["refund_share"], row["tickets_per_order"]) == (0.0, 0.0, 0.0)


def test_an_orders_state_at_the_cutoff_comes_from_its_timestamps_not_todays_status() -> None:
    # given
    orders = [
        # paid before, cancelled only after the cut-off: a live purchase at the cut-off
        _order(
            1, 1, "2024-06-15 10:00", 100.0, status="cancelled", cancelled_at="2024-07-05 00:00"
        ),
        # shipped, then cancelled (a refused parcel), all before
        _order(
            2,
            1,
            "2024-06-16 10:00",
            100.0,
            status="cancelled",
            shipped_at="2024-06-17 10:00",
            cancelled_at="2024-06-18 10:00",
        ),
        # completed today, but paid only after the cut-off: not yet bought
        _order(3, 1, "2024-06-20 10:00", 100.0, paid_at="2024-07-03 00:00"),
        # paid before, delivered after: bought, not yet delivered
        _order(4, 1, "2024-06-25 10:00", 100.0, delivered_at="2024-07-02 00:00"),
        # cancelled without a cancellation time
        _order(5, 1, "2024-06-01 10:00", 100.0, status="cancelled", paid_at=None),
        # a source that only knows the status (no payment, shipping or delivery times)
        _order(6, 1, "2024-03-01 10:00", 100.0, paid_at=None),
    ]
    # when
    row = _features(_sources(orders=orders))[1]
    # then
    assert (row["orders"], row["spend"], row["orders_placed"]) == (3, 300.0, 6)
    assert (row["cancel_rate"], row["cancels_after_shipment"]) == (2 / 6, 1)
    assert (row["delivered_orders"], row["return_rate"]) == (0, None)


# --- returns, payments, reviews, tickets ------------------------------------------------------


def test_returns_are_rated_over_delivered_orders() -> None:
    # given: four orders delivered two days after they were placed
    orders = [
        _order(n, 1, f"2024-03-0{n} 12:00", 100.0, delivered_at=f"2024-03-0{n + 2} 12:00")
        for n in (1, 2, 3, 4)
    ]
    returns = [
        _return(1, 1, "2024-03-04 12:00", "2024-03-03 12:00", refund_amount=100.0),  # after 24 h
        _return(2, 2, "2024-03-09 12:00", "2024-03-04 12:00", refund_amount=50.0),
        _return(3, 2, "2024-03-10 12:00", "2024-03-04 12:00"),  # a second line of order 2
        _return(4, 3, "2024-03-08 12:00", "2024-03-05 12:00", kind="exchange"),
        _return(5, 4, "2024-07-10 12:00", "2024-03-06 12:00", refund_amount=100.0),  # later
    ]
    # when
    row = _features(_sources(orders=orders, returns=returns))[1]
    # then
    expected = {
        "delivered_orders": 4,
        "returns": 3,
        "return_rate": 0.5,
        "exchange_rate": 0.25,
        "returns_180d": 3,
        "quick_return_rate": 0.25,
        "refund_share": 150 / 400,
    }
    assert _pick(row, expected) == expected


def test_payment_trouble_and_habits_before_the_cutoff() -> None:
    # given
    payments = [
        _payment(1, 1, "2024-03-01 10:00", "alipay", "succeeded"),
        _payment(2, 1, "2024-03-02 10:00", "card", "failed"),
        _payment(3, 1, "2024-03-03 10:00", "card", "chargeback"),
        _payment(4, 1, "2024-03-04 10:00", "pay_later", "defaulted"),
        _payment(5, 1, "2024-03-05 10:00", "cod", "refused"),
        _payment(6, 1, "2024-03-06 10:00", "pay_later", "succeeded"),
        _payment(7, 1, "2024-07-05 10:00", "cod", "failed"),
    ]
    # when
    row = _features(_sources(payments=payments))[1]
    # then
    expected = {
        "failed_payments": 1,
        "chargebacks": 1,
        "pay_later_defaults": 1,
        "cod_refusals": 1,
        "pay_later_share": 2 / 6,
        "cod_share": 1 / 6,
    }
    assert _pick(row, expected) == expected


def test_reviews_ratings_sentiment_and_deviation_from_the_products_mean() -> None:
    # given: product 7 rated 5 and 1 (mean 3); product 8 only by customer 2
    happy, angry, meh = "非常满意，推荐购买！", "差评！质量太差，大家别买。", "有点失望"
    reviews = [
        _review(1, 1, 7, 5, text=happy, helpful_votes=3),
        _review(2, 1, None, 4),  # a product page no longer known, no text
        _review(3, 2, 7, 1, text=angry, helpful_votes=1),
        _review(4, 2, 8, 2, text=meh),
    ]
    # when
    rows = _features(_sources(reviews=reviews))
    # then
    scores = sentiment([happy, angry, meh])
    assert scores[0] > 0 > scores[1]
    expected_1 = {
        "reviews": 2,
        "mean_rating": 4.5,
        "low_rating_share": 0.0,
        "mean_sentiment": scores[0] / 2,
        "mean_review_length": len(happy) / 2,
        "helpful_votes": 3,
        "rating_deviation": 2.0,
    }
    expected_2 = {
        "reviews": 2,
        "mean_rating": 1.5,
        "low_rating_share": 1.0,
        "mean_sentiment": (scores[1] + scores[2]) / 2,
        "mean_review_length": (len(angry) + len(meh)) / 2,
        "helpful_votes": 1,
        "rating_deviation": 1.0,
    }
    assert (_pick(rows[1], expected_1), _pick(rows[2], expected_2)) == (expected_1, expected_2)


def test_a_sentiment_column_given_with_the_reviews_is_used_as_it_is() -> None:
    # given
    sources = _sources(reviews=[_review(1, 1, 7, 5, text="非常满意")])
    sources.reviews = sources.reviews.append_column("sentiment", pa.array([-0.25]))
    # when
    row = _features(sources)[1]
    # then
    assert row["mean_sentiment"] == -0.25


def test_tickets_and_satisfaction_once_resolved() -> None:
    # given
    tickets = [
        _ticket(
            1,
            1,
            "2024-06-10 10:00",
            is_complaint=True,
            resolved_at="2024-06-11 10:00",
            satisfaction=2,
        ),
        _ticket(2, 1, "2024-03-01 10:00", resolved_at="2024-03-02 10:00", satisfaction=5),
        _ticket(3, 1, "2024-06-28 10:00", resolved_at="2024-07-02 10:00", satisfaction=1),
        _ticket(4, 1, "2024-07-03 10:00", is_complaint=True),
    ]
    orders = [_order(1, 1, "2024-02-01 10:00", 10.0), _order(2, 1, "2024-05-01 10:00", 10.0)]
    # when
    row = _features(_sources(orders=orders, tickets=tickets))[1]
    # then
    expected = {
        "tickets": 3,
        "complaints": 1,
        "tickets_per_order": 1.5,
        "mean_csat": 3.5,
        "tickets_90d": 2,
    }
    assert _pick(row, expected) == expected


def test_attributes_are_numbers() -> None:
    # given
    customers = [
        *CUSTOMERS,
        _customer(4, registration_channel="天猫", kind="business", company_size="micro"),
        _customer(5, registration_channel="fax"),
    ]
    # when
    rows = _features(_sources(customers=customers))
    # then
    assert [
        (rows[n]["is_business"], rows[n]["company_size"], rows[n]["registration_channel"])
        for n in (1, 2, 3, 4, 5)
    ] == [(0, 0, 2), (1, 3, 4), (0, 0, 0), (1, 1, 3), (0, 0, 0)]
    assert FEATURES["registration_channel"].format(2) == "wechat_mini_program"
    assert FEATURES["company_size"].format(3) == "medium"


def test_a_customer_without_activity_gets_zero_counts_and_no_rates() -> None:
    # given: customer 3 has done nothing; the others have
    sources = _sources(
        orders=[_order(1, 1, "2024-06-01 10:00", 10.0)],
        tickets=[_ticket(1, 2, "2024-06-01 10:00")],
        events=[_event("C1", "browse", "2024-06-30 10:00")],
    )
    # when
    row = _features(sources)[3]
    # then
    nulls = {
        "aov",
        "recency_days",
        "tenure_days",
        "days_between_orders",
        "cancel_rate",
        "return_rate",
        "exchange_rate",
        "quick_return_rate",
        "refund_share",
        "pay_later_share",
        "cod_share",
        "mean_rating",
        "low_rating_share",
        "mean_sentiment",
        "mean_review_length",
        "rating_deviation",
        "days_since_last_event",
        "cart_to_order_90d",
        "tickets_per_order",
        "mean_csat",
        "coupon_share",
        "discount_share",
    }
    assert {name for name, value in row.items() if value is None} == nulls
    assert all(row[name] == 0 for name in FEATURES if name not in nulls)


# --- behaviour events -----------------------------------------------------------------------


EVENTS = [
    _event("C1", "browse", "2024-06-25 10:00"),
    _event("C1", "browse", "2024-06-28 10:00"),
    _event("C1", "search", "2024-06-29 09:00"),
    _event("C1", "favourite", "2024-06-20 10:00"),
    _event("C1", "add_to_cart", "2024-06-29 10:00"),
    _event("C1", "add_to_cart", "2024-06-29 11:00"),
    _event("C1", "purchase", "2024-06-29 12:00"),
    _event("C1", "add_to_cart", "2024-05-15 10:00"),  # within 90 days, not 30
    _event("C1", "browse", "2024-03-01 10:00"),  # older than 90 days
    _event("C1", "browse", "2024-07-02 10:00"),  # after the cut-off
    _event("C1", "browse", "2024-06-30 10:00", source="other"),  # someone else's C1
]
EXPECTED_EVENT_FEATURES = {
    1: {
        "views_30d": 2,
        "searches_30d": 1,
        "favourites_30d": 1,
        "carts_30d": 2,
        "events_90d": 8,
        "days_since_last_event": 1.5,
        "cart_to_order_90d": 1 / 3,
    },
    2: {
        "views_30d": 0,
        "searches_30d": 0,
        "favourites_30d": 0,
        "carts_30d": 0,
        "events_90d": 0,
        "days_since_last_event": None,
        "cart_to_order_90d": None,
    },
}


def test_events_count_per_customer_matched_on_source_and_external_id() -> None:
    # when
    rows = _features(_sources(events=EVENTS))
    # then
    for customer_id, expected in EXPECTED_EVENT_FEATURES.items():
        assert _pick(rows[customer_id], EVENT_FEATURES) == expected


def test_events_are_read_from_the_lakes_parquet_files(tmp_path: Path) -> None:
    # given: the lake layout, events/date=YYYY-MM-DD/*.parquet
    table = pa.Table.from_pylist(EVENTS, EVENTS_SCHEMA)
    for day in sorted({row["occurred_at"].strftime("%Y-%m-%d") for row in EVENTS}):
        folder = tmp_path / "events" / f"date={day}"
        folder.mkdir(parents=True)
        rows = [row for row in EVENTS if row["occurred_at"].strftime("%Y-%m-%d") == day]
        pq.write_table(pa.Table.from_pylist(rows, EVENTS_SCHEMA), folder / "batch-1.parquet")
    in_memory = _sources(events=EVENTS)
    on_disk = _sources()
    on_disk.events = str(tmp_path / "events" / "date=*" / "*.parquet")
    # when
    from_files = customer_features(on_disk, CUTOFF)
    # then
    assert table.num_rows == len(EVENTS)
    assert from_files.equals(customer_features(in_memory, CUTOFF))


def test_without_events_the_event_features_are_unknown_for_everyone() -> None:
    # when
    rows = _features(_sources(orders=[_order(1, 1, "2024-06-01 10:00", 10.0)]))
    # then
    assert {rows[n][name] for n in (1, 2, 3) for name in EVENT_FEATURES} == {None}


# --- the cut-off --------------------------------------------------------------------------------


def _history() -> dict[str, list[dict[str, Any]]]:
    """A bit of everything, all before the cut-off."""
    return {
        "orders": [
            _order(1, 1, "2024-01-10 10:00", 100.0, delivered_at="2024-01-12 10:00"),
            _order(2, 1, "2024-06-10 10:00", 300.0, coupon_code="X", discount_amount=5.0),
            _order(3, 2, "2024-06-20 10:00", 70.0, delivered_at="2024-06-22 10:00"),
        ],
        "payments": [_payment(1, 1, "2024-01-10 10:00", "pay_later", "succeeded")],
        "returns": [_return(1, 1, "2024-01-13 10:00", "2024-01-12 10:00", refund_amount=40.0)],
        "reviews": [
            _review(1, 1, 7, 5, text="很喜欢"),
            _review(2, 2, 7, 3, text="一般"),
        ],
        "tickets": [
            _ticket(1, 2, "2024-06-21 10:00", resolved_at="2024-06-22 10:00", satisfaction=4)
        ],
        "events": [_event("C1", "browse", "2024-06-30 10:00")],
    }


def test_nothing_from_after_the_cutoff_leaks_in() -> None:
    # given: the same history, and then everything that happened afterwards
    before = _history()
    after = _history()
    after["orders"] += [
        _order(4, 1, "2024-07-01 00:00", 500.0),  # exactly at the cut-off: after
        _order(5, 3, "2024-08-01 10:00", 500.0, delivered_at="2024-08-03 10:00"),
    ]
    after["orders"][1].update(status="cancelled", cancelled_at=_at("2024-07-02 10:00"))
    after["orders"][1].update(delivered_at=_at("2024-07-01 10:00"))
    after["payments"] += [_payment(2, 1, "2024-07-03 10:00", "card", "chargeback")]
    after["returns"] += [
        _return(2, 3, "2024-07-02 10:00", "2024-06-22 10:00", customer_id=2, refund_amount=70.0)
    ]
    after["reviews"] += [_review(3, 3, 7, 1, text="差评", created_at="2024-07-01 00:00")]
    after["tickets"] += [
        _ticket(2, 1, "2024-07-04 10:00", is_complaint=True),
        _ticket(3, 1, "2024-06-30 10:00", resolved_at="2024-07-01 10:00", satisfaction=1),
    ]
    after["events"] += [_event("C3", "add_to_cart", "2024-07-01 00:00")]
    expected = customer_features(_sources(**before), CUTOFF)
    # when
    result = customer_features(_sources(**after), CUTOFF)
    # then: only the ticket opened before the cut-off counts, without its later rating
    changed = [
        name
        for name in result.column_names
        if result.column(name).to_pylist() != expected.column(name).to_pylist()
    ]
    assert changed == ["tickets", "tickets_per_order", "tickets_90d"]
    assert result.column("mean_csat").to_pylist() == [None, 4.0, None]


def test_a_naive_cutoff_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        customer_features(_sources(), datetime(2024, 7, 1))


# --- the table and the registry -----------------------------------------------------------------


def test_one_row_per_customer_sorted_with_the_declared_schema() -> None:
    # given: customers listed backwards
    sources = _sources(customers=list(reversed(CUSTOMERS)))
    # when
    table = customer_features(sources, CUTOFF)
    # then
    assert table.schema == output_schema()
    assert table.column_names == ["customer_id", *FEATURES]
    assert table.column("customer_id").to_pylist() == [1, 2, 3]


def test_every_feature_is_described_in_both_languages() -> None:
    for name, info in FEATURES.items():
        assert info.name == name
        assert info.label_en and info.label_zh and info.description.endswith(".")
        assert info.unit in {"count", "days", "money", "rate", "score", "flag", "ordinal"}


@pytest.mark.parametrize(
    ("unit", "value", "english", "chinese"),
    [
        ("rate", 0.38, "38 %", "38 %"),
        ("rate", 0.004, "0.4 %", "0.4 %"),
        ("rate", 0.0, "0 %", "0 %"),
        ("days", 12.4, "12 days", "12 天"),
        ("days", 0.6, "1 day", "1 天"),
        ("money", 1234.5, "1,234.50", "1,234.50"),
        ("count", 1234, "1,234", "1,234"),
        ("count", 23.5, "23.5", "23.5"),
        ("score", 4.25, "4.25", "4.25"),
        ("flag", 1, "yes", "是"),
        ("rate", None, "—", "—"),
        ("days", math.nan, "—", "—"),
    ],
)
def test_values_are_formatted_for_staff(
    unit: Any, value: float | None, english: str, chinese: str
) -> None:
    info = FeatureInfo("x", "x", "x", unit, "x.")
    assert (info.format(value), info.format(value, language="zh-hans")) == (english, chinese)


# --- properties ---------------------------------------------------------------------------------

_OFFSETS_HOURS = (-24 * 400, -24 * 200, -24 * 100, -24 * 40, -24 * 10, -30, -1, 0, 1, 24 * 5)
_times = st.sampled_from(_OFFSETS_HOURS).map(lambda hours: CUTOFF + timedelta(hours=hours))
_maybe_times = st.none() | _times
_customer_ids = st.sampled_from([1, 2, 3])
_money = st.integers(0, 500).map(float)  # whole amounts: sums are exact in any order


@st.composite
def _random_sources(draw: st.DrawFn) -> tuple[Sources, int]:
    orders = [
        {
            "order_id": n,
            "customer_id": draw(_customer_ids),
            "status": draw(
                st.sampled_from(
                    [
                        "created",
                        "paid",
                        "shipped",
                        "delivered",
                        "completed",
                        "cancelled",
                        "returned",
                    ]
                )
            ),
            "placed_at": draw(_times),
            "paid_at": draw(_maybe_times),
            "shipped_at": draw(_maybe_times),
            "delivered_at": draw(_maybe_times),
            "cancelled_at": draw(_maybe_times),
            "total_amount": draw(_money),
            "discount_amount": draw(_money),
            "coupon_code": draw(st.sampled_from([None, "", "X"])),
            "currency": "CNY",
        }
        for n in range(draw(st.integers(0, 8)))
    ]
    payments = [
        {
            "payment_id": n,
            "order_id": n,
            "customer_id": draw(_customer_ids),
            "method": draw(st.sampled_from(["alipay", "cod", "pay_later"])),
            "status": draw(st.sampled_from(["succeeded", "failed", "chargeback", "refused"])),
            "amount": draw(_money),
            "at": draw(_times),
        }
        for n in range(draw(st.integers(0, 5)))
    ]
    returns = [
        {
            "return_id": n,
            "order_id": draw(st.integers(0, 8)),
            "customer_id": draw(_customer_ids),
            "kind": draw(st.sampled_from(["return", "exchange", "repair"])),
            "status": "requested",
            "reason": "",
            "requested_at": draw(_times),
            "refund_amount": draw(_money),
            "delivered_at": draw(_maybe_times),
        }
        for n in range(draw(st.integers(0, 4)))
    ]
    reviews = [
        {
            "review_id": n,
            "customer_id": draw(_customer_ids),
            "order_id": None,
            "product_id": draw(st.sampled_from([None, 1, 2])),
            "rating": draw(st.integers(1, 5)),
            "text": draw(st.sampled_from([None, "", "好评", "差评", "一般般，还行吧"])),
            "created_at": draw(_times),
            "helpful_votes": draw(st.integers(0, 3)),
        }
        for n in range(draw(st.integers(0, 5)))
    ]
    tickets = [
        {
            "ticket_id": n,
            "customer_id": draw(_customer_ids),
            "channel": "chat",
            "category": "",
            "is_complaint": draw(st.booleans()),
            "opened_at": draw(_times),
            "first_response_at": None,
            "resolved_at": draw(_maybe_times),
            "satisfaction": draw(st.none() | st.integers(1, 5)),
        }
        for n in range(draw(st.integers(0, 4)))
    ]
    events = [
        _event(
            draw(st.sampled_from(["C1", "C2", "C9"])),
            draw(st.sampled_from(["browse", "search", "favourite", "add_to_cart", "purchase"])),
            draw(_times).strftime("%Y-%m-%d %H:%M"),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]
    customers = [
        _customer(
            n,
            registered_at=draw(_maybe_times),
            kind=draw(st.sampled_from(["individual", "business"])),
        )
        for n in (1, 2, 3)
    ]
    sources = _sources(
        customers=customers,
        orders=orders,
        payments=payments,
        returns=returns,
        reviews=reviews,
        tickets=tickets,
        events=events,
    )
    return sources, draw(st.integers(0, 2**32))


def _shuffled(table: pa.Table, rng: random.Random) -> pa.Table:
    order = list(range(table.num_rows))
    rng.shuffle(order)
    return table.take(pa.array(order, pa.int64()))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


_NON_NEGATIVE = [
    name for name, info in FEATURES.items() if info.unit in ("count", "days", "money", "rate")
]
_SHARES = [
    "cancel_rate",
    "coupon_share",
    "discount_share",
    "pay_later_share",
    "cod_share",
    "low_rating_share",
]


@settings(max_examples=15, deadline=None)
@given(_random_sources())
def test_features_do_not_depend_on_row_order_and_stay_in_range(
    drawn: tuple[Sources, int],
) -> None:
    # given
    sources, seed = drawn
    rng = random.Random(seed)
    assert isinstance(sources.events, pa.Table)
    shuffled = Sources(
        customers=_shuffled(sources.customers, rng),
        orders=_shuffled(sources.orders, rng),
        payments=_shuffled(sources.payments, rng),
        returns=_shuffled(sources.returns, rng),
        reviews=_shuffled(sources.reviews, rng),
        tickets=_shuffled(sources.tickets, rng),
        events=_shuffled(sources.events, rng),
    )
    # when
    result = customer_features(sources, CUTOFF)
    again = customer_features(shuffled, CUTOFF)
    # then
    for name in result.column_names:
        pairs = zip(result.column(name).to_pylist(), again.column(name).to_pylist(), strict=True)
        assert all(_same(a, b) for a, b in pairs), name
    for name in _NON_NEGATIVE:
        assert all(v >= 0 for v in result.column(name).to_pylist() if v is not None), name
    for name in _SHARES:
        assert all(0 <= v <= 1 for v in result.column(name).to_pylist() if v is not None), name
    scores = result.column("mean_sentiment").to_pylist()
    assert all(-1 <= v <= 1 for v in scores if v is not None)
