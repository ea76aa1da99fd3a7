"""The intelligence pipeline's input (``patron.intelligence.sources``) read from the OLTP
database (``extract.fetch_arrow``: ADBC on PostgreSQL) and from the event lake.

Each table is one SELECT straight into Arrow, then normalised once here: timestamps to
``timestamp[us, UTC]`` whichever database it was, money to ``float64``, and the columns the
contract wants (``conform``). Payments and returns get their customer from their order.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import connection

from patron.commerce.models import Order, Payment, ReturnRequest, Review
from patron.customer.models import Customer
from patron.intelligence.sources import Sources, conform
from patron.scoring.extract import fetch_arrow, utc
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


def _fetch(sql: str, *, times: tuple[str, ...] = ()) -> pa.Table:
    table = fetch_arrow(sql)
    for name in times:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, _timestamps(table.column(name)))
    return table


def _customers() -> pa.Table:
    sql = (
        "SELECT id AS customer_id, source, external_id, kind, "
        f"{_time('registered_at')} AS registered_at, province, registration_channel, "
        f"company_size FROM {Customer._meta.db_table}"
    )
    return conform("customers", _fetch(sql, times=("registered_at",)))


def _orders() -> pa.Table:
    times = ("placed_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at")
    sql = (
        "SELECT id AS order_id, customer_id, status, placed_at, "
        + ", ".join(f"{_time(name)} AS {name}" for name in times[1:])
        + f", {_money('total_amount')} AS total_amount, "
        f"{_money('discount_amount')} AS discount_amount, coupon_code, currency "
        # (customer, placed_at) is indexed; sorted input takes the models' fast paths
        f"FROM {Order._meta.db_table} ORDER BY customer_id, placed_at"
    )
    return conform("orders", _fetch(sql, times=times))


def _payments() -> pa.Table:
    sql = (
        "SELECT p.id AS payment_id, p.order_id, o.customer_id, p.method, p.status, "
        f'{_money("p.amount")} AS amount, COALESCE(p.paid_at, o.placed_at) AS "at" '
        f"FROM {Payment._meta.db_table} p JOIN {Order._meta.db_table} o ON o.id = p.order_id"
    )
    return conform("payments", _fetch(sql, times=("at",)))


def _returns() -> pa.Table:
    sql = (
        "SELECT r.id AS return_id, r.order_id, o.customer_id, r.kind, r.status, r.reason, "
        f"r.requested_at, {_money('r.refund_amount')} AS refund_amount, "
        f"{_time('o.delivered_at')} AS delivered_at "
        f"FROM {ReturnRequest._meta.db_table} r "
        f"JOIN {Order._meta.db_table} o ON o.id = r.order_id"
    )
    return conform("returns", _fetch(sql, times=("requested_at", "delivered_at")))


def _reviews() -> pa.Table:
    sql = (
        'SELECT id AS review_id, customer_id, order_id, product_id, rating, title, "text", '
        f"created_at, helpful_votes FROM {Review._meta.db_table}"
    )
    table = _fetch(sql, times=("created_at",))
    title = pc.cast(table.column("title"), pa.string())
    body = pc.cast(table.column("text"), pa.string())
    text = pc.utf8_trim_whitespace(pc.binary_join_element_wise(title, body, " "))
    return conform("reviews", table.set_column(table.schema.get_field_index("text"), "text", text))


def _tickets() -> pa.Table:
    times = ("opened_at", "first_response_at", "resolved_at")
    sql = (
        "SELECT id AS ticket_id, customer_id, channel, category, is_complaint, opened_at, "
        f"{_time('first_response_at')} AS first_response_at, "
        f"{_time('resolved_at')} AS resolved_at, satisfaction FROM {Ticket._meta.db_table}"
    )
    return conform("tickets", _fetch(sql, times=times))


def _certifications() -> pa.Table:
    """Every certification ever granted, with its level's rank: the pipeline picks the ones in
    force at its cut-off (``pipeline.certification_rank``)."""
    from patron.certification.models import Certification, CertificationLevel

    sql = (
        "SELECT k.customer_id, l.rank, k.granted_at, k.expires_at, "
        f"{_time('k.ended_at')} AS ended_at "
        f"FROM {Certification._meta.db_table} k "
        f"JOIN {CertificationLevel._meta.db_table} l ON l.id = k.level_id"
    )
    table = _fetch(sql, times=("granted_at", "expires_at", "ended_at"))
    return table.set_column(0, "customer_id", pc.cast(table.column("customer_id"), pa.int64()))


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
    return Sources(
        customers=_customers(),
        orders=_orders(),
        payments=_payments(),
        returns=_returns(),
        reviews=_reviews(),
        tickets=_tickets(),
        events=events_glob(lake_dir),
        extra={"certifications": _certifications()},
    )
