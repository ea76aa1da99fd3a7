"""Formatting columns for the import files and writing CSV / Parquet deterministically."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from patron.demo.clock import NA, UTC_OFFSET

Column = Sequence[str]

#: Column order of every import kind, exactly as in docs/import-formats.md.
HEADERS: dict[str, tuple[str, ...]] = {
    "categories": (
        "external_id",
        "name",
        "name_en",
        "parent_external_id",
        "is_no_reason_return_exempt",
    ),
    "products": ("external_id", "name", "category_external_id", "price", "currency"),
    "customers": (
        "external_id",
        "name",
        "kind",
        "gender",
        "birthday",
        "phone",
        "email",
        "id_number",
        "province",
        "city",
        "district",
        "address",
        "postal_code",
        "source_channel",
        "registration_channel",
        "registered_at",
        "company_name",
        "company_size",
        "industry",
    ),
    "consents": (
        "customer_external_id",
        "purpose",
        "channel",
        "is_granted",
        "recorded_at",
        "evidence",
        "external_id",
    ),
    "orders": (
        "external_id",
        "customer_external_id",
        "status",
        "placed_at",
        "paid_at",
        "shipped_at",
        "delivered_at",
        "estimated_delivery_at",
        "cancelled_at",
        "total_amount",
        "discount_amount",
        "shipping_fee",
        "currency",
        "coupon_code",
        "channel",
        "store",
        "ship_province",
        "ship_city",
    ),
    "order-lines": (
        "order_external_id",
        "line_no",
        "external_id",
        "product_external_id",
        "product_name",
        "quantity",
        "unit_price",
        "amount",
        "currency",
    ),
    "payments": (
        "order_external_id",
        "external_id",
        "method",
        "status",
        "amount",
        "currency",
        "installments",
        "paid_at",
    ),
    "returns": (
        "external_id",
        "order_external_id",
        "line_no",
        "kind",
        "status",
        "reason",
        "requested_at",
        "resolved_at",
        "refund_amount",
        "currency",
    ),
    "reviews": (
        "external_id",
        "customer_external_id",
        "order_external_id",
        "product_external_id",
        "rating",
        "title",
        "text",
        "created_at",
        "answered_at",
        "helpful_votes",
    ),
    "shipments": (
        "external_id",
        "order_external_id",
        "carrier",
        "tracking_number",
        "status",
        "shipped_at",
        "estimated_delivery_at",
        "delivered_at",
    ),
    "tickets": (
        "external_id",
        "customer_external_id",
        "order_external_id",
        "channel",
        "category",
        "subject",
        "status",
        "priority",
        "is_complaint",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "satisfaction",
    ),
    "events": (
        "customer_external_id",
        "event_type",
        "occurred_at",
        "item_external_id",
        "category_external_id",
        "query",
        "session_id",
        "device_id",
    ),
}
KINDS: tuple[str, ...] = tuple(HEADERS)


def iso_times(t: NDArray[np.int64]) -> list[str]:
    """ISO 8601 Beijing times with explicit offset (``2025-03-01T14:05:00+08:00``); NA -> ''."""
    ok = t != NA
    local = (np.where(ok, t, 0) + UTC_OFFSET).astype("datetime64[s]")
    text = np.char.add(np.datetime_as_string(local, unit="s"), "+08:00")
    return np.where(ok, text, "").tolist()


def iso_dates(days: NDArray[np.int64]) -> list[str]:
    """Dates (days since 1970-01-01) as ``YYYY-MM-DD``; NA -> ''."""
    ok = days != NA
    text = np.datetime_as_string(np.where(ok, days, 0).astype("datetime64[D]"), unit="D")
    return np.where(ok, text, "").tolist()


def money(cents: NDArray[np.int64], present: NDArray[np.bool_] | None = None) -> list[str]:
    """Decimal text with two places (``199.00``); cells where ``present`` is false are ''."""
    values = cents.tolist()
    if present is None:
        return [f"{c // 100}.{c % 100:02d}" for c in values]
    return [
        f"{c // 100}.{c % 100:02d}" if p else ""
        for c, p in zip(values, present.tolist(), strict=True)
    ]


def ints(values: NDArray[np.int64], present: NDArray[np.bool_] | None = None) -> list[str]:
    if present is None:
        return [str(v) for v in values.tolist()]
    return [str(v) if p else "" for v, p in zip(values.tolist(), present.tolist(), strict=True)]


def pick(labels: Sequence[str], codes: NDArray[np.int64]) -> list[str]:
    """Map integer codes to labels; negative codes give ''."""
    table = [*labels, ""]
    return [table[c] for c in np.where(codes < 0, len(labels), codes).tolist()]


def const(value: str, n: int) -> list[str]:
    return [value] * n


def write_csv(path: Path, kind: str, columns: Mapping[str, Column]) -> int:
    """Write one import file (UTF-8, header row, ``\\n`` line ends); returns the row count."""
    header = HEADERS[kind]
    if tuple(columns) != header:
        raise ValueError(f"{kind}: columns {tuple(columns)} do not match the contract {header}")
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"{kind}: columns of unequal length {sorted(lengths)}")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(zip(*columns.values(), strict=True))
    return lengths.pop()


def write_events_parquet(path: Path, table: pa.Table) -> int:
    if tuple(table.column_names) != HEADERS["events"]:
        raise ValueError("events: columns do not match the contract")
    pq.write_table(table, path, compression="zstd")
    return table.num_rows
