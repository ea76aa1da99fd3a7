"""The intelligence pipeline's input (``patron.intelligence.sources``) read from the OLTP
database (``extract.fetch_arrow_many``: ADBC) and from the event lake.

Each table is one SELECT straight into Arrow, then normalised once here: timestamps to
``timestamp[us, UTC]`` whichever database it was, money to ``float64``, and the columns the
contract wants (``conform``). Payments and returns get their customer from their order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    """One table of the extract: its SELECT, its timestamp columns, and the last touch."""

    sql: str
    times: tuple[str, ...] = ()
    finish: Callable[[pa.Table], pa.Table] = lambda table: table

    def table(self, fetched: pa.Table) -> pa.Table:
        for name in self.times:
            index = fetched.schema.get_field_index(name)
            fetched = fetched.set_column(index, name, _timestamps(fetched.column(name)))
        return self.finish(fetched)


def _conformed(name: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: conform(name, table)


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
        "SELECT p.id AS payment_id, p.order_id, o.customer_id, p.method, p.status, "
        f'{_money("p.amount")} AS amount, COALESCE(p.paid_at, o.placed_at) AS "at" '
        f"FROM {Payment._meta.db_table} p JOIN {Order._meta.db_table} o ON o.id = p.order_id"
    )
    return _Read(sql, ("at",), _conformed("payments"))


def _returns() -> _Read:
    sql = (
        "SELECT r.id AS return_id, r.order_id, o.customer_id, r.kind, r.status, r.reason, "
        f"r.requested_at, {_money('r.refund_amount')} AS refund_amount, "
        f"{_time('o.delivered_at')} AS delivered_at "
        f"FROM {ReturnRequest._meta.db_table} r "
        f"JOIN {Order._meta.db_table} o ON o.id = r.order_id"
    )
    return _Read(sql, ("requested_at", "delivered_at"), _conformed("returns"))


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
    SQLite database by a child process (``extract.fetch_arrow_many``)."""
    reads = {name: READS[name]() for name in names or READS}
    order_rows = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
    fetched = fetch_arrow_many([read.sql for read in reads.values()], expected_rows=order_rows)
    return {
        name: read.table(table) for (name, read), table in zip(reads.items(), fetched, strict=True)
    }


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
