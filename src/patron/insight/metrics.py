"""The KPI registry and its monthly computations: a pure library (no Django), Ibis on DuckDB.

Every metric is declared once in ``METRICS`` (key, labels, unit, better direction, grain, the
exact definition shown in the docs and the page's tooltip, the source tables it reads). Its
value for a month is ``numerator / denominator`` (ratios and means) or a count, computed from
the ``patron.intelligence.sources`` tables plus ``sources.extra["grades"]`` (the grade
history: ``customer_id``, ``grade``, ``valid_from``, ``valid_to``; ``valid_to`` is exclusive,
null while the grade is held).

A month's figure depends only on that month's rows (or on the rows before its end, for stock
metrics such as the customer count and the grades), never on the other months asked for:
computing one month alone gives the same row as computing it inside a longer range, which the
incremental fill relies on. The figures are also fixed once the month (plus a metric's window)
is over, whenever they are computed:

- **Non-cancelled order**: an order not cancelled by the end of the calendar month it was
  placed in (an order marked cancelled without a cancellation time counts as cancelled). An
  order cancelled later stays in its month's figures, as it stood at the month's close; with
  "cancelled now" instead, a rebuild would disagree with the months filled earlier.
- Windows measured from an event settle a fixed time after the month: ``return_rate`` 30 days
  (return window), ``resolution_rate`` 7 days, ``sla_attainment`` 24 hours; ``csat`` changes
  when a score arrives after the month (the sources carry no time for the score).

Months are calendar months in UTC for now; ``_month_of`` is the one place that decides which
month an instant falls in (a merchant's zone goes there). Everything else is calendar
arithmetic on dates or durations between two instants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from patron.intelligence.features import memtable
from patron.intelligence.sources import Sources

#: Grades from the highest to the lowest (``patron.intelligence.grading.GRADES``).
GRADES: tuple[str, ...] = ("core", "potential", "ordinary")
_GRADE_LEVEL = {grade: len(GRADES) - index for index, grade in enumerate(GRADES)}
GRADES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("grade", pa.string()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
    ]
)

REPURCHASE_WINDOW_MONTHS = 12
RETURN_WINDOW_DAYS = 30
RESOLUTION_WINDOW_DAYS = 7
SLA_FIRST_RESPONSE_MINUTES = 30
SLA_RESOLUTION_HOURS = 24
#: The lowest CSAT score (1–5) that counts as satisfied.
SATISFIED_FROM = 4
#: The request kinds that make an order "returned" for the return rate.
RETURN_KINDS = ("return", "exchange")

_DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Metric:
    key: str
    label_en: str
    label_zh: str
    unit: str  # "count" | "ratio" (0..1) | "money" | "minutes" | "per_customer"
    direction: str  # "up" (higher is better) | "down"
    grain: str  # "month" for all of them now
    definition: str  # one exact English sentence, for the docs and the page's tooltip
    needs: tuple[str, ...]  # source tables it reads: customers, orders, returns, tickets, grades


def _metric(
    key: str,
    label_en: str,
    label_zh: str,
    unit: str,
    direction: str,
    definition: str,
    *needs: str,
) -> Metric:
    return Metric(key, label_en, label_zh, unit, direction, "month", definition, needs)


_METRIC_LIST = [
    _metric(
        "customers",
        "customers",
        "客户数",
        "count",
        "up",
        "Customers known at the end of the month: registered before the month's end or, when "
        "the registration time is unknown, with a first order (of any status) placed before it.",
        "customers",
        "orders",
    ),
    _metric(
        "new_customers",
        "new customers",
        "新客户",
        "count",
        "up",
        "Customers whose first order not cancelled by the end of the month it was placed in "
        "was placed in the month.",
        "orders",
    ),
    _metric(
        "returning_customers",
        "returning customers",
        "回头客",
        "count",
        "up",
        "Customers who placed an order in the month that was not cancelled by the month's end "
        "and had placed such an order in an earlier month.",
        "orders",
    ),
    _metric(
        "repurchase_rate",
        "repurchase rate",
        "复购率",
        "ratio",
        "up",
        "Of the customers who placed an order in the 12 calendar months ending with the month, "
        "the share who placed two or more, counting only orders not cancelled by the end of the "
        "month they were placed in.",
        "orders",
    ),
    _metric(
        "average_order_value",
        "average order value",
        "客单价",
        "money",
        "up",
        "Total amount of the orders placed in the month and not cancelled by its end, divided "
        "by their number.",
        "orders",
    ),
    _metric(
        "purchase_frequency",
        "purchase frequency",
        "购买频次",
        "per_customer",
        "up",
        "Orders placed in the month and not cancelled by its end, divided by the number of "
        "customers who placed them.",
        "orders",
    ),
    _metric(
        "return_rate",
        "return rate",
        "退货率",
        "ratio",
        "down",
        "Orders delivered in the month with a return or exchange request made no later than 30 "
        "days after delivery, divided by the orders delivered in the month.",
        "orders",
        "returns",
    ),
    _metric(
        "complaint_rate",
        "complaint rate",
        "投诉率",
        "ratio",
        "down",
        "Complaint tickets opened in the month divided by the orders placed in the month and "
        "not cancelled by its end.",
        "tickets",
        "orders",
    ),
    _metric(
        "csat",
        "satisfaction (CSAT)",
        "满意度",
        "ratio",
        "up",
        "Of the tickets resolved in the month that carry a satisfaction score (1–5), the share "
        "scored 4 or 5.",
        "tickets",
    ),
    _metric(
        "first_response_minutes",
        "average first response",
        "平均首次响应时长",
        "minutes",
        "down",
        "Mean minutes from opening to first response over the tickets opened in the month that "
        "have a first response (calendar time).",
        "tickets",
    ),
    _metric(
        "resolution_rate",
        "resolution rate",
        "解决率",
        "ratio",
        "up",
        "Tickets opened in the month that were resolved within 7 days of opening, divided by "
        "the tickets opened in the month.",
        "tickets",
    ),
    _metric(
        "sla_attainment",
        "SLA attainment",
        "SLA达成率",
        "ratio",
        "up",
        "Tickets opened in the month that got a first response within 30 minutes and were "
        "resolved within 24 hours of opening, in calendar time (not business hours), divided "
        "by the tickets opened in the month.",
        "tickets",
    ),
    _metric(
        "core_share",
        "high-value (core) share",
        "核心客户占比",
        "ratio",
        "up",
        "Of the customers holding a grade on the month's last day, the share graded core.",
        "grades",
    ),
    _metric(
        "grade_core",
        "core customers",
        "核心客户",
        "count",
        "up",
        "Customers graded core on the month's last day.",
        "grades",
    ),
    _metric(
        "grade_potential",
        "potential customers",
        "潜力客户",
        "count",
        "up",
        "Customers graded potential on the month's last day.",
        "grades",
    ),
    _metric(
        "grade_ordinary",
        "ordinary customers",
        "普通客户",
        "count",
        "down",
        "Customers graded ordinary on the month's last day.",
        "grades",
    ),
]
METRICS: dict[str, Metric] = {metric.key: metric for metric in _METRIC_LIST}

#: What ``has_data`` asks for when it is more than "each table of ``needs`` has rows": a table
#: with rows, and (when a column is named) at least one non-null value in it. A shop whose
#: tickets carry no CSAT has no CSAT, not a CSAT of 0.
_REQUIRED: dict[str, tuple[tuple[str, str | None], ...]] = {
    "customers": (("customers", None),),
    "return_rate": (("orders", "delivered_at"), ("returns", None)),
    "csat": (("tickets", "resolved_at"), ("tickets", "satisfaction")),
    "first_response_minutes": (("tickets", "first_response_at"),),
    "resolution_rate": (("tickets", "resolved_at"),),
    "sla_attainment": (("tickets", "first_response_at"), ("tickets", "resolved_at")),
}


# -- months ---------------------------------------------------------------------------------


def merchant_offset() -> timedelta:
    """The merchant's offset from UTC (``settings.TIME_ZONE``), for putting instants in months.

    Engines differ in how (and whether) they convert time zones, so a month is cut at a fixed
    offset: exact for zones without daylight saving (Asia/Shanghai, the default); for a zone
    with it, its standard offset — an order in the hour after midnight on the first of a
    summer month may then count in the month before."""
    from django.conf import settings

    zone = ZoneInfo(settings.TIME_ZONE)
    offsets = [datetime(2026, month, 1, tzinfo=zone).utcoffset() for month in (1, 7)]
    return min(o for o in offsets if o is not None) if any(offsets) else timedelta(0)


def _month_of(instant: ir.TimestampValue) -> ir.DateValue:
    """The calendar month (its first day) an instant falls in, in the merchant's time zone:
    the one place that maps instants to months."""
    offset = merchant_offset()
    if offset:
        instant = instant + ibis.interval(seconds=int(offset.total_seconds()))
    return instant.truncate("M").date()


def _first_day(day: date) -> date:
    return day.replace(day=1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def months(start: date, end: date) -> list[date]:
    """The first days of the calendar months that overlap [start, end): from ``start``'s month
    through the month of the day before ``end``; empty when ``end <= start``."""
    if end <= start:
        return []
    first, last = _first_day(start), _first_day(end - timedelta(days=1))
    return [_add_months(first, index) for index in range(_months_between(first, last) + 1)]


def _wanted(periods: Sequence[date]) -> ir.Table:
    """The months asked for, each with the first month of its trailing 12-month window and its
    last day (for stock metrics)."""
    distinct = sorted(set(periods))
    return ibis.memtable(
        pa.table(
            {
                "month": pa.array(distinct, pa.date32()),
                "window_first": pa.array(
                    [_add_months(m, 1 - REPURCHASE_WINDOW_MONTHS) for m in distinct], pa.date32()
                ),
                "last_day": pa.array(
                    [_add_months(m, 1) - timedelta(days=1) for m in distinct], pa.date32()
                ),
            }
        )
    )


# -- inputs ---------------------------------------------------------------------------------


def _grades_table(sources: Sources) -> pa.Table | None:
    grades = sources.extra.get("grades")
    return None if grades is None else _conform_grades(grades)


def _conform_grades(grades: pa.Table) -> pa.Table:
    missing = [f.name for f in GRADES_SCHEMA if f.name not in grades.column_names]
    if missing:
        raise ValueError(f"the grades table lacks column(s): {', '.join(missing)}")
    columns = [grades.column(f.name).cast(f.type) for f in GRADES_SCHEMA]
    return pa.table(columns, schema=GRADES_SCHEMA)


def _source_table(sources: Sources, name: str) -> pa.Table | None:
    return _grades_table(sources) if name == "grades" else sources.table(name)


class _Tables:
    """The sources as Ibis tables, each converted once and only when a metric reads it."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    @cached_property
    def customers(self) -> ir.Table:
        return memtable(self.sources.customers)

    @cached_property
    def orders(self) -> ir.Table:
        orders = memtable(self.sources.orders)
        return orders.filter(orders.placed_at.notnull()).mutate(month=_month_of(orders.placed_at))

    @cached_property
    def live_orders(self) -> ir.Table:
        """Non-cancelled orders (see the module's docstring), with the month they were placed in."""
        o = self.orders
        cancelled = ibis.ifelse(
            o.cancelled_at.isnull(),
            o.status == "cancelled",
            _month_of(o.cancelled_at) <= o.month,
        ).fill_null(False)
        return o.filter(~cancelled)

    @cached_property
    def first_live_month(self) -> ir.Table:
        """customer_id → the month of the customer's first non-cancelled order."""
        live = self.live_orders
        return live.group_by("customer_id").aggregate(first_month=live.month.min())

    @cached_property
    def returns(self) -> ir.Table:
        return memtable(self.sources.returns)

    @cached_property
    def tickets(self) -> ir.Table:
        return memtable(self.sources.tickets)

    @cached_property
    def grades(self) -> ir.Table:
        grades = _grades_table(self.sources)
        return ibis.memtable(grades if grades is not None else GRADES_SCHEMA.empty_table())


# -- rows behind each metric ----------------------------------------------------------------
#
# Each builder returns, for the months in ``wanted``, the rows a metric adds up: ``month``,
# ``customer_id``, ``numerator`` and ``denominator`` (float64) and ``counted`` (the row's
# customer is behind the numerator, for ``drill``).

Rows = Callable[[_Tables, ir.Table], ir.Table]


def _rows(table: ir.Table, numerator: Any, denominator: Any, counted: Any) -> ir.Table:
    """A builder's rows from ``table`` (with ``month`` and ``customer_id``); the other columns
    are expressions on it or constants."""
    return table.select(
        month=table.month,
        customer_id=table.customer_id,
        numerator=_value(numerator, "float64"),
        denominator=_value(denominator, "float64"),
        counted=_value(counted, "boolean"),
    )


def _value(value: Any, dtype: str) -> ir.Value:
    return value.cast(dtype) if isinstance(value, ir.Value) else ibis.literal(value, dtype)


def _seconds_between(start: ir.TimestampValue, end: ir.TimestampValue) -> ir.FloatingValue:
    return end.epoch_seconds().cast("float64") - start.epoch_seconds().cast("float64")


def _customers_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    o = t.orders
    first_order = o.group_by("customer_id").aggregate(first_order_at=o.placed_at.min())
    c = t.customers.left_join(first_order, "customer_id").drop("customer_id_right")
    c = c.select("customer_id", known_at=c.registered_at.fill_null(c.first_order_at))
    c = c.filter(c.known_at.notnull())
    c = c.select("customer_id", known_month=_month_of(c.known_at))
    joined = c.join(wanted, c.known_month <= wanted.month)
    return _rows(joined, 1.0, None, True)


def _new_customers_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    first = t.first_live_month
    joined = first.join(wanted, first.first_month == wanted.month)
    return _rows(joined, 1.0, None, True)


def _returning_customers_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    live = t.live_orders
    active = live.select("customer_id", "month").distinct()
    active = active.join(wanted.select("month"), "month")
    joined = active.join(t.first_live_month, "customer_id")
    joined = joined.filter(joined.first_month < joined.month)
    return _rows(joined, 1.0, None, True)


def _repurchase_rate_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    live = t.live_orders.select("customer_id", placed_month=t.live_orders.month)
    joined = live.join(
        wanted, [live.placed_month >= wanted.window_first, live.placed_month <= wanted.month]
    )
    buyers = joined.group_by("month", "customer_id").aggregate(orders=joined.customer_id.count())
    repeat = buyers.orders >= 2
    return _rows(buyers, repeat.cast("int64"), 1.0, repeat)


def _live_in_wanted(t: _Tables, wanted: ir.Table) -> ir.Table:
    return t.live_orders.join(wanted.select("month"), "month")


def _average_order_value_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    live = _live_in_wanted(t, wanted)
    # Money in whole cents: an integer sum is exact whatever order the engine adds in, so one
    # month alone and the same month inside a range agree to the last digit.
    cents = (live.total_amount * 100).round().cast("int64")
    return _rows(live, cents, 1.0, True)


def _purchase_frequency_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    live = _live_in_wanted(t, wanted)
    buyers = live.group_by("month", "customer_id").aggregate(orders=live.customer_id.count())
    return _rows(buyers, buyers.orders, 1.0, True)


def _return_rate_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    o = t.orders
    delivered = o.filter(o.delivered_at.notnull()).select(
        "order_id", "customer_id", "delivered_at", month=_month_of(o.delivered_at)
    )
    delivered = delivered.join(wanted.select("month"), "month")
    r = t.returns
    requests = r.filter(r.kind.isin(RETURN_KINDS)).select(
        request_order_id=r.order_id, requested_at=r.requested_at
    )
    matched = delivered.join(requests, delivered.order_id == requests.request_order_id)
    in_window = (
        _seconds_between(matched.delivered_at, matched.requested_at)
        <= RETURN_WINDOW_DAYS * _DAY_SECONDS
    )
    returned = matched.filter(in_window).select(returned_order_id=matched.order_id).distinct()
    flagged = delivered.left_join(returned, delivered.order_id == returned.returned_order_id)
    is_returned = flagged.returned_order_id.notnull()
    return _rows(flagged, is_returned.cast("int64"), 1.0, is_returned)


def _tickets_opened_in(t: _Tables, wanted: ir.Table) -> ir.Table:
    tickets = t.tickets.filter(t.tickets.opened_at.notnull())
    tickets = tickets.mutate(month=_month_of(tickets.opened_at))
    return tickets.join(wanted.select("month"), "month")


def _complaint_rate_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    opened = _tickets_opened_in(t, wanted)
    complaints = opened.filter(opened.is_complaint.fill_null(False))
    orders = _live_in_wanted(t, wanted)
    return _rows(complaints, 1.0, 0.0, True).union(_rows(orders, 0.0, 1.0, False), distinct=False)


def _csat_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    tickets = t.tickets
    rated = tickets.filter(tickets.resolved_at.notnull() & tickets.satisfaction.notnull())
    rated = rated.mutate(month=_month_of(rated.resolved_at))
    rated = rated.join(wanted.select("month"), "month")
    satisfied = rated.satisfaction >= SATISFIED_FROM
    return _rows(rated, satisfied.cast("int64"), 1.0, satisfied)


def _first_response_minutes_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    opened = _tickets_opened_in(t, wanted)
    answered = opened.filter(opened.first_response_at.notnull())
    # Whole seconds as integers, summed exactly (see the average order value), then minutes.
    seconds = _seconds_between(answered.opened_at, answered.first_response_at).round()
    return _rows(answered, seconds.cast("int64"), 1.0, True)


def _resolved_within(tickets: ir.Table, seconds: int) -> ir.BooleanValue:
    elapsed = _seconds_between(tickets.opened_at, tickets.resolved_at)
    return (elapsed <= seconds).fill_null(False)


def _resolution_rate_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    opened = _tickets_opened_in(t, wanted)
    resolved = _resolved_within(opened, RESOLUTION_WINDOW_DAYS * _DAY_SECONDS)
    return _rows(opened, resolved.cast("int64"), 1.0, resolved)


def _sla_attainment_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    opened = _tickets_opened_in(t, wanted)
    answered = _seconds_between(opened.opened_at, opened.first_response_at)
    met = (answered <= SLA_FIRST_RESPONSE_MINUTES * 60).fill_null(False) & _resolved_within(
        opened, SLA_RESOLUTION_HOURS * 3600
    )
    return _rows(opened, met.cast("int64"), 1.0, met)


def _held_on_last_days(t: _Tables, wanted: ir.Table) -> ir.Table:
    """month, customer_id, grade: the grade each customer held on each month's last day."""
    return _held(t.grades, wanted, "last_day")


def _held(grades: ir.Table, days: ir.Table, day: str) -> ir.Table:
    """The grade each customer held on ``days[day]``, per row of ``days`` (its other columns
    kept as the group). Overlapping rows, which a well-kept history has not, resolve to the
    one that started last."""
    g = grades.filter(grades.grade.isin(GRADES))
    joined = g.join(
        days,
        [
            g.valid_from <= days[day],
            g.valid_to.isnull() | (g.valid_to > days[day]),
        ],
    )
    keys = [name for name in days.columns if name != day] + ["customer_id"]
    return joined.group_by(keys).aggregate(grade=joined.grade.argmax(joined.valid_from))


def _core_share_rows(t: _Tables, wanted: ir.Table) -> ir.Table:
    held = _held_on_last_days(t, wanted.select("month", "last_day"))
    core = held.grade == "core"
    return _rows(held, core.cast("int64"), 1.0, core)


def _grade_rows(grade: str) -> Rows:
    def rows(t: _Tables, wanted: ir.Table) -> ir.Table:
        held = _held_on_last_days(t, wanted.select("month", "last_day"))
        match = held.grade == grade
        # The denominator (everyone graded) only tells a month nobody was graded in (null)
        # from one with no customer of this grade (0); ``compute`` does not return it.
        return _rows(held, match.cast("int64"), 1.0, match)

    return rows


_ROWS: dict[str, Rows] = {
    "customers": _customers_rows,
    "new_customers": _new_customers_rows,
    "returning_customers": _returning_customers_rows,
    "repurchase_rate": _repurchase_rate_rows,
    "average_order_value": _average_order_value_rows,
    "purchase_frequency": _purchase_frequency_rows,
    "return_rate": _return_rate_rows,
    "complaint_rate": _complaint_rate_rows,
    "csat": _csat_rows,
    "first_response_minutes": _first_response_minutes_rows,
    "resolution_rate": _resolution_rate_rows,
    "sla_attainment": _sla_attainment_rows,
    "core_share": _core_share_rows,
    "grade_core": _grade_rows("core"),
    "grade_potential": _grade_rows("potential"),
    "grade_ordinary": _grade_rows("ordinary"),
}
#: What the numerator's sum is divided by: money is summed in whole cents, time in seconds.
_NUMERATOR_DIVISOR = {"average_order_value": 100.0, "first_response_minutes": 60.0}
_GRADE_COUNTS = frozenset({"grade_core", "grade_potential", "grade_ordinary"})

OUTPUT_SCHEMA = pa.schema(
    [
        ("period", pa.date32()),
        ("value", pa.float64()),
        ("numerator", pa.float64()),
        ("denominator", pa.float64()),
    ]
)


def _lookup(metric: str) -> Metric:
    found = METRICS.get(metric)
    if found is None:
        raise ValueError(f"no metric named {metric!r}; the metrics are: {', '.join(METRICS)}")
    return found


# -- public ---------------------------------------------------------------------------------


def has_data(sources: Sources, metric: str) -> bool:
    """Whether the shop has the data ``metric`` needs: each table it reads has rows (and, for
    some, the column it hinges on has a value), e.g. no tickets → no CSAT. The grade metrics
    need ``sources.extra["grades"]``."""
    info = _lookup(metric)
    required = _REQUIRED.get(metric, tuple((name, None) for name in info.needs))
    for name, column in required:
        table = _source_table(sources, name)
        if table is None or table.num_rows == 0:
            return False
        if column is not None and table.column(column).null_count == table.num_rows:
            return False
    return True


def compute(sources: Sources, metric: str, months: Sequence[date]) -> pa.Table:
    """``metric`` for each of ``months`` (any day of a month stands for the month), in the
    order asked: ``period`` (date32, the month's first day), ``value``, ``numerator``,
    ``denominator`` (float64).

    Ratios and means give ``value = numerator / denominator``, null when the denominator is 0;
    money and minutes give the numerator in currency units and minutes. Counts give
    ``numerator = value`` and a null denominator; they are null when the shop lacks the data
    (``has_data``), and the grade counts also for a month nobody held a grade in.
    """
    info = _lookup(metric)
    periods = [_first_day(month) for month in months]
    if not periods:
        return OUTPUT_SCHEMA.empty_table()
    rows = _ROWS[metric](_Tables(sources), _wanted(periods))
    totals = rows.group_by("month").aggregate(
        numerator=rows.numerator.sum(), denominator=rows.denominator.sum()
    )
    fetched = ibis.duckdb.connect().to_pyarrow(totals).to_pylist()
    by_month = {row["month"]: row for row in fetched}
    divisor = _NUMERATOR_DIVISOR.get(metric, 1.0)
    is_count = info.unit == "count"
    available = has_data(sources, metric) if is_count else True

    values: list[float | None] = []
    numerators: list[float | None] = []
    denominators: list[float | None] = []
    for period in periods:  # one iteration per month asked for, not per data row
        found = by_month.get(period, {})
        numerator = (found.get("numerator") or 0.0) / divisor
        denominator = found.get("denominator") or 0.0
        if is_count:
            ungraded = metric in _GRADE_COUNTS and denominator == 0
            value = None if not available or ungraded else numerator
            values.append(value)
            numerators.append(value)
            denominators.append(None)
        else:
            values.append(numerator / denominator if denominator else None)
            numerators.append(numerator)
            denominators.append(denominator)
    return pa.table(
        [pa.array(periods, pa.date32()), values, numerators, denominators], schema=OUTPUT_SCHEMA
    )


def drill(sources: Sources, metric: str, month: date) -> pa.Array:
    """The customers behind ``metric``'s numerator in ``month``, as sorted int64 ids: the
    customers counted, or those of the numerator's rows (e.g. the customers with a returned
    order for the return rate, with a satisfied rating for CSAT, with an order for the
    average order value)."""
    _lookup(metric)
    rows = _ROWS[metric](_Tables(sources), _wanted([_first_day(month)]))
    ids = rows.filter(rows.counted & rows.customer_id.notnull()).select("customer_id").distinct()
    table = ibis.duckdb.connect().to_pyarrow(ids.order_by("customer_id"))
    return table.column("customer_id").combine_chunks().cast(pa.int64())


COHORT_SCHEMA = pa.schema(
    [
        ("cohort", pa.date32()),
        ("months_since", pa.int32()),
        ("customers", pa.int64()),
        ("active", pa.int64()),
        ("rate", pa.float64()),
    ]
)


def cohort_retention(sources: Sources, first: date, last: date) -> pa.Table:
    """Monthly cohorts from ``first``'s month through ``last``'s: a cohort is the customers
    whose first non-cancelled order was placed in that month. One row per cohort and month
    since (0 up to ``last``'s month), sorted: the cohort's size, how many of them placed a
    non-cancelled order in that month (all of them at 0) and the share; empty cohorts have a
    null rate."""
    first, last = _first_day(first), _first_day(last)
    cohorts = months(first, _add_months(last, 1))
    if not cohorts:
        return COHORT_SCHEMA.empty_table()
    t = _Tables(sources)
    members = t.first_live_month
    members = members.filter((members.first_month >= first) & (members.first_month <= last))
    live = t.live_orders
    active = live.filter(live.month <= last).select("customer_id", "month").distinct()
    joined = active.join(members, "customer_id")
    since = (joined.month.year() - joined.first_month.year()) * 12 + (
        joined.month.month() - joined.first_month.month()
    )
    counts = joined.group_by(cohort=joined.first_month, months_since=since).aggregate(
        active=joined.customer_id.count()
    )
    sizes = members.group_by(cohort=members.first_month).aggregate(
        customers=members.customer_id.count()
    )
    con = ibis.duckdb.connect()
    size_of = {row["cohort"]: row["customers"] for row in con.to_pyarrow(sizes).to_pylist()}
    active_in = {
        (row["cohort"], row["months_since"]): row["active"]
        for row in con.to_pyarrow(counts).to_pylist()
    }
    grid = [
        (cohort, since_index)
        for cohort in cohorts
        for since_index in range(_months_between(cohort, last) + 1)
    ]
    sizes_column = [size_of.get(cohort, 0) for cohort, _ in grid]
    active_column = [active_in.get(cell, 0) for cell in grid]
    return pa.table(
        [
            pa.array([cohort for cohort, _ in grid], pa.date32()),
            pa.array([since_index for _, since_index in grid], pa.int32()),
            pa.array(sizes_column, pa.int64()),
            pa.array(active_column, pa.int64()),
            pa.array(
                [a / s if s else None for a, s in zip(active_column, sizes_column, strict=True)],
                pa.float64(),
            ),
        ],
        schema=COHORT_SCHEMA,
    )


def grade_movement(grades: pa.Table, before: date, after: date) -> dict[str, Any]:
    """How customers moved between the grade they held on ``before`` and on ``after``
    (``valid_from`` inclusive, ``valid_to`` exclusive).

    ``matrix[i][j]`` counts the customers graded ``grades[i]`` on ``before`` and
    ``grades[j]`` on ``after``; ``up``/``down``/``unchanged`` split them by direction (core is
    the highest grade); ``new`` holds a grade only on ``after``, ``left`` only on ``before``.
    """
    days = ibis.memtable(
        pa.table({"side": ["before", "after"], "day": pa.array([before, after], pa.date32())})
    )
    held = _held(ibis.memtable(_conform_grades(grades)), days, "day")
    was = held.filter(held.side == "before").select("customer_id", before_grade=held.grade)
    now = held.filter(held.side == "after").select("customer_id", after_grade=held.grade)
    pairs = was.outer_join(now, was.customer_id == now.customer_id)
    counts = pairs.group_by("before_grade", "after_grade").aggregate(customers=pairs.count())
    index = {grade: position for position, grade in enumerate(GRADES)}
    matrix = [[0] * len(GRADES) for _ in GRADES]
    result: dict[str, Any] = {"grades": list(GRADES), "matrix": matrix}
    result.update(up=0, down=0, unchanged=0, new=0, left=0)
    for row in ibis.duckdb.connect().to_pyarrow(counts).to_pylist():  # at most 15 groups
        was_grade, now_grade, count = row["before_grade"], row["after_grade"], row["customers"]
        if was_grade is None:
            result["new"] += count
        elif now_grade is None:
            result["left"] += count
        else:
            matrix[index[was_grade]][index[now_grade]] += count
            change = _GRADE_LEVEL[now_grade] - _GRADE_LEVEL[was_grade]
            key = "up" if change > 0 else "down" if change < 0 else "unchanged"
            result[key] += count
    return result
