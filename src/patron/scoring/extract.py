"""Data leaving the OLTP database as Arrow (no ORM objects on the way).

PostgreSQL: through ADBC (``adbc-driver-postgresql``), columnar and fast. SQLite: through
Django's own connection and Python's ``sqlite3``, never ADBC. The ADBC SQLite driver carries
its own copy of the SQLite library; two copies in one process do not see each other's POSIX
locks, so when an ADBC connection closed it took itself for the last user of the database,
checkpointed and deleted the ``-wal`` file under Django's open connection — later writes went
to an unlinked file, invisible to every other connection until the process ended (seen in
the tests; SQLite's documentation warns against linking two copies into one program).

SQLite hands timestamps over as text and PostgreSQL as UTC timestamps: ``utc`` turns both into
one shape, so nothing downstream cares which database it was.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection


def _postgres() -> Any:
    import adbc_driver_postgresql.dbapi as postgres

    params = connection.settings_dict
    auth = params["USER"] or ""
    if params.get("PASSWORD"):
        auth += f":{params['PASSWORD']}"
    host = params.get("HOST") or "localhost"
    port = params.get("PORT") or 5432
    return postgres.connect(f"postgresql://{auth}@{host}:{port}/{params['NAME']}")


def fetch_arrow(sql: str) -> pa.Table:
    """Run one SELECT and return its rows as an Arrow table (types as the database gives
    them: integers, floats, text; SQLite's timestamps as text)."""
    if connection.vendor == "postgresql":
        with _postgres() as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetch_arrow_table()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    if not rows:
        return pa.table({name: pa.array([], pa.null()) for name in names})
    columns = list(zip(*rows, strict=True))
    return pa.table({name: pa.array(values) for name, values in zip(names, columns, strict=True)})


def utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        return pc.cast(column, pa.timestamp("us", tz="UTC"))
    return pc.cast(pc.cast(column, pa.timestamp("us")), pa.timestamp("us", tz="UTC"))


def latest_scores() -> pa.Table:
    """Every customer's latest scores as floats (nulls kept): the inputs of grading."""
    from patron.scoring.policies import grading_inputs

    real = "DOUBLE PRECISION" if connection.vendor == "postgresql" else "REAL"
    columns = ", ".join(f"CAST({name} AS {real}) AS {name}" for name in grading_inputs())
    table = fetch_arrow(
        f"SELECT customer_id, {columns} FROM scoring_customerscore ORDER BY customer_id"
    )
    return pa.table(
        {
            "customer_id": pc.cast(table.column("customer_id"), pa.int64()),
            **{name: pc.cast(table.column(name), pa.float64()) for name in grading_inputs()},
        }
    )
