"""The KPI registry: every metric recomputed independently, in plain Python loops over a small
hand-made shop, must match ``compute`` exactly; months computed one at a time equal the range
computed at once; cohorts, grade movement and drill-downs against hand counts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.insight.metrics import (
    GRADES_SCHEMA,
    METRICS,
    cohort_retention,
    compute,
    drill,
    grade_movement,
    has_data,
    merchant_offset,
    months,
)
from patron.intelligence.sources import SCHEMAS, Sources, conform, empty

Row = dict[str, Any]

JAN, FEB, MAR, APR, MAY = (date(2024, month, 1) for month in range(1, 6))
DEC = date(2023, 12, 1)
MONTHS = [DEC, JAN, FEB, MAR, APR, MAY]


def _at(text: str) -> datetime:
    """A UTC instant from ``YYYY-MM-DD HH:MM``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _customer(customer_id: int, registered: str | None) -> Row:
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


def _order(
    order_id: int,
    customer_id: int,
    placed: str,
    total: float,
    *,
    status: str = "completed",
    cancelled: str | None = None,
    delivered: str | None = None,
) -> Row:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": status,
        "placed_at": _at(placed),
        "paid_at": None if status == "cancelled" else _at(placed),
        "shipped_at": None,
        "delivered_at": _at(delivered) if delivered else None,
        "cancelled_at": _at(cancelled) if cancelled else None,
        "total_amount": total,
        "discount_amount": 0.0,
        "coupon_code": "",
        "currency": "CNY",
    }


def _return(return_id: int, order: Row, kind: str, requested: str) -> Row:
    return {
        "return_id": return_id,
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
        "kind": kind,
        "status": "requested",
        "reason": "尺码不合适",
        "requested_at": _at(requested),
        "refund_amount": 0.0,
        "delivered_at": order["delivered_at"],
    }


def _ticket(
    ticket_id: int,
    customer_id: int,
    opened: str,
    *,
    complaint: bool = False,
    responded: str | None = None,
    resolved: str | None = None,
    satisfaction: int | None = None,
) -> Row:
    return {
        "ticket_id": ticket_id,
        "customer_id": customer_id,
        "channel": "chat",
        "category": "物流查询",
        "is_complaint": complaint,
        "opened_at": _at(opened),
        "first_response_at": _at(responded) if responded else None,
        "resolved_at": _at(resolved) if resolved else None,
        "satisfaction": satisfaction,
    }


def _grade(customer_id: int, grade: str, valid_from: date, valid_to: date | None) -> Row:
    return {
        "customer_id": customer_id,
        "grade": grade,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }


CUSTOMERS = [
    _customer(1, "2023-11-05 08:00"),
    _customer(2, "2023-12-20 08:00"),
    _customer(3, "2024-01-10 08:00"),
    _customer(4, None),  # known from the first order, 2024-01-15
    _customer(5, "2024-02-03 08:00"),
    _customer(6, "2024-02-28 08:00"),
    _customer(7, None),  # first order (cancelled) 2024-03-05: known in March all the same
    _customer(8, "2024-03-15 08:00"),
    _customer(9, "2024-04-01 00:00"),  # on April's first instant
    _customer(10, "2024-01-31 23:59"),  # on January's last minute
    _customer(11, None),  # no order: never known
    _customer(12, "2024-04-20 08:00"),
]
ORDERS = {
    row["order_id"]: row
    for row in [
        _order(101, 1, "2023-12-10 10:00", 100.0, delivered="2023-12-13 10:00"),
        _order(102, 1, "2024-01-05 09:00", 120.5, delivered="2024-01-08 12:00"),
        _order(103, 1, "2024-03-02 12:00", 80.25, delivered="2024-03-04 12:00"),
        _order(104, 2, "2024-01-20 08:00", 200.0, delivered="2024-01-25 08:00"),
        # cancelled within its month: never a purchase
        _order(105, 2, "2024-01-25 08:00", 50.0, status="cancelled", cancelled="2024-01-25 09:00"),
        _order(106, 3, "2024-01-31 23:59", 60.0, delivered="2024-02-03 10:00"),
        # cancelled on the first instant after its month: a purchase of February
        _order(107, 3, "2024-02-10 10:00", 40.0, status="cancelled", cancelled="2024-03-01 00:00"),
        _order(108, 4, "2024-01-15 10:00", 30.0, delivered="2024-01-17 10:00"),
        _order(109, 4, "2024-02-14 10:00", 90.5, delivered="2024-02-16 10:00"),
        _order(110, 4, "2024-04-02 10:00", 70.0, status="paid"),
        # marked cancelled without a time
        _order(111, 5, "2024-02-05 10:00", 150.0, status="cancelled"),
        _order(112, 5, "2024-03-10 10:00", 150.0, delivered="2024-03-31 20:00"),
        _order(113, 6, "2024-02-29 23:00", 45.75, delivered="2024-03-01 01:00"),
        _order(114, 7, "2024-03-05 10:00", 99.0, status="cancelled", cancelled="2024-03-05 11:00"),
        _order(115, 7, "2024-04-10 10:00", 99.0, delivered="2024-04-12 10:00"),
        _order(116, 8, "2024-03-20 10:00", 300.0, delivered="2024-03-22 10:00"),
        _order(117, 8, "2024-03-25 10:00", 25.5, delivered="2024-03-27 10:00"),
        _order(118, 10, "2024-02-01 00:00", 10.0, delivered="2024-02-02 10:00"),
        _order(119, 2, "2024-04-05 10:00", 55.0, delivered="2024-04-07 10:00"),
        _order(120, 12, "2024-04-25 10:00", 20.25, status="shipped"),
        _order(121, 9, "2024-04-01 00:00", 65.0, delivered="2024-04-03 10:00"),
    ]
}
RETURNS = [
    _return(201, ORDERS[102], "return", "2024-01-10 10:00"),
    _return(202, ORDERS[104], "exchange", "2024-02-24 08:00"),  # exactly 30 days after delivery
    _return(203, ORDERS[109], "return", "2024-03-18 10:00"),  # 31 days after: too late
    _return(204, ORDERS[112], "repair", "2024-04-02 10:00"),  # a repair is not a return
    _return(205, ORDERS[116], "return", "2024-03-23 10:00"),
    _return(206, ORDERS[116], "exchange", "2024-03-24 10:00"),  # same order: counted once
    _return(207, ORDERS[113], "return", "2024-03-02 10:00"),
]
TICKETS = [
    _ticket(
        301,
        1,
        "2024-01-06 10:00",
        complaint=True,
        responded="2024-01-06 10:20",
        resolved="2024-01-06 18:00",
        satisfaction=5,
    ),
    # first response at exactly 30 minutes and resolution at exactly 24 hours: within the SLA
    _ticket(
        302,
        2,
        "2024-01-21 09:00",
        responded="2024-01-21 09:30",
        resolved="2024-01-22 09:00",
        satisfaction=4,
    ),
    # opened on January's last hour, resolved at exactly 7 days, rated in February
    _ticket(
        303,
        3,
        "2024-01-31 23:00",
        complaint=True,
        responded="2024-02-01 00:15",
        resolved="2024-02-07 23:00",
        satisfaction=2,
    ),
    _ticket(304, 4, "2024-02-14 11:00"),
    _ticket(
        305,
        4,
        "2024-02-20 09:00",
        complaint=True,
        responded="2024-02-20 09:05",
        resolved="2024-02-28 09:01",
        satisfaction=3,
    ),
    _ticket(
        306,
        5,
        "2024-03-11 10:00",
        complaint=True,
        responded="2024-03-11 10:45",
        resolved="2024-03-11 12:00",
    ),
    _ticket(
        307,
        8,
        "2024-03-21 10:00",
        responded="2024-03-21 10:10",
        resolved="2024-03-21 11:00",
        satisfaction=5,
    ),
    _ticket(
        308,
        6,
        "2024-03-29 10:00",
        complaint=True,
        responded="2024-03-29 10:40",
        resolved="2024-04-02 10:00",
        satisfaction=4,
    ),
    _ticket(309, 7, "2024-04-11 10:00", responded="2024-04-11 10:01"),
]
GRADE_HISTORY = [
    _grade(1, "core", date(2023, 10, 1), date(2024, 4, 1)),
    _grade(1, "potential", date(2024, 4, 1), None),
    _grade(2, "potential", date(2023, 10, 1), date(2024, 1, 1)),
    _grade(2, "core", date(2024, 1, 1), None),
    _grade(3, "ordinary", date(2024, 1, 1), None),
    _grade(4, "ordinary", date(2024, 1, 1), date(2024, 4, 1)),
    _grade(4, "potential", date(2024, 4, 1), None),
    _grade(5, "potential", date(2024, 1, 1), date(2024, 2, 29)),  # ends on Feb's last day
    _grade(6, "ordinary", date(2024, 3, 31), None),  # starts on March's last day
    _grade(8, "core", date(2024, 4, 1), None),
    _grade(10, "potential", date(2024, 1, 1), date(2024, 1, 31)),
]


def _table(name: str, rows: Sequence[Row]) -> pa.Table:
    return conform(name, pa.Table.from_pylist(list(rows), schema=SCHEMAS[name]))


def _sources(
    customers: Sequence[Row] = CUSTOMERS,
    orders: Sequence[Row] = tuple(ORDERS.values()),
    returns: Sequence[Row] = RETURNS,
    tickets: Sequence[Row] = TICKETS,
    grades: Sequence[Row] | None = GRADE_HISTORY,
) -> Sources:
    sources = Sources(
        customers=_table("customers", customers),
        orders=_table("orders", orders),
        payments=empty("payments"),
        returns=_table("returns", returns),
        reviews=empty("reviews"),
        tickets=_table("tickets", tickets),
    )
    if grades is not None:
        sources.extra["grades"] = pa.Table.from_pylist(list(grades), schema=GRADES_SCHEMA)
    return sources


@pytest.fixture(autouse=True)
def merchant_in_utc(settings: Any) -> None:
    """The hand-made shop's merchant keeps UTC, so its hand counts read as written; the
    merchant's time zone has its own test below."""
    settings.TIME_ZONE = "UTC"


@pytest.fixture(scope="module")
def shop() -> Sources:
    return _sources()


# -- the independent recomputation: plain loops over the rows -------------------------------


class Shop:
    """The same rows as the sources, as Python dicts."""

    def __init__(
        self,
        customers: Sequence[Row],
        orders: Sequence[Row],
        returns: Sequence[Row],
        tickets: Sequence[Row],
        grades: Sequence[Row],
    ) -> None:
        self.customers, self.orders, self.returns = customers, orders, returns
        self.tickets, self.grades = tickets, grades


def _month(instant: datetime) -> date:
    """The month in the merchant's time zone (Asia/Shanghai in the tests: UTC+8)."""
    local = instant + merchant_offset()
    return date(local.year, local.month, 1)


def _start(month: date) -> datetime:
    """The instant the month begins in the merchant's time zone."""
    return datetime.combine(month, datetime.min.time(), tzinfo=UTC) - merchant_offset()


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _end(month: date) -> datetime:
    return _start(_next_month(month))


def _is_live(order: Row) -> bool:
    """Not cancelled by the end of the month it was placed in."""
    if order["cancelled_at"] is None:
        return order["status"] != "cancelled"
    return order["cancelled_at"] >= _end(_month(order["placed_at"]))


Result = tuple[float | None, float | None]  # numerator, denominator (None: a count)


def _count(n: int) -> Result:
    return float(n), None


def _ratio(numerator: float, denominator: float) -> Result:
    return float(numerator), float(denominator)


def ref_customers(shop: Shop, month: date) -> Result:
    n = 0
    for customer in shop.customers:
        known = customer["registered_at"]
        if known is None:
            placed = [
                o["placed_at"] for o in shop.orders if o["customer_id"] == customer["customer_id"]
            ]
            known = min(placed) if placed else None
        if known is not None and known < _end(month):
            n += 1
    return _count(n)


def _first_live(shop: Shop) -> dict[int, datetime]:
    first: dict[int, datetime] = {}
    for order in shop.orders:
        if _is_live(order):
            customer = order["customer_id"]
            if customer not in first or order["placed_at"] < first[customer]:
                first[customer] = order["placed_at"]
    return first


def _live_in(shop: Shop, month: date) -> list[Row]:
    return [o for o in shop.orders if _is_live(o) and _month(o["placed_at"]) == month]


def ref_new_customers(shop: Shop, month: date) -> Result:
    return _count(sum(1 for at in _first_live(shop).values() if _month(at) == month))


def ref_returning_customers(shop: Shop, month: date) -> Result:
    start = _start(month)
    buyers = {o["customer_id"] for o in _live_in(shop, month)}
    earlier = {o["customer_id"] for o in shop.orders if _is_live(o) and o["placed_at"] < start}
    return _count(len(buyers & earlier))


def ref_repurchase_rate(shop: Shop, month: date) -> Result:
    first = month
    for _ in range(11):
        first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    start = _start(first)
    per_customer: Counter[int] = Counter()
    for order in shop.orders:
        if _is_live(order) and start <= order["placed_at"] < _end(month):
            per_customer[order["customer_id"]] += 1
    return _ratio(sum(1 for n in per_customer.values() if n >= 2), len(per_customer))


def ref_average_order_value(shop: Shop, month: date) -> Result:
    orders = _live_in(shop, month)
    return _ratio(sum(o["total_amount"] for o in orders), len(orders))


def ref_purchase_frequency(shop: Shop, month: date) -> Result:
    orders = _live_in(shop, month)
    return _ratio(len(orders), len({o["customer_id"] for o in orders}))


def ref_return_rate(shop: Shop, month: date) -> Result:
    delivered = [
        o
        for o in shop.orders
        if o["delivered_at"] is not None and _month(o["delivered_at"]) == month
    ]
    returned = 0
    for order in delivered:
        for request in shop.returns:
            if (
                request["order_id"] == order["order_id"]
                and request["kind"] in ("return", "exchange")
                and request["requested_at"] <= order["delivered_at"] + timedelta(days=30)
            ):
                returned += 1
                break
    return _ratio(returned, len(delivered))


def _opened_in(shop: Shop, month: date) -> list[Row]:
    return [t for t in shop.tickets if _month(t["opened_at"]) == month]


def ref_complaint_rate(shop: Shop, month: date) -> Result:
    complaints = sum(1 for t in _opened_in(shop, month) if t["is_complaint"])
    return _ratio(complaints, len(_live_in(shop, month)))


def ref_csat(shop: Shop, month: date) -> Result:
    rated = [
        t
        for t in shop.tickets
        if t["resolved_at"] is not None
        and _month(t["resolved_at"]) == month
        and t["satisfaction"] is not None
    ]
    return _ratio(sum(1 for t in rated if t["satisfaction"] >= 4), len(rated))


def ref_first_response_minutes(shop: Shop, month: date) -> Result:
    answered = [t for t in _opened_in(shop, month) if t["first_response_at"] is not None]
    minutes = [(t["first_response_at"] - t["opened_at"]).total_seconds() / 60 for t in answered]
    return _ratio(sum(minutes), len(answered))


def ref_resolution_rate(shop: Shop, month: date) -> Result:
    opened = _opened_in(shop, month)
    resolved = [
        t
        for t in opened
        if t["resolved_at"] is not None and t["resolved_at"] - t["opened_at"] <= timedelta(days=7)
    ]
    return _ratio(len(resolved), len(opened))


def ref_sla_attainment(shop: Shop, month: date) -> Result:
    opened = _opened_in(shop, month)
    met = 0
    for t in opened:
        if t["first_response_at"] is None or t["resolved_at"] is None:
            continue
        if t["first_response_at"] - t["opened_at"] <= timedelta(minutes=30) and t[
            "resolved_at"
        ] - t["opened_at"] <= timedelta(hours=24):
            met += 1
    return _ratio(met, len(opened))


def _held(grades: Sequence[Row], day: date) -> dict[int, str]:
    held: dict[int, str] = {}
    for row in grades:
        if row["valid_from"] <= day and (row["valid_to"] is None or day < row["valid_to"]):
            held[row["customer_id"]] = row["grade"]
    return held


def _last_day(month: date) -> date:
    return _next_month(month) - timedelta(days=1)


def ref_core_share(shop: Shop, month: date) -> Result:
    held = _held(shop.grades, _last_day(month))
    return _ratio(sum(1 for g in held.values() if g == "core"), len(held))


def _ref_grade(grade: str) -> Callable[[Shop, date], Result]:
    def ref(shop: Shop, month: date) -> Result:
        held = _held(shop.grades, _last_day(month))
        if not held:
            return None, None
        return _count(sum(1 for g in held.values() if g == grade))

    return ref


REFERENCES: dict[str, Callable[[Shop, date], Result]] = {
    "customers": ref_customers,
    "new_customers": ref_new_customers,
    "returning_customers": ref_returning_customers,
    "repurchase_rate": ref_repurchase_rate,
    "average_order_value": ref_average_order_value,
    "purchase_frequency": ref_purchase_frequency,
    "return_rate": ref_return_rate,
    "complaint_rate": ref_complaint_rate,
    "csat": ref_csat,
    "first_response_minutes": ref_first_response_minutes,
    "resolution_rate": ref_resolution_rate,
    "sla_attainment": ref_sla_attainment,
    "core_share": ref_core_share,
    "grade_core": _ref_grade("core"),
    "grade_potential": _ref_grade("potential"),
    "grade_ordinary": _ref_grade("ordinary"),
}


def _expected_rows(metric: str, shop: Shop, periods: Sequence[date]) -> list[Row]:
    rows = []
    for month in periods:
        numerator, denominator = REFERENCES[metric](shop, month)
        if METRICS[metric].unit == "count":
            value = numerator
        else:
            assert numerator is not None and denominator is not None
            value = numerator / denominator if denominator else None
        rows.append(
            {"period": month, "value": value, "numerator": numerator, "denominator": denominator}
        )
    return rows


SHOP = Shop(CUSTOMERS, list(ORDERS.values()), RETURNS, TICKETS, GRADE_HISTORY)


# -- the registry ---------------------------------------------------------------------------


def test_every_metric_is_declared_with_a_reference() -> None:
    # then
    assert list(REFERENCES) == list(METRICS)
    for key, metric in METRICS.items():
        assert metric.key == key
        assert metric.unit in ("count", "ratio", "money", "minutes", "per_customer")
        assert metric.direction in ("up", "down")
        assert metric.grain == "month"
        assert metric.definition.endswith(".") and metric.definition.count(". ") == 0
        assert metric.label_en and metric.label_zh
        assert set(metric.needs) <= {"customers", "orders", "returns", "tickets", "grades"}


def test_months_are_the_calendar_months_overlapping_the_range() -> None:
    assert months(JAN, MAY) == [JAN, FEB, MAR, APR]
    assert months(date(2023, 11, 15), date(2024, 2, 2)) == [date(2023, 11, 1), DEC, JAN, FEB]
    assert months(JAN, JAN) == []
    assert months(FEB, JAN) == []


# -- compute against the independent recomputation -----------------------------------------


@pytest.mark.parametrize("metric", list(METRICS))
def test_compute_matches_the_plain_python_recomputation(shop: Sources, metric: str) -> None:
    # when
    table = compute(shop, metric, MONTHS)

    # then
    assert table.schema == pa.schema(
        [
            ("period", pa.date32()),
            ("value", pa.float64()),
            ("numerator", pa.float64()),
            ("denominator", pa.float64()),
        ]
    )
    assert table.to_pylist() == _expected_rows(metric, SHOP, MONTHS)


def test_months_are_cut_in_the_merchants_time_zone(shop: Sources, settings: Any) -> None:
    # given: customer 10 registered on 31 January at 20:00 UTC, already 1 February in Shanghai
    assert compute(shop, "customers", [JAN, FEB]).column("value").to_pylist() == [5.0, 7.0]
    # when the merchant is in Shanghai
    settings.TIME_ZONE = "Asia/Shanghai"
    # then January's count no longer has customer 10
    assert compute(shop, "customers", [JAN, FEB]).column("value").to_pylist() == [4.0, 7.0]


def test_the_hand_made_shop_gives_the_hand_counted_values(shop: Sources) -> None:
    """A few values counted by hand, so that the recomputation is checked too."""

    def values(metric: str) -> list[float | None]:
        return compute(shop, metric, [JAN, FEB, MAR, APR]).column("value").to_pylist()

    # customers 1, 2, 3, 4, 10 by January's end; 5, 6 in February; 7, 8 in March; 9, 12 in April
    assert values("customers") == [5.0, 7.0, 9.0, 11.0]
    # January: 2, 3, 4; February: 6, 10 (5's order is cancelled); March: 5, 8; April: 7, 9, 12
    assert values("new_customers") == [3.0, 2.0, 2.0, 3.0]
    # January: 1; February: 3 (order 107 cancelled after February), 4; March: 1; April: 2, 4
    assert values("returning_customers") == [1.0, 2.0, 1.0, 2.0]
    # January: 120.5 + 200 + 60 + 30 over 4 orders
    assert values("average_order_value")[0] == 410.5 / 4
    # delivered in January 102, 104, 108 (102 and 104 returned, 104 on day 30); February 106,
    # 109 (too late), 118; March 103, 112, 113, 116, 117 (113 and 116 returned)
    assert values("return_rate") == [2 / 3, 0.0, 2 / 5, 0.0]
    # January: complaints 301, 303 over 4 orders; March: 306, 308 over 103, 112, 116, 117
    assert values("complaint_rate")[0] == 2 / 4
    assert values("complaint_rate")[2] == 2 / 4
    # resolved January: 301 (5), 302 (4); February: 303 (2), 305 (3); March: 306 unrated, 307 (5)
    assert values("csat") == [1.0, 0.0, 1.0, 1.0]
    # January: 20, 30 and 75 minutes
    assert values("first_response_minutes")[0] == 125 / 3
    # January: 301, 302 and 303 (at exactly 7 days); February: 304 never, 305 after 8 days
    assert values("resolution_rate")[:2] == [1.0, 0.0]
    # January: 301 and 302 (at exactly 30 minutes and 24 hours); March: 307 only
    assert values("sla_attainment") == [2 / 3, 0.0, 1 / 3, 0.0]
    # Jan 31: 1 core, 2 core, 3, 4 ordinary, 5 potential (10's ended on the 31st)
    assert values("core_share") == [2 / 5, 2 / 4, 2 / 5, 2 / 6]
    assert values("grade_potential") == [1.0, 0.0, 0.0, 2.0]


def test_months_without_rows_have_null_ratios_and_zero_counts(shop: Sources) -> None:
    # given: May 2024 has no order and no ticket; nobody was graded in 2022
    old = date(2022, 1, 1)

    # when
    aov = compute(shop, "average_order_value", [MAY]).to_pylist()
    new = compute(shop, "new_customers", [MAY]).to_pylist()
    core = compute(shop, "grade_core", [old]).to_pylist()

    # then
    assert aov == [{"period": MAY, "value": None, "numerator": 0.0, "denominator": 0.0}]
    assert new == [{"period": MAY, "value": 0.0, "numerator": 0.0, "denominator": None}]
    assert core == [{"period": old, "value": None, "numerator": None, "denominator": None}]


def test_compute_keeps_the_order_asked_and_reads_any_day_as_its_month(shop: Sources) -> None:
    # when
    table = compute(shop, "customers", [MAR, date(2024, 1, 17), MAR])

    # then
    assert table.column("period").to_pylist() == [MAR, JAN, MAR]
    assert table.column("value").to_pylist() == [9.0, 5.0, 9.0]
    assert compute(shop, "customers", []).num_rows == 0


def test_an_unknown_metric_is_refused_by_name(shop: Sources) -> None:
    with pytest.raises(ValueError, match="no metric named 'nps'"):
        compute(shop, "nps", [JAN])


# -- incremental filling: one month at a time equals the range at once ----------------------

_START = datetime(2023, 11, 1, tzinfo=UTC)
_SPAN_MINUTES = 7 * 31 * 24 * 60  # November 2023 to May 2024


def _instant(minutes: int) -> datetime:
    return _START + timedelta(minutes=minutes)


@st.composite
def _shops(draw: st.DrawFn) -> Shop:
    """A random little shop: whole minutes and quarter amounts keep every sum exact."""
    ids = list(range(1, 7))
    minute = st.integers(0, _SPAN_MINUTES)
    customers = [
        _customer(i, None) | {"registered_at": draw(st.none() | minute.map(_instant))} for i in ids
    ]
    orders = []
    for order_id in range(draw(st.integers(0, 14))):
        placed = _instant(draw(minute))
        status = draw(st.sampled_from(["completed", "cancelled", "paid"]))
        cancel_after = draw(st.none() | st.integers(0, 60 * 24 * 40))
        deliver_after = draw(st.none() | st.integers(0, 60 * 24 * 10))
        orders.append(
            _order(order_id, draw(st.sampled_from(ids)), "2000-01-01 00:00", 0.0, status=status)
            | {
                "placed_at": placed,
                "total_amount": draw(st.integers(0, 4000)) / 4,
                "cancelled_at": None
                if status != "cancelled" or cancel_after is None
                else placed + timedelta(minutes=cancel_after),
                "delivered_at": None
                if deliver_after is None
                else placed + timedelta(minutes=deliver_after),
            }
        )
    returns = []
    returned = draw(st.lists(st.sampled_from(orders), max_size=5)) if orders else []
    for return_id, order in enumerate(returned):
        kind = draw(st.sampled_from(["return", "exchange", "repair"]))
        after = timedelta(days=draw(st.integers(0, 45)))  # whole days: day 30 comes up
        requested = (order["delivered_at"] or order["placed_at"]) + after
        returns.append(
            _return(return_id, order, kind, "2000-01-01 00:00") | {"requested_at": requested}
        )
    tickets = []
    for ticket_id in range(draw(st.integers(0, 10))):
        opened = _instant(draw(minute))
        responded = draw(st.none() | st.integers(0, 120))
        resolved = draw(st.none() | st.integers(0, 24 * 9))  # hours
        tickets.append(
            _ticket(ticket_id, draw(st.sampled_from(ids)), "2000-01-01 00:00")
            | {
                "is_complaint": draw(st.booleans()),
                "opened_at": opened,
                "first_response_at": None
                if responded is None
                else opened + timedelta(minutes=responded),
                "resolved_at": None if resolved is None else opened + timedelta(hours=resolved),
                "satisfaction": draw(st.none() | st.integers(1, 5)),
            }
        )
    grades = []
    for customer in ids:
        day = date(2023, 11, 1) + timedelta(days=draw(st.integers(0, 200)))
        for _ in range(draw(st.integers(0, 3))):
            length = draw(st.none() | st.integers(0, 90))
            grade = draw(st.sampled_from(["core", "potential", "ordinary"]))
            until = None if length is None else day + timedelta(days=length)
            grades.append(_grade(customer, grade, day, until))
            if until is None:
                break
            day = until + timedelta(days=draw(st.integers(0, 20)))
    return Shop(customers, orders, returns, tickets, grades)


def _shop_sources(shop: Shop) -> Sources:
    return _sources(shop.customers, shop.orders, shop.returns, shop.tickets, shop.grades)


@settings(max_examples=40, deadline=None)
@given(
    shop=_shops(),
    metric=st.sampled_from(list(METRICS)),
    first=st.integers(0, 6),
    count=st.integers(1, 4),
)
def test_one_month_at_a_time_equals_the_range_and_the_recomputation(
    shop: Shop, metric: str, first: int, count: int
) -> None:
    # given
    sources = _shop_sources(shop)
    periods = months(date(2023, 11, 1), date(2024, 7, 1))[first : first + count]

    # when
    at_once = compute(sources, metric, periods).to_pylist()
    one_by_one = [compute(sources, metric, [month]).to_pylist()[0] for month in periods]

    # then
    assert one_by_one == at_once
    expected = _expected_rows(metric, shop, periods)
    if METRICS[metric].unit == "count" and not has_data(sources, metric):
        expected = [row | {"value": None, "numerator": None} for row in expected]
    assert at_once == expected


# -- has_data --------------------------------------------------------------------------------


def test_ticket_metrics_have_no_data_without_tickets() -> None:
    # given
    sources = _sources(tickets=())

    # when
    available = {key: has_data(sources, key) for key in METRICS}

    # then
    ticket_metrics = {key for key, metric in METRICS.items() if "tickets" in metric.needs}
    assert ticket_metrics == {
        "complaint_rate",
        "csat",
        "first_response_minutes",
        "resolution_rate",
        "sla_attainment",
    }
    assert {key for key, ok in available.items() if not ok} == ticket_metrics


def test_csat_needs_a_score_and_grades_need_a_history(shop: Sources) -> None:
    # given
    unrated = _sources(tickets=[t | {"satisfaction": None} for t in TICKETS])
    ungraded = _sources(grades=None)

    # then
    assert has_data(shop, "csat")
    assert not has_data(unrated, "csat")
    assert has_data(unrated, "first_response_minutes")
    assert all(has_data(shop, key) for key in METRICS)
    assert not any(has_data(ungraded, key) for key in METRICS if "grades" in METRICS[key].needs)
    assert compute(ungraded, "core_share", [JAN]).column("value").to_pylist() == [None]


# -- drill -------------------------------------------------------------------------------------


def test_drill_returns_the_numerators_customers(shop: Sources) -> None:
    def ids(metric: str, month: date) -> list[int]:
        result = drill(shop, metric, month)
        assert result.type == pa.int64()
        return result.to_pylist()

    # then
    assert ids("customers", JAN) == [1, 2, 3, 4, 10]
    assert ids("new_customers", FEB) == [6, 10]
    assert ids("returning_customers", FEB) == [3, 4]
    # 1: 101–103; 3: 106, 107; 4: 108, 109; 8: 116, 117 (2's 105 was cancelled)
    assert ids("repurchase_rate", MAR) == [1, 3, 4, 8]
    assert ids("average_order_value", JAN) == [1, 2, 3, 4]
    assert ids("return_rate", JAN) == [1, 2]
    assert ids("return_rate", MAR) == [6, 8]
    assert ids("complaint_rate", JAN) == [1, 3]
    assert ids("csat", MAR) == [8]
    assert ids("first_response_minutes", FEB) == [4]
    assert ids("resolution_rate", FEB) == []
    assert ids("sla_attainment", JAN) == [1, 2]
    assert ids("core_share", APR) == [2, 8]
    assert ids("grade_ordinary", MAR) == [3, 4, 6]
    assert ids("customers", date(2020, 1, 1)) == []


@pytest.mark.parametrize(
    "metric", [key for key, metric in METRICS.items() if metric.unit in ("count", "ratio")]
)
def test_drill_has_as_many_customers_as_the_counted_numerator(shop: Sources, metric: str) -> None:
    # given: a customer counts once in these numerators, except for orders and tickets
    per_row = {"return_rate", "complaint_rate", "csat", "resolution_rate", "sla_attainment"}

    for month in [JAN, FEB, MAR, APR]:
        # when
        numerator = compute(shop, metric, [month]).column("numerator")[0].as_py() or 0
        customers = drill(shop, metric, month)

        # then
        if metric in per_row:
            assert len(customers) <= numerator
        else:
            assert len(customers) == numerator


# -- cohorts and grade movement ----------------------------------------------------------------


def test_cohort_retention_counts_each_cohorts_active_customers(shop: Sources) -> None:
    # when
    table = cohort_retention(shop, JAN, APR)

    # then: cohorts January {2, 3, 4}, February {6, 10}, March {5, 8}, April {7, 9, 12};
    # active: February 3 (107), 4, 6, 10; March 1, 5, 8; April 2, 4, 7, 9, 12
    assert table.schema.types == [pa.date32(), pa.int32(), pa.int64(), pa.int64(), pa.float64()]
    cells = {
        (r["cohort"], r["months_since"]): (r["customers"], r["active"]) for r in table.to_pylist()
    }
    assert cells == {
        (JAN, 0): (3, 3),
        (JAN, 1): (3, 2),
        (JAN, 2): (3, 0),
        (JAN, 3): (3, 2),
        (FEB, 0): (2, 2),
        (FEB, 1): (2, 0),
        (FEB, 2): (2, 0),
        (MAR, 0): (2, 2),
        (MAR, 1): (2, 0),
        (APR, 0): (3, 3),
    }
    assert [(r["cohort"], r["months_since"]) for r in table.to_pylist()] == list(cells)
    assert table.column("rate").to_pylist()[:4] == [1.0, 2 / 3, 0.0, 2 / 3]


def test_cohort_retention_keeps_empty_cohorts_with_a_null_rate(shop: Sources) -> None:
    # when
    rows = cohort_retention(shop, MAY, date(2024, 6, 1)).to_pylist()

    # then
    assert rows == [
        {"cohort": MAY, "months_since": 0, "customers": 0, "active": 0, "rate": None},
        {"cohort": MAY, "months_since": 1, "customers": 0, "active": 0, "rate": None},
        {"cohort": date(2024, 6, 1), "months_since": 0, "customers": 0, "active": 0, "rate": None},
    ]
    assert cohort_retention(shop, APR, MAR).num_rows == 0


def test_cohort_retention_matches_the_plain_python_recomputation(shop: Sources) -> None:
    # given
    first_live = {c: _month(at) for c, at in _first_live(SHOP).items()}
    active: defaultdict[date, set[int]] = defaultdict(set)
    for order in SHOP.orders:
        if _is_live(order):
            active[_month(order["placed_at"])].add(order["customer_id"])

    # when
    rows = cohort_retention(shop, DEC, APR).to_pylist()

    # then
    for row in rows:
        members = {c for c, month in first_live.items() if month == row["cohort"]}
        month = row["cohort"]
        for _ in range(row["months_since"]):
            month = _next_month(month)
        assert row["customers"] == len(members)
        assert row["active"] == len(members & active[month])
    assert len(rows) == 5 + 4 + 3 + 2 + 1


def test_grade_movement_between_two_days() -> None:
    # given: on 15 January 1, 2 core, 3, 4 ordinary, 5, 10 potential; on 15 April 1, 4
    # potential, 2, 8 core, 3, 6 ordinary
    grades = pa.Table.from_pylist(GRADE_HISTORY, schema=GRADES_SCHEMA)

    # when
    movement = grade_movement(grades, date(2024, 1, 15), date(2024, 4, 15))

    # then
    assert movement == {
        "grades": ["core", "potential", "ordinary"],
        "matrix": [[1, 1, 0], [0, 0, 0], [0, 1, 1]],
        "up": 1,
        "down": 1,
        "unchanged": 2,
        "new": 2,
        "left": 2,
    }


def test_grade_movement_reads_valid_to_as_exclusive() -> None:
    # given
    grades = pa.Table.from_pylist(GRADE_HISTORY, schema=GRADES_SCHEMA)

    # when: 1 turns potential, 4 turns potential and 8 starts core on 1 April
    movement = grade_movement(grades, date(2024, 3, 31), date(2024, 4, 1))

    # then
    assert movement["matrix"] == [[1, 1, 0], [0, 0, 0], [0, 1, 2]]
    assert (movement["up"], movement["down"], movement["unchanged"]) == (1, 1, 3)
    assert (movement["new"], movement["left"]) == (1, 0)
    assert grade_movement(GRADES_SCHEMA.empty_table(), JAN, APR)["matrix"] == [[0] * 3] * 3
