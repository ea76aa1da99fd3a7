"""The input contract of the intelligence pipeline: which tables, which columns, which types.

The pipeline is a pure library (no Django). Whoever feeds it — the OLTP extract through ADBC,
a test building tables by hand, a Spark job reading the lake — hands over Arrow tables with
these columns. Times are UTC timestamps (``timestamp[us, tz=UTC]``), money is ``float64``
(analytics convention; the OLTP keeps Decimal), missing values are nulls.

``events`` is either an Arrow table or a path / glob of Parquet files in the lake layout
(``patron.ingest.lake.EVENT_SCHEMA``); events name customers by ``(source,
customer_external_id)`` and are matched to ``customers`` on ``(source, external_id)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

UTC = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("source", pa.string()),
            ("external_id", pa.string()),
            ("kind", pa.string()),  # individual | business
            ("registered_at", UTC),
            ("province", pa.string()),
            ("registration_channel", pa.string()),
            ("company_size", pa.string()),  # '' for individuals
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("status", pa.string()),  # patron.commerce Order.Status values
            ("placed_at", UTC),
            ("paid_at", UTC),
            ("shipped_at", UTC),
            ("delivered_at", UTC),
            ("cancelled_at", UTC),
            ("total_amount", pa.float64()),
            ("discount_amount", pa.float64()),
            ("coupon_code", pa.string()),  # null or '' when no coupon
            ("currency", pa.string()),
        ]
    ),
    "payments": pa.schema(
        [
            ("payment_id", pa.int64()),
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("method", pa.string()),  # alipay, wechat_pay, card, cod, pay_later, ...
            # succeeded | failed | refunded | chargeback | defaulted | refused
            ("status", pa.string()),
            ("amount", pa.float64()),
            ("at", UTC),  # paid_at, else the order's placed_at
        ]
    ),
    "returns": pa.schema(
        [
            ("return_id", pa.int64()),
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("kind", pa.string()),  # return | exchange | repair | compensation
            ("status", pa.string()),
            ("reason", pa.string()),
            ("requested_at", UTC),
            ("refund_amount", pa.float64()),
            ("delivered_at", UTC),  # the order's delivery, for "returned soon after delivery"
        ]
    ),
    "reviews": pa.schema(
        [
            ("review_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("order_id", pa.int64()),
            ("product_id", pa.int64()),
            ("rating", pa.int64()),  # 1..5
            ("text", pa.string()),  # title and body
            ("created_at", UTC),
            ("helpful_votes", pa.int64()),
        ]
    ),
    "tickets": pa.schema(
        [
            ("ticket_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("channel", pa.string()),
            ("category", pa.string()),
            ("is_complaint", pa.bool_()),
            ("opened_at", UTC),
            ("first_response_at", UTC),
            ("resolved_at", UTC),
            ("satisfaction", pa.int64()),  # CSAT 1..5 or null
        ]
    ),
}


@dataclass
class Sources:
    """Everything the pipeline reads, as of no particular date (the pipeline cuts by date)."""

    customers: pa.Table
    orders: pa.Table
    payments: pa.Table
    returns: pa.Table
    reviews: pa.Table
    tickets: pa.Table
    events: pa.Table | Path | str | None = None
    extra: dict[str, pa.Table] = field(default_factory=dict)

    def table(self, name: str) -> pa.Table:
        return getattr(self, name)


def empty(name: str) -> pa.Table:
    """An empty table of the named source, for shops that have none of it yet."""
    return SCHEMAS[name].empty_table()


def conform(name: str, table: pa.Table) -> pa.Table:
    """Select and cast the contract's columns, in order; a missing column is an error that
    names the table and the column."""
    schema = SCHEMAS[name]
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"source table {name!r} lacks column(s): {', '.join(missing)}")
    return pa.table([table.column(f.name).cast(f.type) for f in schema], schema=schema)
