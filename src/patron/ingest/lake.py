"""The event lake: behaviour events as Parquet files, hive-partitioned by UTC date.

Layout: ``<lake>/events/date=YYYY-MM-DD/batch-<id>.parquet``. Each event has an ``event_id``
(a digest of its content), so a re-import finds nothing new. The same events are also written
to ``<lake>/events_by_customer/bucket=NNN/`` (a hash of the customer), an index that lets one
customer's events be read from 1/256 of the files instead of all of them (the customer page).

New files are first written under ``<lake>/_staging/<batch>/`` and moved into place only after
the batch's database transaction commits (``publish``); a batch that dies leaves only staging
files, removed by ``staging_clean``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("source", pa.string()),
        ("customer_external_id", pa.string()),
        ("event_type", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("item_external_id", pa.string()),
        ("category_external_id", pa.string()),
        ("query", pa.string()),
        ("session_id", pa.string()),
        ("batch_id", pa.int64()),
    ]
)
_CONTENT = (
    "customer_external_id",
    "event_type",
    "occurred_at",
    "item_external_id",
    "category_external_id",
    "query",
    "session_id",
)


@dataclass
class StagedEvents:
    batch_id: int
    staging: Path
    moves: list[tuple[Path, Path]]
    inserted: int
    unchanged: int


BUCKETS = 256


def events_dir(lake: Path) -> Path:
    return lake / "events"


def customer_index_dir(lake: Path) -> Path:
    return lake / "events_by_customer"


def customer_bucket(source: str, customer_external_id: str) -> int:
    digest = hashlib.blake2b(f"{source}\x1f{customer_external_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def _bucket_column(source: str, customers: pa.Array) -> pa.Array:
    unique = pc.unique(customers)
    buckets = pa.array([customer_bucket(source, c) for c in unique.to_pylist()], pa.int32())
    return pc.take(buckets, pc.index_in(customers, value_set=unique))


def event_ids(source: str, table: pa.Table) -> list[str]:
    """A content digest per event: the same event imported twice gets the same id."""
    texts = [pa.array([source] * table.num_rows, pa.string())]
    for name in _CONTENT:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
        texts.append(pc.fill_null(pc.cast(column, pa.string()), ""))
    joined = pc.binary_join_element_wise(*texts, "\x1f")
    return [
        hashlib.blake2b(text.encode(), digest_size=16).hexdigest() for text in joined.to_pylist()
    ]


def _existing_ids(partition: Path) -> set[str]:
    if not partition.exists():
        return set()
    ids: set[str] = set()
    for file in sorted(partition.glob("*.parquet")):
        ids.update(pq.read_table(file, columns=["event_id"]).column("event_id").to_pylist())
    return ids


def stage_events(lake: Path, events: pa.Table, *, source: str, batch_id: int) -> StagedEvents:
    """Write the events not yet in the lake to a staging folder; nothing is visible yet."""
    staging = lake / "_staging" / str(batch_id)
    staging.mkdir(parents=True, exist_ok=True)
    table = events.select(list(_CONTENT))
    table = table.append_column("event_id", pa.array(event_ids(source, table), pa.string()))
    days = pc.strftime(table.column("occurred_at"), format="%Y-%m-%d")
    table = table.append_column("_day", days).sort_by(
        [("_day", "ascending"), ("occurred_at", "ascending")]
    )
    moves: list[tuple[Path, Path]] = []
    fresh_tables: list[pa.Table] = []
    inserted = unchanged = 0
    for day, rows in _runs(table, "_day"):
        partition = events_dir(lake) / f"date={day}"
        known = _existing_ids(partition)
        ids = rows.column("event_id").to_pylist()
        keep, seen = [], set()
        for event in ids:
            fresh = event not in known and event not in seen
            keep.append(fresh)
            seen.add(event)
        fresh_rows = rows.filter(pa.array(keep))
        unchanged += rows.num_rows - fresh_rows.num_rows
        if fresh_rows.num_rows == 0:
            continue
        count = fresh_rows.num_rows
        out = pa.table(
            {
                "event_id": fresh_rows.column("event_id"),
                "source": pa.array([source] * count, pa.string()),
                **{name: fresh_rows.column(name) for name in _CONTENT},
                "batch_id": pa.array([batch_id] * count, pa.int64()),
            }
        ).cast(EVENT_SCHEMA)
        staged = staging / f"date={day}" / f"batch-{batch_id}.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(out, staged, compression="zstd")
        moves.append((staged, partition / staged.name))
        fresh_tables.append(out)
        inserted += count
    if fresh_tables:
        moves.extend(
            _stage_customer_index(lake, staging, pa.concat_tables(fresh_tables), source, batch_id)
        )
    return StagedEvents(batch_id, staging, moves, inserted, unchanged)


def _runs(table: pa.Table, column: str) -> Iterator[tuple[Any, pa.Table]]:
    """(value, rows) for each run of equal values of ``column`` in a table sorted by it:
    slices, not one filter over the whole table per value."""
    start = 0
    for item in pc.value_counts(table.column(column)).to_pylist():
        yield item["values"], table.slice(start, item["counts"])
        start += item["counts"]


def _stage_customer_index(
    lake: Path, staging: Path, events: pa.Table, source: str, batch_id: int
) -> list[tuple[Path, Path]]:
    buckets = _bucket_column(source, events.column("customer_external_id"))
    events = events.append_column("_bucket", buckets).sort_by("_bucket")
    moves = []
    for bucket, group in _runs(events, "_bucket"):
        rows = group.drop_columns(["_bucket"])
        name = f"bucket={bucket:03d}"
        staged = staging / "events_by_customer" / name / f"batch-{batch_id}.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, staged, compression="zstd")
        moves.append((staged, customer_index_dir(lake) / name / staged.name))
    return moves


def customer_events_dataset(
    lake: Path, *, source: str, customer_external_id: str
) -> ds.Dataset | None:
    """The files that can hold one customer's events: its index bucket, or every date partition
    of a lake written before the index existed. None when there are none."""
    if customer_index_dir(lake).is_dir():
        bucket = (
            customer_index_dir(lake) / f"bucket={customer_bucket(source, customer_external_id):03d}"
        )
        files = sorted(str(f) for f in bucket.glob("*.parquet"))
        return ds.dataset(files, format="parquet") if files else None
    if events_dir(lake).is_dir():
        return ds.dataset(events_dir(lake), format="parquet", partitioning="hive")
    return None


def publish(staged: StagedEvents) -> None:
    """Move staged files into their partitions (each move is an atomic rename)."""
    for src, dst in staged.moves:
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.replace(dst)
    shutil.rmtree(staged.staging, ignore_errors=True)


def discard(staged: StagedEvents) -> None:
    shutil.rmtree(staged.staging, ignore_errors=True)


def staging_clean(lake: Path, *, keep: set[int]) -> None:
    """Remove what batches that never committed left behind (all but the ``keep`` batches)."""
    root = lake / "_staging"
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if not (folder.name.isdigit() and int(folder.name) in keep):
            shutil.rmtree(folder, ignore_errors=True)
