"""Data leaving the OLTP database as Arrow, through ADBC (no ORM objects on the way).

SQLite hands timestamps over as text and PostgreSQL as UTC timestamps: both are turned into
one shape here, so nothing downstream cares which database it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import connection

# Orders that count as purchases: paid or further along, not cancelled.
PURCHASE_STATUSES = ("paid", "shipped", "delivered", "completed", "returned")


def _connect() -> Any:
    params = connection.settings_dict
    if connection.vendor == "postgresql":
        import adbc_driver_postgresql.dbapi as postgres

        auth = params["USER"] or ""
        if params.get("PASSWORD"):
            auth += f":{params['PASSWORD']}"
        host = params.get("HOST") or "localhost"
        port = params.get("PORT") or 5432
        return postgres.connect(f"postgresql://{auth}@{host}:{port}/{params['NAME']}")
    import adbc_driver_sqlite.dbapi as sqlite

    return sqlite.connect(str(params["NAME"]))


def _utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        return pc.cast(column, pa.timestamp("us", tz="UTC"))
    return pc.cast(pc.cast(column, pa.timestamp("us")), pa.timestamp("us", tz="UTC"))


def purchases() -> pa.Table:
    """Every purchase: ``customer_id``, ``placed_at`` (UTC), ``placed_local`` (the merchant's
    wall-clock time, naive, for calendar days), ``amount`` (float) and ``currency``."""
    amount = (
        "CAST(total_amount AS DOUBLE PRECISION)"
        if connection.vendor == "postgresql"
        else "CAST(total_amount AS REAL)"
    )
    marks = ", ".join(f"'{status}'" for status in PURCHASE_STATUSES)
    sql = (
        f"SELECT customer_id, placed_at, {amount} AS amount, currency FROM commerce_order "
        f"WHERE status IN ({marks})"
    )
    with _connect() as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    placed = _utc(table.column("placed_at"))
    local = pc.local_timestamp(pc.cast(placed, pa.timestamp("us", tz=settings.TIME_ZONE)))
    return pa.table(
        {
            "customer_id": pc.cast(table.column("customer_id"), pa.int64()),
            "placed_at": placed,
            "placed_local": local,
            "amount": pc.cast(table.column("amount"), pa.float64()),
            "currency": pc.cast(table.column("currency"), pa.string()),
        }
    )


@dataclass(frozen=True)
class PurchaseLog:
    """Purchases as numpy arrays for the models: customer, local calendar day, value, currency."""

    customer_ids: np.ndarray
    days: np.ndarray  # datetime64[D], the merchant's calendar days
    amounts: np.ndarray
    currencies: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)


def purchase_log() -> PurchaseLog:
    table = purchases()
    return PurchaseLog(
        customer_ids=table.column("customer_id").to_numpy(),
        days=pc.cast(table.column("placed_local"), pa.timestamp("s"))
        .to_numpy()
        .astype("datetime64[D]"),
        amounts=table.column("amount").to_numpy(),
        currencies=np.asarray(table.column("currency").to_pylist(), dtype=object),
    )


def latest_scores() -> pa.Table:
    """Every customer's latest scores as floats (nulls kept): the inputs of grading."""
    from patron.scoring.policies import grading_inputs

    real = "DOUBLE PRECISION" if connection.vendor == "postgresql" else "REAL"
    columns = ", ".join(f"CAST({name} AS {real}) AS {name}" for name in grading_inputs())
    sql = f"SELECT customer_id, {columns} FROM scoring_customerscore ORDER BY customer_id"
    with _connect() as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    return pa.table(
        {
            "customer_id": pc.cast(table.column("customer_id"), pa.int64()),
            **{name: pc.cast(table.column(name), pa.float64()) for name in grading_inputs()},
        }
    )
