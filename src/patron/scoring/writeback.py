"""Writing a scoring run's results: the latest scores (OLTP), grade history, and in the lake
the run's reasons and a snapshot of its scores.

Everything goes in as Arrow columns through ``patron.ingest.bulk`` (COPY on PostgreSQL), never
one ORM object per customer: a million customers must be written in seconds.

The reasons are the bulk of a run: about 1.1 kB of JSON per customer, 1.1 GB at a million
customers. Written into the score rows they took most of a 30–50 s write-back; as one
compressed Parquet file in the lake they take a few seconds. A page reads one customer's
(small row groups, sorted by customer, found by statistics) and has the run's models give
the credit and churn ones: about 35 ms at a million customers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection

from patron.customer.models import Customer
from patron.errors import Conflict
from patron.ingest.bulk import bulk_insert, sqlite_values
from patron.intelligence import reason_columns as rc
from patron.intelligence.pipeline import Explainer, explain
from patron.scoring.models import CustomerScore, GradeHistory, ScoreRun

logger = logging.getLogger(__name__)

#: Columns of the score table that the pipeline hands over, as CustomerScore's db columns.
SCORE_COLUMNS = (
    "customer_id",
    "purchase_days",
    "days_since_last_purchase",
    "p_alive",
    "expected_orders_90d",
    "expected_order_value",
    "clv_12m",
    "currency",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "credit_score",
    "credit_model",
    "churn_probability",
    "churn_model",
    "cluster",
    "cluster_name",
    "potential_value",
    "word_of_mouth",
    "certification_rank",
    "grade",
    "grade_composite",
)
_MONEY = ("expected_order_value", "clv_12m", "potential_value")
_TEXT = ("currency", "rfm_segment", "credit_model", "churn_model", "cluster_name", "grade")
CHUNK = 20_000


def _money(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Floats rounded to cents, as Decimal(14, 2)."""
    rounded = pc.round(pc.cast(column, pa.float64()), 2)
    return pc.cast(rounded, pa.decimal128(14, 2))


def score_rows(run: ScoreRun, scores: pa.Table) -> pa.Table:
    """The run's score table as CustomerScore's database columns."""
    missing = [name for name in SCORE_COLUMNS if name not in scores.column_names]
    if missing:
        raise ValueError(f"score table lacks column(s): {', '.join(missing)}")
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    for name in SCORE_COLUMNS:
        column = scores.column(name)
        if name in _MONEY:
            column = _money(column)
        elif name in _TEXT:
            column = pc.fill_null(pc.cast(column, pa.string()), "")
        columns[name] = column
    n = scores.num_rows
    columns["run_id"] = pa.array(np.full(n, run.pk, dtype=np.int64))
    columns["as_of"] = pa.array([run.as_of] * n, pa.date32())
    return pa.table(columns)


#: From this many rows a SQLite write-back stages the score rows in a scratch file first.
STAGE_MIN_ROWS = 200_000
_STAGE = "patron_stage"  # the scratch file's name while attached to Django's connection
_WRITER = "patron.scoring.sqlite_writer"


class ScoreRows:
    """A run's score rows on their way into CustomerScore (:func:`scores_staged`).

    On SQLite with many rows, a child process (``patron.scoring.sqlite_writer``) writes them
    into a scratch file from the moment this is made, while the caller goes on (the reasons
    go to the lake meanwhile); :func:`scores_replace` then copies them inside the caller's
    transaction with one ``INSERT … SELECT`` from the attached file. Measured at a million
    rows: Python's ``sqlite3`` bound them in about 14 s; the copy takes about 4 s.
    """

    def __init__(self, rows: pa.Table, *, staged: bool) -> None:
        self.rows = rows
        self.folder: Path | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._feeder: threading.Thread | None = None
        self._attached = False
        if staged:
            try:
                self._stage()
            except BaseException:  # e.g. the child could not start: no scratch folder left
                self.close()
                raise

    @property
    def staged(self) -> bool:
        return self._child is not None

    def _stage(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="patron-scores-"))
        ready = pa.table(
            {name: sqlite_values(self.rows.column(name)) for name in self.rows.column_names}
        )
        self._child = subprocess.Popen(
            [sys.executable, "-m", _WRITER, str(self._file), "scores"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._feeder = threading.Thread(target=self._feed, args=(ready,), daemon=True)
        self._feeder.start()

    @property
    def _file(self) -> Path:
        assert self.folder is not None
        return self.folder / "scores.sqlite3"

    def _feed(self, ready: pa.Table) -> None:
        child = self._child
        assert child is not None and child.stdin is not None
        try:
            with pa.ipc.new_stream(child.stdin, ready.schema) as writer:
                writer.write_table(ready, max_chunksize=65_536)
        except (OSError, ValueError, pa.ArrowException):
            pass  # the child stopped reading: it failed, and its stderr says why
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()

    def _wait(self) -> None:
        child = self._child
        assert child is not None and child.stderr is not None and self._feeder is not None
        self._feeder.join()
        error = child.stderr.read().decode(errors="replace").strip()
        if child.wait() != 0:
            raise RuntimeError(f"staging the score rows in a child process failed: {error}")

    def insert(self) -> int:
        """Insert the rows (inside the caller's transaction)."""
        table = CustomerScore._meta.db_table
        if not self.staged:
            return bulk_insert(table, self.rows)
        self._wait()
        quote = connection.ops.quote_name
        columns = ", ".join(quote(name) for name in self.rows.column_names)
        with connection.cursor() as cursor:
            cursor.execute("ATTACH DATABASE %s AS " + _STAGE, [str(self._file)])
            self._attached = True
            cursor.execute(
                f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {_STAGE}.scores"
            )
        return self.rows.num_rows

    def close(self) -> None:
        """Detach and delete the scratch file (after the caller's transaction ended)."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        if self._feeder is not None:
            self._feeder.join()
        if self._child is not None and self._child.stderr is not None:
            self._child.stderr.close()
        if self._attached:
            with connection.cursor() as cursor:
                cursor.execute("DETACH DATABASE " + _STAGE)
            self._attached = False
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def scores_staged(run: ScoreRun, scores: pa.Table) -> Iterator[ScoreRows]:
    """The run's score rows, made ready for :func:`scores_replace`; use the transaction
    inside this block. Staged in a scratch file on SQLite from :data:`STAGE_MIN_ROWS` rows,
    unless a transaction is already open (the file could not be detached inside it)."""
    rows = score_rows(run, scores)
    staged = (
        connection.vendor == "sqlite"
        and rows.num_rows >= STAGE_MIN_ROWS
        and not connection.in_atomic_block
    )
    prepared = ScoreRows(rows, staged=staged)
    try:
        yield prepared
    finally:
        prepared.close()


def scores_replace(rows: ScoreRows) -> int:
    """Replace every customer's latest score row by the run's (inside the caller's
    transaction); returns how many were written.

    The table has no foreign-key constraints in the database (see ``CustomerScore``): rows
    of customers deleted since the extract are removed here, with one statement."""
    CustomerScore.objects.all().delete()
    written = rows.insert()
    quote = connection.ops.quote_name
    scores, customers = quote(CustomerScore._meta.db_table), quote(Customer._meta.db_table)
    key = quote(str(Customer._meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {scores} WHERE NOT EXISTS "
            f"(SELECT 1 FROM {customers} c WHERE c.{key} = {scores}.customer_id)"
        )
        gone = max(cursor.rowcount, 0)
    return written - gone


def open_grades(customers: Iterable[int] | None = None) -> dict[int, tuple[str, date]]:
    """Every customer's current grade and the day it started (only ``customers``' if given).

    Read through the cursor, each distinct day parsed once: the ORM's per-row date
    converter took 2.4 s of the 3 s for a million open grades on SQLite."""
    rows = GradeHistory.objects.filter(valid_to__isnull=True).values_list(
        "customer_id", "grade", "valid_from"
    )
    queries = (
        [rows]
        if customers is None
        else [rows.filter(customer_id__in=chunk) for chunk in _chunks(sorted(customers))]
    )
    days: dict[Any, date] = {}

    def day(value: Any) -> date:  # SQLite gives ISO text, PostgreSQL a date
        found = days.get(value)
        if found is None:
            found = days[value] = value if isinstance(value, date) else date.fromisoformat(value)
        return found

    found: dict[int, tuple[str, date]] = {}
    with connection.cursor() as cursor:
        for query in queries:
            sql, params = query.query.sql_with_params()
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(CHUNK):
                found.update((customer, (grade, day(since))) for customer, grade, since in batch)
    return found


def _json(value: list[Any] | str) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def grade_history_apply(
    *,
    run: ScoreRun,
    as_of: date,
    grades: Mapping[int, str],
    reasons: Mapping[int, list[Any] | str],
    policy_version: int,
) -> dict[str, int]:
    """Record ``grades`` as of ``as_of`` with their ``reasons`` (a list, or its JSON text): a changed grade closes the open period on ``as_of``
    and opens a new one, so a customer's periods are contiguous (no gaps, no overlaps).

    A same-day re-run corrects the open period in place rather than leaving a zero-length one.
    Going back in time is refused: history that already runs past ``as_of`` stays as it is.
    """
    # A nightly run records few grades (new customers): read only theirs. A re-grade
    # records everyone's, and one scan is quicker than fifty IN lists.
    current = open_grades() if len(grades) > 10 * CHUNK else open_grades(grades)
    later = [c for c in grades if c in current and current[c][1] > as_of]
    if later:
        since = max(current[c][1] for c in later)
        raise Conflict(
            f"grade history already runs from {since}; re-grade as of {since} or later, not {as_of}"
        )
    new: list[int] = []
    changed: list[int] = []
    same_day: list[int] = []
    for customer, grade in grades.items():
        if customer not in current:
            new.append(customer)
        elif current[customer][0] != grade:
            (same_day if current[customer][1] == as_of else changed).append(customer)
    for chunk in _chunks(changed):
        GradeHistory.objects.filter(customer_id__in=chunk, valid_to__isnull=True).update(
            valid_to=as_of
        )
    for chunk in _chunks(same_day):
        GradeHistory.objects.filter(customer_id__in=chunk, valid_to__isnull=True).delete()
    opened = sorted(new + changed + same_day)
    rows = pa.table(
        {
            "customer_id": pa.array(opened, pa.int64()),
            "grade": pa.array([grades[c] for c in opened], pa.string()),
            "valid_from": pa.array([as_of] * len(opened), pa.date32()),
            "valid_to": pa.nulls(len(opened), pa.date32()),
            "run_id": pa.array([run.pk] * len(opened), pa.int64()),
            "policy_version": pa.array([policy_version] * len(opened), pa.int64()),
            "reasons": pa.array([_json(reasons.get(c, [])) for c in opened], pa.string()),
        }
    )
    bulk_insert(GradeHistory._meta.db_table, rows)
    return {"new": len(new), "changed": len(changed) + len(same_day)}


# --------------------------------------------------------------------------------------
# Lake snapshots: the whole score table per run, for trends and quarter-on-quarter checks
# --------------------------------------------------------------------------------------

SNAPSHOT_COLUMNS = (
    "customer_id",
    "p_alive",
    "expected_orders_90d",
    "clv_12m",
    "credit_score",
    "churn_probability",
    "rfm_segment",
    "cluster",
    "grade",
    "grade_composite",
)


def snapshots_dir(lake: Path | None = None) -> Path:
    return Path(lake or settings.LAKE_DIR) / "scores"


def snapshot_write(run: ScoreRun, scores: pa.Table, *, lake: Path | None = None) -> Path:
    """Write the run's scores (sorted by customer, small row groups so that one customer's
    history is read by statistics, not by a scan) as ``scores/as_of=…/run-<id>.parquet``."""
    folder = snapshots_dir(lake) / f"as_of={run.as_of.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    table = scores.select(list(SNAPSHOT_COLUMNS)).sort_by("customer_id")
    table = table.append_column("run_id", pa.array(np.full(table.num_rows, run.pk, np.int64)))
    path = folder / f"run-{run.pk}.parquet"
    temporary = path.with_suffix(".parquet.tmp")
    pq.write_table(table, temporary, row_group_size=50_000)
    temporary.replace(path)
    return path


def snapshot_history(customer_id: int, *, lake: Path | None = None) -> list[dict[str, object]]:
    """One customer's scores in every snapshot, oldest first (one row per run)."""
    root = snapshots_dir(lake)
    files = sorted(root.glob("as_of=*/run-*.parquet"))
    if not files:
        return []
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    rows = dataset.to_table(filter=ds.field("customer_id") == customer_id).to_pylist()
    as_of = {}
    for f in files:
        as_of[int(f.stem.removeprefix("run-"))] = f.parent.name.removeprefix("as_of=")
    for row in rows:
        row["as_of"] = as_of[int(row["run_id"])]
    rows.sort(key=lambda row: (row["as_of"], row["run_id"]))
    return rows


# --------------------------------------------------------------------------------------
# Lake reasons: every customer's reasons of one run (the score rows point at their run)
# --------------------------------------------------------------------------------------

#: Rows per row group of a reasons table: one customer's reasons are read by decompressing
#: one group (about 4,000 customers).
REASONS_ROW_GROUP = 4_096
#: Reasons kept besides the run the score rows point at: a page that read a score row just
#: before a run replaced it still finds its reasons.
REASONS_KEEP = 2
_TABLE = "reasons.parquet"
_EXPLAINERS = "explainers.pickle"


def reasons_dir(lake: Path | None = None) -> Path:
    return Path(lake or settings.LAKE_DIR) / "reasons"


def reasons_write(
    run: ScoreRun,
    scores: pa.Table,
    *,
    explainers: Mapping[str, Explainer] | None = None,
    inputs: pa.Table | None = None,
    lake: Path | None = None,
) -> str:
    """Write the run's reasons to the lake and return the folder's name (relative to
    :func:`reasons_dir`) for ``ScoreRun.reasons_folder``.

    The folder holds ``reasons.parquet`` (the ``reasons`` column of ``scores``: per customer
    a struct of JSON texts by score name, or one JSON object's text as older runs wrote it;
    and the ``inputs`` the ``explainers`` read) and ``explainers.pickle`` (the
    fitted models that give the credit and churn reasons on reading, see
    ``patron.intelligence.pipeline.Explainer``).

    The name carries a random part besides the run's id: two databases that share a lake
    (a test run beside a shop, a restored backup) never read each other's reasons."""
    table = scores.select(["customer_id", "reasons"])
    if inputs is not None:
        if not inputs.column("customer_id").equals(table.column("customer_id")):
            raise ValueError("the explainers' inputs are not in the score table's order")
        for name in inputs.column_names[1:]:
            table = table.append_column(name, inputs.column(name))
    folder = reasons_dir(lake)
    name = f"run-{run.pk}-{uuid.uuid4().hex[:12]}"
    temporary = folder / f"{name}.tmp"
    temporary.mkdir(parents=True)
    pq.write_table(
        table.sort_by("customer_id"),
        temporary / _TABLE,
        row_group_size=REASONS_ROW_GROUP,
        compression="zstd",
        use_dictionary=False,
        write_statistics=["customer_id"],
    )
    (temporary / _EXPLAINERS).write_bytes(pickle.dumps(dict(explainers or {}), protocol=5))
    temporary.replace(folder / name)
    return name


def reasons_discard(name: str, *, lake: Path | None = None) -> None:
    """Remove a run's reasons (a run that failed after writing them)."""
    if name:
        shutil.rmtree(reasons_dir(lake) / name, ignore_errors=True)


def reasons_of(name: str, customer_id: int, *, lake: Path | None = None) -> dict[str, Any] | None:
    """One customer's reasons in the run's reasons ``name``, the credit and churn ones given
    now by the run's models: ``{}`` when the run did not score them, None when the reasons
    are gone (pruned, or a lake that was not kept)."""
    folder = reasons_dir(lake) / name
    if not name or not (folder / _TABLE).is_file():
        return None
    found = ds.dataset(folder / _TABLE, format="parquet").to_table(
        filter=ds.field("customer_id") == customer_id
    )
    if found.num_rows == 0:
        return {}
    reasons = rc.decoded(found.column("reasons")[0].as_py())
    for score, explainer in _explainers(str(folder / _EXPLAINERS)).items():
        try:
            given = explain(explainer, found)[0]
        except Exception:  # a model this version cannot run: the other reasons still show
            logger.exception("reasons %s: the %s reasons could not be given", name, score)
            continue
        if given is not None:
            reasons[score] = given
    return reasons


@functools.lru_cache(maxsize=4)
def _explainers(path: str) -> dict[str, Explainer]:
    """A run's explainers (the same few runs are read over and over: kept in memory). The
    file is the lake's own, written by :func:`reasons_write`: as trusted as the database."""
    try:
        with open(path, "rb") as handle:
            loaded = pickle.load(handle)
    except FileNotFoundError:  # reasons written before explainers existed (migration 0005)
        return {}
    except Exception:  # written by a version whose classes this one lacks: no model reasons
        logger.exception("%s could not be read; the credit and churn reasons are not shown", path)
        return {}
    return dict(loaded)


def reasons_prune(*, keep: int = REASONS_KEEP, lake: Path | None = None) -> int:
    """Delete the reasons of older runs of this database: every run's but the newest
    ``keep`` and those that score rows still point at. Returns how many were deleted."""
    pointed = set(CustomerScore.objects.values_list("run_id", flat=True).distinct())
    runs = ScoreRun.objects.exclude(reasons_folder="").order_by("-pk").only("pk", "reasons_folder")
    stale = [run for run in runs[keep:] if run.pk not in pointed]
    for run in stale:
        reasons_discard(run.reasons_folder, lake=lake)
    ScoreRun.objects.filter(pk__in=[run.pk for run in stale]).update(reasons_folder="")
    return len(stale)
