"""Import batches: parse every file, then write all of it in one transaction or nothing.

A batch is one ``patron import`` run (a file, or an export folder through an adapter). The
``ImportBatch`` row is committed on its own before and after the data, so refused and failed
batches stay on record. A process killed mid-batch leaves the database as it was: the data
transaction never commits, and the next run (idempotent by (source, external_id)) completes it.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from patron.audit.services import AuditEntry, audit_record_many
from patron.customer.models import Customer
from patron.errors import ValidationFailed
from patron.ingest import lake
from patron.ingest.columns import ParsedTable, RowError, parse_table, read_file, records_table
from patron.ingest.mapping import Mapping
from patron.ingest.models import ImportBatch
from patron.ingest.readers import read_header
from patron.ingest.schemas import KINDS, LOAD_ORDER
from patron.ingest.signals import batch_committed
from patron.ingest.writers import addresses_sync, devices_sync, id_map, write_table

logger = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 200
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Part:
    """One kind's rows in a batch: a table under the file's column names (``mapping`` maps them
    to Patron's) and each row's line number in its file."""

    kind: str
    file_label: str
    lines: list[int]
    table: pa.Table
    mapping: Mapping = field(default_factory=Mapping)
    labels: dict[str, str] = field(default_factory=dict)  # Patron column -> column in the file

    @classmethod
    def from_records(
        cls,
        kind: str,
        file_label: str,
        records: Iterable[tuple[int, dict[str, Any]]],
        mapping: Mapping | None = None,
        labels: dict[str, str] | None = None,
    ) -> Part:
        """A part from (line, record) pairs, as adapters produce them."""
        pairs = list(records)
        table = records_table([record for _, record in pairs])
        return cls(
            kind, file_label, [line for line, _ in pairs], table, mapping or Mapping(), labels or {}
        )


@dataclass
class ImportSummary:
    batch: int
    kind: str
    source: str
    path: str
    status: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejects_file: str = ""
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.status in (
            ImportBatch.Status.COMMITTED,
            ImportBatch.Status.DRY_RUN,
        )


class _Rollback(Exception):
    """Raised inside the data transaction to undo it; carries the errors that caused it."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


def check_columns(kind: str, path: Path, mapping: Mapping, header: list[str] | None = None) -> None:
    """Refuse a file at once when a required column is absent (nothing is read)."""
    spec = KINDS[kind]
    present = set(header if header is not None else read_header(path))
    missing = [
        name
        for name in spec.required
        if mapping.column_for(name) not in present
        and name not in mapping.defaults
        and not (kind == "order-lines" and name == "external_id")
    ]
    if missing:
        shown = ", ".join(f"'{mapping.column_for(m)}'" for m in missing)
        raise ValidationFailed(
            f"{path.name}: missing required column(s) {shown} for kind '{kind}'; "
            f"the file has: {', '.join(sorted(present)) or 'no columns'} (map columns with --mapping)"
        )


def import_file(
    *,
    kind: str,
    path: Path,
    mapping: Mapping | None = None,
    source: str | None = None,
    user: Any = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one file of ``kind`` (CSV, Parquet or JSONL)."""
    if kind not in KINDS:
        raise ValidationFailed(f"unknown kind '{kind}': choose one of {', '.join(KINDS)}")
    mapping = mapping or Mapping()
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    check_columns(kind, path, mapping)

    def load() -> list[Part]:
        lines, table = read_file(path)
        return [Part(kind, path.name, lines, table, mapping)]

    return import_parts(
        label=kind,
        source=source or mapping.source or "shop",
        path=str(path),
        parts=load,
        user=user,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        progress=progress,
    )


def import_parts(
    *,
    label: str,
    source: str,
    path: str,
    parts: list[Part] | Callable[[], list[Part]],
    user: Any = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Parse all parts, then write them in load order inside one transaction. ``parts`` may be a
    function that reads them, so that a file refused while reading is recorded as a batch too."""
    started = time.monotonic()
    batch = ImportBatch.objects.create(
        kind=label,
        source=source,
        path=path[:500],
        started_at=timezone.now(),
        started_by=user if getattr(user, "is_authenticated", False) else None,
    )
    # A batch killed before publishing left staged event files; one still running keeps its own.
    recent = timezone.now() - timedelta(days=1)
    running = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING, started_at__gte=recent)
    lake.staging_clean(settings.LAKE_DIR, keep=set(running.values_list("pk", flat=True)))
    summary = ImportSummary(
        batch=batch.pk,
        kind=label,
        source=source,
        path=path,
        status=ImportBatch.Status.RUNNING,
        dry_run=dry_run,
    )
    try:
        parsed = _parse_all(parts() if callable(parts) else parts, progress)
        summary.read = sum(p.read for p in parsed)
        summary.duplicates = sum(p.duplicates for p in parsed)
        errors = [e for p in parsed for e in p.errors]
        staged: list[lake.StagedEvents] = []
        if errors and not skip_invalid:
            summary.status = ImportBatch.Status.REJECTED
        else:
            try:
                errors += _write_all(
                    parsed, summary, batch, user, skip_invalid, dry_run, staged, progress
                )
                if dry_run:
                    summary.status = ImportBatch.Status.DRY_RUN
                else:
                    summary.status = ImportBatch.Status.COMMITTED
            except _Rollback as rollback:
                errors = rollback.errors
                summary.status = (
                    ImportBatch.Status.DRY_RUN
                    if dry_run and not errors
                    else ImportBatch.Status.REJECTED
                )
                _zero_counts(summary)
            for events in staged:
                if summary.status == ImportBatch.Status.COMMITTED:
                    lake.publish(events)
                else:
                    lake.discard(events)
        _finish_errors(
            summary, errors, skip_invalid and summary.status == ImportBatch.Status.COMMITTED
        )
    except ValidationFailed as exc:
        summary.status = ImportBatch.Status.REJECTED
        summary.errors = exc.details or [
            {"file": "", "line": 0, "field": "", "value": "", "reason": exc.message}
        ]
        summary.rejected = max(summary.rejected, 1)
        _zero_counts(summary)
    except BaseException:
        _save_batch(batch, summary, ImportBatch.Status.FAILED, started)
        raise
    _save_batch(batch, summary, summary.status, started)
    if summary.status == ImportBatch.Status.COMMITTED and (summary.inserted or summary.updated):
        changed = {k for k, c in summary.by_kind.items() if c.get("inserted") or c.get("updated")}
        for receiver, outcome in batch_committed.send_robust(
            sender=ImportBatch, batch_id=batch.pk, kinds=changed
        ):
            if isinstance(outcome, Exception):
                logger.error("after import batch %s: %s failed: %r", batch.pk, receiver, outcome)
    return summary


def _zero_counts(summary: ImportSummary) -> None:
    summary.inserted = summary.updated = summary.unchanged = 0
    for counts in summary.by_kind.values():
        counts.update(inserted=0, updated=0, unchanged=0)


def _parse_all(parts: list[Part], progress: Progress | None) -> list[ParsedTable]:
    parsed = []
    for part in parts:
        if progress:
            progress(f"check {part.file_label}", 0, None)
        result = parse_table(
            KINDS[part.kind],
            part.lines,
            part.table,
            mapping=part.mapping,
            file_label=part.file_label,
            labels=part.labels,
        )
        if progress:
            progress(f"check {part.file_label}", result.read, result.read)
        parsed.append(result)
    parsed.sort(key=lambda p: LOAD_ORDER.index(p.kind))
    return parsed


def _write_all(
    parsed: list[ParsedTable],
    summary: ImportSummary,
    batch: ImportBatch,
    user: Any,
    skip_invalid: bool,
    dry_run: bool,
    staged: list[lake.StagedEvents],
    progress: Progress | None,
) -> list[RowError]:
    errors: list[RowError] = []
    with transaction.atomic():
        audit: list[AuditEntry] = []
        for part in parsed:
            counts = summary.by_kind.setdefault(
                part.kind, {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
            )
            counts["read"] += part.read
            counts["rejected"] += len({e.line for e in part.errors})
            total = part.rows
            done = [0]

            def tick(
                n: int, label: str = f"load {part.file}", total: int = total, done: list[int] = done
            ) -> None:
                done[0] += n
                if progress:
                    progress(label, done[0], total)

            if part.kind == "events":
                new_errors, inserted, unchanged = _write_events(
                    part, summary.source, batch.pk, staged
                )
                part_errors = new_errors
                counts["inserted"] += inserted
                counts["unchanged"] += unchanged
                tick(total)
            else:
                result = write_table(part.kind, part, source=summary.source, on_progress=tick)
                part_errors = result.errors
                counts["inserted"] += result.inserted
                counts["updated"] += result.updated
                counts["unchanged"] += result.unchanged
                audit.extend(result.audit)
                if part.kind == "customers":
                    refused = {e.external_id for e in part_errors}
                    addresses_sync(part.table, source=summary.source, skip=refused)
            counts["rejected"] += len({e.line for e in part_errors})
            errors.extend(part_errors)
        summary.inserted = sum(c["inserted"] for c in summary.by_kind.values())
        summary.updated = sum(c["updated"] for c in summary.by_kind.values())
        summary.unchanged = sum(c["unchanged"] for c in summary.by_kind.values())
        if (errors and not skip_invalid) or dry_run:
            raise _Rollback(errors)
        audit.append(
            AuditEntry(
                "import",
                "ingest.ImportBatch",
                str(batch.pk),
                None,
                f"{summary.kind} from {summary.path}: {summary.inserted} inserted, "
                f"{summary.updated} updated",
                {"by_kind": summary.by_kind},
            )
        )
        label = f"import batch {batch.pk}" + (
            f" by {user}" if getattr(user, "is_authenticated", False) else ""
        )
        audit_record_many(audit, actor=user, actor_label=label)
    return errors


def _write_events(
    part: ParsedTable, source: str, batch_id: int, staged: list[lake.StagedEvents]
) -> tuple[list[RowError], int, int]:
    table = part.table
    customers = table.column("customer_external_id").to_pylist()
    known = id_map(Customer, source, customers)
    lines = table.column("_line").to_pylist()
    errors = [
        RowError(
            part.file,
            line,
            "customer_external_id",
            ext,
            f"unknown customer '{ext}' in source '{source}'",
        )
        for line, ext in zip(lines, customers, strict=True)
        if ext not in known
    ]
    if errors:
        table = table.filter(pa.array([ext in known for ext in customers]))
    devices_sync(table, customer_ids=known)
    events = lake.stage_events(settings.LAKE_DIR, table, source=source, batch_id=batch_id)
    staged.append(events)
    return errors, events.inserted, events.unchanged


def _finish_errors(summary: ImportSummary, errors: list[RowError], write_rejects: bool) -> None:
    summary.rejected = len({(e.file, e.line) for e in errors})
    summary.errors = [e.as_dict() for e in errors[:MAX_ERRORS_KEPT]]
    if errors and write_rejects:
        folder = Path(settings.HOME) / "rejects"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"batch-{summary.batch}.csv"
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["file", "line", "field", "value", "reason", "external_id"]
            )
            writer.writeheader()
            writer.writerows(e.as_dict() for e in errors)
        summary.rejects_file = str(target)


def _save_batch(batch: ImportBatch, summary: ImportSummary, status: str, started: float) -> None:
    summary.seconds = round(time.monotonic() - started, 3)
    batch.status = status
    batch.finished_at = timezone.now()
    batch.read = summary.read
    batch.inserted = summary.inserted
    batch.updated = summary.updated
    batch.unchanged = summary.unchanged
    batch.rejected = summary.rejected
    batch.errors = summary.errors[:50]
    batch.rejects_path = summary.rejects_file
    batch.counts_by_kind = summary.by_kind
    batch.save()
