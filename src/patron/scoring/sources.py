"""The intelligence pipeline's input (``patron.intelligence.sources``) read from the OLTP
database (``extract.fetch_arrow_many``: ADBC) and from the event lake.

Each table is one SELECT straight into Arrow, then normalised once here: timestamps to
``timestamp[us, UTC]`` whichever database it was, money to ``float64``, and the columns the
contract wants (``conform``). Payments and returns get their customer from their order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import connection

from patron.commerce.models import Order, Payment, ReturnRequest, Review
from patron.customer.models import Customer
from patron.intelligence.sources import Sources, conform
from patron.scoring.extract import fetch_arrow_many, utc
from patron.service.models import Ticket

#: The lake's behaviour events, relative to the lake folder (``patron.ingest.lake``).
EVENTS_GLOB = "events/date=*/*.parquet"


def _money(column: str) -> str:
    kind = "DOUBLE PRECISION" if connection.vendor == "postgresql" else "REAL"
    return f"CAST({column} AS {kind})"


def _time(column: str) -> str:
    """A nullable timestamp for the SELECT: on SQLite '' for none keeps the column text
    whatever its first rows hold; ``_timestamps`` turns it back into NULL."""
    return column if connection.vendor == "postgresql" else f"COALESCE({column}, '')"


def _timestamps(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Any database's timestamps as ``timestamp[us, UTC]``: PostgreSQL's as they are, SQLite's
    text (naive UTC, '' for none) parsed."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return utc(column)


@dataclass(frozen=True)
class _Read:
    """One table of the extract: its SELECT, its timestamp columns, and the last touch (which
    may take columns from the orders, read before: ``from_orders``)."""

    sql: str
    times: tuple[str, ...] = ()
    finish: Callable[[pa.Table], pa.Table] = lambda table: table
    from_orders: Mapping[str, str] = field(default_factory=dict)  # column -> order column

    def table(self, fetched: pa.Table, orders: pa.Table | None) -> pa.Table:
        for name in self.times:
            index = fetched.schema.get_field_index(name)
            fetched = fetched.set_column(index, name, _timestamps(fetched.column(name)))
        if self.from_orders:
            assert orders is not None
            fetched = _join_orders(fetched, orders, self.from_orders)
        return self.finish(fetched)


def _join_orders(table: pa.Table, orders: pa.Table, columns: Mapping[str, str]) -> pa.Table:
    """``table``'s rows whose order exists (an inner join on ``order_id``), with the given
    columns of their order added. Joined here, not in SQL: both databases took seconds to
    join millions of payments to their orders, Arrow a fraction of one."""
    position = pc.index_in(
        pc.cast(table.column("order_id"), pa.int64()), value_set=orders.column("order_id")
    )
    found = pc.is_valid(position)
    if not pc.all(found).as_py():
        table, position = table.filter(found), position.filter(found)
    for name, column in columns.items():
        table = table.append_column(name, orders.column(column).take(position))
    return table


def _conformed(name: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: conform(name, table)


def _payment_time(table: pa.Table) -> pa.Table:
    """A payment's time: when it was paid, else when its order was placed."""
    at = pc.coalesce(table.column("paid_at"), table.column("placed_at"))
    return conform("payments", table.append_column("at", at))


def _customers() -> _Read:
    sql = (
        "SELECT id AS customer_id, source, external_id, kind, "
        f"{_time('registered_at')} AS registered_at, province, registration_channel, "
        f"company_size FROM {Customer._meta.db_table}"
    )
    return _Read(sql, ("registered_at",), _conformed("customers"))


def _orders() -> _Read:
    times = ("placed_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at")
    sql = (
        "SELECT id AS order_id, customer_id, status, placed_at, "
        + ", ".join(f"{_time(name)} AS {name}" for name in times[1:])
        + f", {_money('total_amount')} AS total_amount, "
        f"{_money('discount_amount')} AS discount_amount, coupon_code, currency "
        # (customer, placed_at) is indexed; sorted input takes the models' fast paths
        f"FROM {Order._meta.db_table} ORDER BY customer_id, placed_at"
    )
    return _Read(sql, times, _conformed("orders"))


def _payments() -> _Read:
    sql = (
        f"SELECT id AS payment_id, order_id, method, status, {_money('amount')} AS amount, "
        f"{_time('paid_at')} AS paid_at FROM {Payment._meta.db_table}"
    )
    orders = {"customer_id": "customer_id", "placed_at": "placed_at"}
    return _Read(sql, ("paid_at",), _payment_time, orders)


def _returns() -> _Read:
    sql = (
        "SELECT id AS return_id, order_id, kind, status, reason, requested_at, "
        f"{_money('refund_amount')} AS refund_amount FROM {ReturnRequest._meta.db_table}"
    )
    orders = {"customer_id": "customer_id", "delivered_at": "delivered_at"}
    return _Read(sql, ("requested_at",), _conformed("returns"), orders)


def _review_text(table: pa.Table) -> pa.Table:
    title = pc.cast(table.column("title"), pa.string())
    body = pc.cast(table.column("text"), pa.string())
    text = pc.utf8_trim_whitespace(pc.binary_join_element_wise(title, body, " "))
    return conform("reviews", table.set_column(table.schema.get_field_index("text"), "text", text))


def _reviews() -> _Read:
    sql = (
        'SELECT id AS review_id, customer_id, order_id, product_id, rating, title, "text", '
        f"created_at, helpful_votes FROM {Review._meta.db_table}"
    )
    return _Read(sql, ("created_at",), _review_text)


def _tickets() -> _Read:
    times = ("opened_at", "first_response_at", "resolved_at")
    sql = (
        "SELECT id AS ticket_id, customer_id, channel, category, is_complaint, opened_at, "
        f"{_time('first_response_at')} AS first_response_at, "
        f"{_time('resolved_at')} AS resolved_at, satisfaction FROM {Ticket._meta.db_table}"
    )
    return _Read(sql, times, _conformed("tickets"))


def _customer_ids(table: pa.Table) -> pa.Table:
    return table.set_column(0, "customer_id", pc.cast(table.column("customer_id"), pa.int64()))


def _certifications() -> _Read:
    """Every certification ever granted, with its level's rank: the pipeline picks the ones in
    force at its cut-off (``pipeline.certification_rank``)."""
    from patron.certification.models import Certification, CertificationLevel

    sql = (
        "SELECT k.customer_id, l.rank, k.granted_at, k.expires_at, "
        f"{_time('k.ended_at')} AS ended_at "
        f"FROM {Certification._meta.db_table} k "
        f"JOIN {CertificationLevel._meta.db_table} l ON l.id = k.level_id"
    )
    return _Read(sql, ("granted_at", "expires_at", "ended_at"), _customer_ids)


#: The extract: every table the pipeline reads from the OLTP database, by name.
READS: dict[str, Callable[[], _Read]] = {
    "customers": _customers,
    "orders": _orders,
    "payments": _payments,
    "returns": _returns,
    "reviews": _reviews,
    "tickets": _tickets,
    "certifications": _certifications,
}


def read_tables(*names: str) -> dict[str, pa.Table]:
    """These tables of the extract (all of them without names), read in one go: on a large
    SQLite database by a child process (``extract.fetch_arrow_many``). The orders are read
    too when a table takes columns from them."""
    wanted = list(names or READS)
    reads = {name: READS[name]() for name in READS if name in wanted}
    if any(read.from_orders for read in reads.values()) and "orders" not in reads:
        reads = {"orders": _orders(), **reads}
    order_rows = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
    fetched = fetch_arrow_many([read.sql for read in reads.values()], expected_rows=order_rows)
    tables: dict[str, pa.Table] = {}
    for (name, read), table in zip(reads.items(), fetched, strict=True):
        tables[name] = read.table(table, tables.get("orders"))
    return {name: tables[name] for name in wanted}


def events_glob(lake_dir: Path | None = None) -> str | None:
    """The lake's event files as a glob for ``read_parquet``, or None when there are none."""
    lake = Path(lake_dir if lake_dir is not None else settings.LAKE_DIR)
    if next(lake.glob(EVENTS_GLOB), None) is None:
        return None
    return str(lake / EVENTS_GLOB)


def load_sources(*, lake_dir: Path | None = None) -> Sources:
    """Everything the intelligence pipeline reads, as of now (it cuts by date itself).

    ``lake_dir`` defaults to ``settings.LAKE_DIR``; events stay on disk as a glob of Parquet
    files (None without any), so that the pipeline's engine reads them, not Python.
    """
    tables = read_tables()
    certifications = tables.pop("certifications")
    return Sources(**tables, events=events_glob(lake_dir), extra={"certifications": certifications})
