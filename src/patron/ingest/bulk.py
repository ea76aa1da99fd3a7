"""Fast inserts for imports, straight from Arrow columns.

PostgreSQL: Arrow writes the rows as CSV (in C) and ``COPY … FROM STDIN (FORMAT csv)`` loads
them — strings are quoted and NULL is an unquoted empty field, so the two never mix. SQLite:
``executemany`` with values shaped exactly as Django's SQLite backend stores them (UTC text
timestamps, decimal text), so ORM reads, filters and ordering see no difference.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.db import connection

from patron.ingest.columns import as_text

COPY_CHUNK_ROWS = 100_000


def _utc_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Times as naive UTC text, as Django's SQLite backend writes them (no .000000); the
    PostgreSQL connection runs in UTC (Django sets it), so COPY reads the same text right."""
    text = as_text(pc.cast(column, pa.timestamp("us", tz="UTC")))
    return pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")


def sqlite_values(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``column`` as Django's SQLite backend stores it: times as UTC text, decimals and
    dates as text, everything else as it is."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return _utc_text(column)
    if pa.types.is_decimal(kind) or pa.types.is_date(kind):
        return pc.cast(column, pa.string())
    return column


def _sqlite_column(column: pa.ChunkedArray) -> list[object]:
    return sqlite_values(column).to_pylist()


def _postgres_ready(rows: pa.Table) -> pa.Table:
    for index, name in enumerate(rows.column_names):
        if pa.types.is_timestamp(rows.column(index).type):
            rows = rows.set_column(index, name, _utc_text(rows.column(index)))
    return rows


def bulk_insert(table_name: str, rows: pa.Table) -> int:
    """Insert every row of ``rows`` (columns named as the table's database columns)."""
    if rows.num_rows == 0:
        return 0
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in rows.column_names)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {quote(table_name)} ({columns}) FROM STDIN WITH (FORMAT csv)"
            with cursor.cursor.copy(sql) as copy:
                for start in range(0, rows.num_rows, COPY_CHUNK_ROWS):
                    buffer = io.BytesIO()
                    chunk = _postgres_ready(rows.slice(start, COPY_CHUNK_ROWS))
                    pa_csv.write_csv(chunk, buffer, pa_csv.WriteOptions(include_header=False))
                    copy.write(buffer.getvalue())
        else:
            marks = ", ".join(["%s"] * rows.num_columns)
            values = list(
                zip(*(_sqlite_column(rows.column(i)) for i in range(rows.num_columns)), strict=True)
            )
            cursor.executemany(
                f"INSERT INTO {quote(table_name)} ({columns}) VALUES ({marks})", values
            )
    return rows.num_rows
