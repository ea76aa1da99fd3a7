"""Arrow to a new SQLite file through ADBC, in a child process of its own.

    python -m patron.scoring.sqlite_writer PATH TABLE < Arrow IPC stream

Creates the file ``PATH`` (it must not exist) with one table ``TABLE`` holding the stream's
rows, then exits; on failure it exits non-zero with the error on stderr.

What for: writing a million score rows through Python's ``sqlite3`` binds every value from a
Python object, which took about 14 of a 17 s write-back here. The ADBC driver binds Arrow
columns in C (about 2 s for the same rows, in this process beside the parent's work), and
the parent then copies them inside its own transaction with one ``INSERT … SELECT`` from the
attached file (``patron.scoring.writeback``). A child process, as for reading
(``patron.scoring.sqlite_reader``): the driver carries its own copy of the SQLite library,
which must not share a process with Django's. The file is the child's alone until it exits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO


def write(path: str, table: str, source: BinaryIO) -> int:
    """Write the IPC stream on ``source`` into table ``table`` of the new file ``path``."""
    import adbc_driver_sqlite.dbapi as sqlite
    import pyarrow as pa

    if Path(path).exists():
        raise FileExistsError(path)
    reader = pa.ipc.open_stream(source)
    with sqlite.connect(path, autocommit=True) as conn, conn.cursor() as cursor:
        # A scratch file: if the machine stops, it is thrown away, so no journal and no sync.
        cursor.execute("PRAGMA journal_mode = OFF")
        cursor.execute("PRAGMA synchronous = OFF")
        return int(cursor.adbc_ingest(table, reader, mode="create"))


def main() -> int:
    try:
        path, table = sys.argv[1], sys.argv[2]
        write(path, table, sys.stdin.buffer)
    except Exception as error:  # the parent reports it
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
