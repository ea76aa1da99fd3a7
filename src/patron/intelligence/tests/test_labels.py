"""Outcome labels from tiny hand-built source tables (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from patron.intelligence.labels import (
    BAD_COUNT_COLUMNS,
    bad_outcomes,
    bought_before,
    churned,
)
from patron.intelligence.sources import SCHEMAS, Sources

T0 = datetime(2026, 1, 1, tzinfo=UTC)
START, END = T0 + timedelta(days=10), T0 + timedelta(days=20)


def at(days: float, hours: float = 0.0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


def make_sources(customer_ids: list[int], **rows: list[dict[str, Any]]) -> Sources:
    tables = {
        name: table(name, rows.get(name, []))
        for name in ("orders", "payments", "returns", "reviews", "tickets")
    }
    customers = table("customers", [{"customer_id": c, "kind": "individual"} for c in customer_ids])
    return Sources(customers=customers, **tables)


def payment(pid: int, customer: int, status: str, when: datetime) -> dict[str, Any]:
    return {
        "payment_id": pid,
        "order_id": pid,
        "customer_id": customer,
        "status": status,
        "at": when,
    }


def a_return(
    rid: int,
    customer: int,
    order: int,
    *,
    requested: datetime,
    delivered: datetime | None,
    reason: str,
    kind: str = "return",
    status: str = "refunded",
) -> dict[str, Any]:
    return {
        "return_id": rid,
        "order_id": order,
        "customer_id": customer,
        "kind": kind,
        "status": status,
        "reason": reason,
        "requested_at": requested,
        "delivered_at": delivered,
    }


def delivered_order(oid: int, customer: int, when: datetime) -> dict[str, Any]:
    return {
        "order_id": oid,
        "customer_id": customer,
        "status": "delivered",
        "placed_at": when - timedelta(days=3),
        "delivered_at": when,
    }


def bad_sources() -> Sources:
    payments = [
        # 1: a chargeback inside, one before and one after the window
        payment(1, 1, "chargeback", at(12)),
        payment(2, 1, "chargeback", at(5)),
        payment(3, 1, "chargeback", at(25)),
        # 2: a default just before the end; one exactly at the end (excluded)
        payment(4, 2, "defaulted", at(19, 23.99)),
        payment(5, 2, "defaulted", at(20)),
        # 3: a refusal exactly at the start (included); a plain failure is no bad outcome
        payment(6, 3, "refused", at(10)),
        payment(7, 3, "failed", at(11)),
        # 8: only successful payments
        payment(8, 8, "succeeded", at(12)),
    ]
    returns = [
        # 4 (eight orders delivered, four returned): within 24 h, "tried it on" → abusive; a quality complaint
        # or a change of mind as quick are not; a "worn once" after 49 h is not quick
        a_return(1, 4, 40, requested=at(12), delivered=at(11), reason="试穿了一下不合适"),
        a_return(2, 4, 41, requested=at(12), delivered=at(11, 20), reason="商品质量问题"),
        a_return(3, 4, 42, requested=at(14, 1), delivered=at(12), reason="穿过一次，退了"),
        a_return(17, 4, 43, requested=at(12), delivered=at(11, 20), reason="不想要了"),
        # 5: three of four delivered orders returned (two lines of one order count once)
        a_return(4, 5, 50, requested=at(16), delivered=at(11), reason="尺码不合适"),
        a_return(5, 5, 51, requested=at(16), delivered=at(11), reason="尺码不合适"),
        a_return(6, 5, 51, requested=at(16), delivered=at(11), reason="颜色与图片有色差"),
        a_return(7, 5, 52, requested=at(16), delivered=at(11), reason="尺码不合适"),
        # 6: three of six delivered orders returned: not more than half
        a_return(8, 6, 60, requested=at(16), delivered=at(11), reason="尺码不合适"),
        a_return(9, 6, 61, requested=at(16), delivered=at(11), reason="尺码不合适"),
        a_return(10, 6, 62, requested=at(16), delivered=at(11), reason="尺码不合适"),
        # 9: a withdrawn abusive return, and an abusive-sounding exchange: neither counts
        a_return(
            11, 9, 90, requested=at(12), delivered=at(11), reason="用过了", status="cancelled"
        ),
        a_return(12, 9, 91, requested=at(12), delivered=at(11), reason="用过了", kind="exchange"),
        # 11: three returns in the window of orders delivered before it, none delivered in it
        a_return(13, 11, 110, requested=at(10, 1), delivered=at(8), reason="尺码不合适"),
        a_return(14, 11, 111, requested=at(10, 1), delivered=at(8), reason="尺码不合适"),
        a_return(15, 11, 112, requested=at(10, 1), delivered=at(8), reason="尺码不合适"),
        # 12: an abusive quick return requested after the window
        a_return(16, 12, 120, requested=at(20, 1), delivered=at(20), reason="Worn once"),
        # 13: markers match whatever the case
        a_return(18, 13, 130, requested=at(12), delivered=at(11), reason="WORN ONCE to a party"),
    ]
    orders = [
        *(delivered_order(o, 4, at(11)) for o in range(40, 48)),
        *(delivered_order(o, 5, at(11)) for o in (50, 51, 52, 53)),
        *(delivered_order(o, 6, at(11)) for o in (60, 61, 62, 63, 64, 65)),
        *(delivered_order(o, 11, at(8)) for o in (110, 111, 112)),
    ]
    orders.append(delivered_order(131, 13, at(11)))
    sources = make_sources(list(range(1, 14)), payments=payments, returns=returns, orders=orders)
    sources.extra["fraud_flags"] = pa.table(
        {
            "customer_id": pa.array([7, 7, 10], type=pa.int64()),
            "flagged_at": pa.array([at(15), at(21), at(9)], type=pa.timestamp("us", tz="UTC")),
        }
    )
    return sources


def as_dict(result: pa.Table) -> dict[int, dict[str, Any]]:
    rows = result.to_pylist()
    return {row.pop("customer_id"): row for row in rows}


def test_bad_outcomes_count_each_kind_inside_the_window_only() -> None:
    # given
    sources = bad_sources()
    # when
    result = bad_outcomes(sources, START, END)
    # then
    assert result.column_names == ["customer_id", "bad", *BAD_COUNT_COLUMNS]
    assert result.schema.field("bad").type == pa.bool_()
    assert all(result.schema.field(c).type == pa.int64() for c in BAD_COUNT_COLUMNS)
    zero = dict.fromkeys(BAD_COUNT_COLUMNS, 0)
    assert as_dict(result) == {
        1: {"bad": True, **zero, "chargebacks": 1},
        2: {"bad": True, **zero, "pay_later_defaults": 1},
        3: {"bad": True, **zero, "cod_refusals": 1},
        4: {"bad": True, **zero, "abusive_quick_returns": 1},
        5: {"bad": True, **zero, "serial_return_orders": 3},
        6: {"bad": False, **zero},
        7: {"bad": True, **zero, "fraud_flags": 1},
        8: {"bad": False, **zero},
        9: {"bad": False, **zero},
        10: {"bad": False, **zero},
        11: {"bad": True, **zero, "serial_return_orders": 3},
        12: {"bad": False, **zero},
        13: {"bad": True, **zero, "abusive_quick_returns": 1},
    }


def test_bad_outcomes_ignore_everything_outside_the_window() -> None:
    # given: the same history, and a copy from which every row stamped at or after the end
    # of the window has been removed
    sources = bad_sources()
    truncated = bad_sources()
    truncated.payments = sources.payments.filter(pc.less(sources.payments["at"], END))
    truncated.returns = sources.returns.filter(pc.less(sources.returns["requested_at"], END))
    flags = sources.extra["fraud_flags"]
    truncated.extra["fraud_flags"] = flags.filter(pc.less(flags["flagged_at"], END))
    # when
    full, cut = bad_outcomes(sources, START, END), bad_outcomes(truncated, START, END)
    # then: nothing after the window changes a label
    assert full.equals(cut)
    assert truncated.payments.num_rows == sources.payments.num_rows - 2


def test_bad_outcomes_of_a_window_with_no_events_are_all_good() -> None:
    # given
    sources = bad_sources()
    # when
    result = bad_outcomes(sources, at(30), at(40))
    # then
    assert result.column("customer_id").to_pylist() == list(range(1, 14))
    assert not any(result.column("bad").to_pylist())


def test_bad_outcomes_without_fraud_flags_table_and_with_a_broken_one() -> None:
    # given
    sources = make_sources([1], payments=[payment(1, 1, "chargeback", at(12))])
    # when
    result = bad_outcomes(sources, START, END)
    # then
    assert as_dict(result)[1]["fraud_flags"] == 0
    sources.extra["fraud_flags"] = pa.table({"customer_id": pa.array([1], type=pa.int64())})
    with pytest.raises(ValueError, match="'fraud_flags' lacks column\\(s\\): flagged_at"):
        bad_outcomes(sources, START, END)


def test_bad_outcomes_include_customers_missing_from_the_customer_table() -> None:
    # given: a chargeback by customer 99, who is not in the customers table
    sources = make_sources([1], payments=[payment(1, 99, "chargeback", at(12))])
    # when
    result = as_dict(bad_outcomes(sources, START, END))
    # then
    assert sorted(result) == [1, 99]
    assert (result[1]["bad"], result[99]["bad"]) == (False, True)


def test_window_bounds_must_be_aware_and_ordered() -> None:
    sources = make_sources([1])
    with pytest.raises(ValueError, match="timezone-aware"):
        bad_outcomes(sources, datetime(2026, 1, 1), END)
    with pytest.raises(ValueError, match="precedes"):
        bad_outcomes(sources, END, START)


def order(
    oid: int,
    customer: int,
    placed: datetime,
    *,
    status: str = "completed",
    cancelled: datetime | None = None,
) -> dict[str, Any]:
    return {
        "order_id": oid,
        "customer_id": customer,
        "status": status,
        "placed_at": placed,
        "cancelled_at": cancelled,
    }


def churn_sources() -> Sources:
    orders = [
        order(1, 1, at(5)),
        order(2, 1, at(12)),  # 1 bought again: not churned
        order(3, 2, at(5)),  # 2 bought nothing in the window: churned
        order(4, 3, at(5)),
        order(5, 3, at(13), status="cancelled", cancelled=at(14)),  # 3: cancelled in time
        order(6, 4, at(5)),
        order(7, 4, at(15), status="cancelled", cancelled=at(25)),  # 4: cancelled after the end
        order(8, 5, at(12)),  # 5: a first purchase in the window, none before
        order(9, 6, at(5), status="cancelled", cancelled=at(6)),  # 6: never really bought
        order(10, 7, at(5)),
        order(11, 7, at(20)),  # 7: the next order exactly at the end
        order(12, 8, at(5)),
        order(13, 8, at(12), status="cancelled"),  # 8: cancelled, time unknown
        order(14, 10, at(5), status="cancelled", cancelled=at(11)),  # 10: bought before start
    ]
    return make_sources(list(range(1, 11)), orders=orders)


def test_churned_is_an_earlier_buyer_without_a_purchase_in_the_window() -> None:
    # given
    sources = churn_sources()
    customers = np.arange(1, 11)
    # when
    labels = churned(sources, START, END, customers)
    # then
    assert labels.dtype == np.bool_
    assert dict(zip(customers.tolist(), labels.tolist(), strict=True)) == {
        1: False,
        2: True,
        3: True,
        4: False,
        5: False,
        6: False,
        7: True,
        8: True,
        9: False,
        10: True,
    }


def test_bought_before_defines_the_churn_population() -> None:
    # given
    sources = churn_sources()
    # when
    before = bought_before(sources, START, pa.array(np.arange(1, 11)))
    # then: 5 first bought in the window, 6 cancelled before the start, 9 never ordered
    assert before.tolist() == [True, True, True, True, False, False, True, True, False, True]


def test_churned_ignores_orders_after_the_window() -> None:
    # given: customer 2 comes back after the window
    sources = churn_sources()
    later = table("orders", [order(99, 2, at(21)), order(98, 2, at(40))])
    sources.orders = pa.concat_tables([sources.orders, later])
    # when
    labels = churned(sources, START, END, np.array([2]))
    # then
    assert labels.tolist() == [True]
