"""Data leaving the OLTP database as Arrow (no ORM objects on the way).

PostgreSQL: through ADBC (``adbc-driver-postgresql``), columnar and fast. SQLite: through
Django's own connection and Python's ``sqlite3`` in this process, never ADBC. The ADBC SQLite
driver carries its own copy of the SQLite library; two copies in one process do not see each
other's POSIX locks, so when an ADBC connection closed it took itself for the last user of
the database, checkpointed and deleted the ``-wal`` file under Django's open connection —
later writes went to an unlinked file, invisible to every other connection until the process
ended (seen in the tests; SQLite's documentation warns against linking two copies into one
program). A large SQLite extract (:func:`fetch_arrow_many`) runs ADBC in a child process
instead (``patron.scoring.sqlite_reader``): four times as fast, and two processes see each
other's locks. Its queries are split over two children, one per core: each reads its
tables in one snapshot, and the two snapshots are taken a moment apart. The pipeline reads
only what happened before its cut-off (midnight), so rows written during the extract do
not reach the scores either way; a backdated import committed in that moment could reach
one table and not another until the next run.

SQLite hands timestamps over as text and PostgreSQL as UTC timestamps: ``utc`` turns both into
one shape, so nothing downstream cares which database it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    return fetch_arrow_many([sql])[0]


def _sqlite_here(sql: str) -> pa.Table:
    """One SELECT through Django's own SQLite connection (sees this process's uncommitted
    writes)."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    if not rows:
        return pa.table({name: pa.array([], pa.null()) for name in names})
    columns = list(zip(*rows, strict=True))
    return pa.table({name: pa.array(values) for name, values in zip(names, columns, strict=True)})


#: From this many rows (the caller's estimate) a SQLite extract is read by a child process.
#: Below it, starting one (about 0.4 s) costs more than it saves.
CHILD_MIN_ROWS = 200_000


def fetch_arrow_many(queries: Sequence[str], *, expected_rows: int = 0) -> list[pa.Table]:
    """Several SELECTs (an extract) as Arrow tables, in order: on PostgreSQL over one ADBC
    connection; on SQLite in a child process through ADBC when about ``expected_rows`` rows
    make that worth it and nothing is uncommitted in this process (the child would not see
    it), otherwise through Django's own connection."""
    if connection.vendor == "postgresql":
        with _postgres() as conn, conn.cursor() as cursor:
            tables = []
            for sql in queries:
                cursor.execute(sql)
                tables.append(cursor.fetch_arrow_table())
            return tables
    if expected_rows < CHILD_MIN_ROWS or connection.in_atomic_block:
        return [_sqlite_here(sql) for sql in queries]
    return _sqlite_child(queries)


#: Child processes a large SQLite extract is split over: SQLite decodes rows on one core per
#: connection, and the pipeline waits for the extract with the other core idle.
CHILD_PROCESSES = max(1, min(2, os.cpu_count() or 1))


def _sqlite_child(queries: Sequence[str]) -> list[pa.Table]:
    """``queries`` read by :data:`CHILD_PROCESSES` children at once (every other query to
    each, so the caller's order spreads large tables), in the order given."""
    connection.ensure_connection()
    database = str(connection.settings_dict["NAME"])
    children = min(CHILD_PROCESSES, len(queries))
    if children <= 1:
        return _one_child(database, list(queries))
    shares = [list(queries[k::children]) for k in range(children)]
    with ThreadPoolExecutor(children) as pool:  # each thread waits on its child's pipe
        results = list(pool.map(lambda share: _one_child(database, share), shares))
    tables: list[pa.Table] = [pa.table({})] * len(queries)
    for k, got in enumerate(results):
        tables[k::children] = got  # _one_child returns one table per query, or raises
    return tables


def _one_child(database: str, queries: list[str]) -> list[pa.Table]:
    request = {"database": database, "queries": queries}
    child = subprocess.Popen(
        [sys.executable, "-m", "patron.scoring.sqlite_reader"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdin.write(json.dumps(request).encode())
    child.stdin.close()
    tables: list[pa.Table] = []
    try:
        for _ in queries:
            tables.append(pa.ipc.open_stream(child.stdout).read_all())
    except (pa.ArrowInvalid, OSError):
        pass  # the child failed: its stderr says why
    finally:
        error = child.stderr.read().decode(errors="replace").strip()
        child.stdout.close()
        child.stderr.close()
        status = child.wait()
    if status != 0 or len(tables) != len(queries):
        failed = queries[len(tables)] if len(tables) < len(queries) else queries[-1]
        raise RuntimeError(f"reading SQLite in a child process failed on {failed!r}: {error}")
    return tables


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
