"""Data leaving the OLTP database as Arrow, through ADBC (no ORM objects on the way).

SQLite hands timestamps over as text and PostgreSQL as UTC timestamps: both are turned into
one shape here, so nothing downstream cares which database it was.
"""

from __future__ import annotations

from typing import Any

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
    wall-clock time, naive, for calendar days) and ``amount`` (float, in the order's currency)."""
    amount = (
        "CAST(total_amount AS DOUBLE PRECISION)"
        if connection.vendor == "postgresql"
        else "CAST(total_amount AS REAL)"
    )
    marks = ", ".join(f"'{status}'" for status in PURCHASE_STATUSES)
    sql = f"SELECT customer_id, placed_at, {amount} AS amount FROM commerce_order WHERE status IN ({marks})"
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
        }
    )
