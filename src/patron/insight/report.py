"""The monthly customer-value report (R-C5): value by grade and by RFM segment, the customers
whose grade changed, the core and potential customers most likely to churn, the top customers.

A report describes one month as of its end. Scores are the latest ones known at the month's
cut-off (the first day of the next month: a score "as of D" used the data before D): the
latest scores in the database when they are not newer than that, else the newest score
snapshot in the lake (``patron.scoring.writeback.snapshot_write``) at or before it, else — no
snapshot kept that far back — the latest scores, and the report says they are later than the
month. Grade changes come from the grade history, which is exact for any month.

The figures are computed over Arrow (one SELECT or one Parquet file, never one ORM object per
customer); money is summed as decimals and stored as strings with two decimals. Each report is
kept whole as ``Snapshot(kind="report:YYYY-MM")``: exports and pages read it, never the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from patron.account.roles import CHANGE_TARGETS, VIEW_INSIGHTS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.customer.models import Customer
from patron.errors import NotFound, ValidationFailed
from patron.insight.models import Snapshot
from patron.intelligence.grading import GRADES
from patron.intelligence.models.rfm import CLASSES
from patron.scoring.extract import fetch_arrow
from patron.scoring.models import CustomerScore, Grade, GradeHistory
from patron.scoring.writeback import snapshots_dir

KIND_PREFIX = "report:"
#: The sections of a report, in the order pages and workbooks show them.
SECTIONS = ("by_grade", "by_segment", "movers", "churn_risk", "top_customers")
#: How many customers the churn-risk and top-customer lists hold.
LIST_SIZE = 50
#: Customers with no RFM segment (they never bought): a row of their own when there are any.
NO_SEGMENT = ""
NO_SEGMENT_LABELS = ("未购买", "No purchase yet")
#: Version of the stored layout: pages and exports read reports of this version.
LAYOUT_VERSION = 1

_CENT = Decimal("0.01")
_MONEY = pa.decimal128(38, 2)
_SEGMENTS = [(code, zh, en) for code, zh, en in CLASSES.values()]
_GRADE_LEVEL = {grade: level for level, grade in enumerate(reversed(GRADES))}


# ---------------------------------------------------------------------- months


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(day: date) -> date:
    """The first day of the month before ``day``'s month."""
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def _kind(month: date) -> str:
    return f"{KIND_PREFIX}{month:%Y-%m}"


# ---------------------------------------------------------------------- the scores


@dataclass(frozen=True)
class ScoreSource:
    """Where the report's scores came from."""

    source: str  # "scores" (the latest, in the database) or "snapshot" (the lake)
    as_of: date | None
    run_id: int | None
    is_later_than_month: bool


def _empty_scores() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([], pa.int64()),
            "grade": pa.array([], pa.string()),
            "clv_12m": pa.array([], _MONEY),
            "credit_score": pa.array([], pa.float64()),
            "churn_probability": pa.array([], pa.float64()),
            "rfm_segment": pa.array([], pa.string()),
            "expected_orders_90d": pa.array([], pa.float64()),
            "days_since_last_purchase": pa.array([], pa.int64()),
        }
    )


def _normalised(table: pa.Table) -> pa.Table:
    """One shape whichever source: money as exact cents, text never null."""

    def column(name: str) -> pa.ChunkedArray | pa.Array:
        if name in table.column_names:
            return table.column(name)
        return pa.nulls(table.num_rows)

    clv = pc.round(pc.cast(column("clv_12m"), pa.float64()), 2)
    return pa.table(
        {
            "customer_id": pc.cast(column("customer_id"), pa.int64()),
            "grade": pc.fill_null(pc.cast(column("grade"), pa.string()), ""),
            "clv_12m": pc.cast(clv, _MONEY),
            "credit_score": pc.cast(column("credit_score"), pa.float64()),
            "churn_probability": pc.cast(column("churn_probability"), pa.float64()),
            "rfm_segment": pc.fill_null(pc.cast(column("rfm_segment"), pa.string()), NO_SEGMENT),
            "expected_orders_90d": pc.cast(column("expected_orders_90d"), pa.float64()),
            "days_since_last_purchase": pc.cast(column("days_since_last_purchase"), pa.int64()),
        }
    )


def _latest_scores() -> pa.Table:
    real = "DOUBLE PRECISION" if connection.vendor == "postgresql" else "REAL"
    table = fetch_arrow(
        f"SELECT customer_id, grade, CAST(clv_12m AS {real}) AS clv_12m, credit_score, "
        "churn_probability, rfm_segment, expected_orders_90d, days_since_last_purchase "
        f"FROM {CustomerScore._meta.db_table}"
    )
    return _normalised(table) if table.num_rows else _empty_scores()


def _snapshot_at_or_before(
    cut_off: date, lake: Path | None = None
) -> tuple[date, int, Path] | None:
    """The newest lake snapshot of the scores as of ``cut_off`` or earlier."""
    found: list[tuple[date, int, Path]] = []
    for path in snapshots_dir(lake).glob("as_of=*/run-*.parquet"):
        try:
            as_of = date.fromisoformat(path.parent.name.removeprefix("as_of="))
            run_id = int(path.stem.removeprefix("run-"))
        except ValueError:
            continue
        if as_of <= cut_off:
            found.append((as_of, run_id, path))
    return max(found, key=lambda item: (item[0], item[1])) if found else None


def _scores_as_of(cut_off: date) -> tuple[pa.Table, ScoreSource]:
    latest = CustomerScore.objects.order_by("-as_of", "-run_id").values_list("as_of", "run_id")
    first = latest.first()
    if first is None:
        return _empty_scores(), ScoreSource("scores", None, None, is_later_than_month=False)
    as_of, run_id = first
    if as_of > cut_off:
        snapshot = _snapshot_at_or_before(cut_off, Path(settings.LAKE_DIR))
        if snapshot is not None:
            snapshot_as_of, snapshot_run, path = snapshot
            table = _normalised(pq.read_table(path))
            return table, ScoreSource("snapshot", snapshot_as_of, snapshot_run, False)
    return _latest_scores(), ScoreSource("scores", as_of, run_id, as_of > cut_off)


# ---------------------------------------------------------------------- the sections


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(_CENT, ROUND_HALF_UP):.2f}"


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _split(label: str) -> tuple[str, str]:
    """``"核心客户 Core"`` -> ("核心客户", "Core")."""
    chinese, _, english = str(label).partition(" ")
    return chinese, english


def _value_rows(scores: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    """Per value of ``key``: customers, total and mean CLV (over customers with a CLV: those
    who never bought have none), mean credit score and churn probability (over known values)."""
    if scores.num_rows == 0:
        return {}
    grouped = scores.group_by(key).aggregate(
        [
            ([], "count_all"),
            ("clv_12m", "sum"),
            ("clv_12m", "count"),
            ("credit_score", "mean"),
            ("churn_probability", "mean"),
        ]
    )
    result: dict[str, dict[str, Any]] = {}
    for row in grouped.to_pylist():
        total: Decimal | None = row["clv_12m_sum"]
        valued: int = row["clv_12m_count"]
        result[row[key]] = {
            "customers": row["count_all"],
            "clv_total": _money(total if total is not None else Decimal(0)),
            "clv_mean": _money(total / valued) if total is not None and valued else None,
            "credit_score_mean": _rounded(row["credit_score_mean"], 1),
            "churn_probability_mean": _rounded(row["churn_probability_mean"], 4),
        }
    return result


def _empty_values() -> dict[str, Any]:
    return {
        "customers": 0,
        "clv_total": "0.00",
        "clv_mean": None,
        "credit_score_mean": None,
        "churn_probability_mean": None,
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _by_grade(scores: pa.Table) -> list[dict[str, Any]]:
    values = _value_rows(scores, "grade")
    graded = sum(values.get(grade, _empty_values())["customers"] for grade in GRADES)
    rows = []
    for grade in GRADES:
        chinese, english = _split(Grade(grade).label)
        row = values.get(grade, _empty_values())
        rows.append(
            {
                "grade": grade,
                "label_zh": chinese,
                "label_en": english,
                **row,
                "share": _share(row["customers"], graded),
            }
        )
    return rows


def _by_segment(scores: pa.Table) -> list[dict[str, Any]]:
    values = _value_rows(scores, "rfm_segment")
    rows = []
    segments = list(_SEGMENTS)
    if values.get(NO_SEGMENT):
        segments.append((NO_SEGMENT, *NO_SEGMENT_LABELS))
    for code, chinese, english in segments:
        row = values.get(code, _empty_values())
        rows.append(
            {
                "segment": code,
                "label_zh": chinese,
                "label_en": english,
                **row,
                "share": _share(row["customers"], scores.num_rows),
            }
        )
    return rows


def _movers(first: date, after: date) -> dict[str, Any]:
    """Grade periods starting in the month that follow an earlier period of the customer:
    one row per change (a customer changed twice in a month has two rows)."""
    before = (
        GradeHistory.objects.filter(
            customer_id=OuterRef("customer_id"), valid_from__lt=OuterRef("valid_from")
        )
        .order_by("-valid_from")
        .values("grade")[:1]
    )
    changes = (
        GradeHistory.objects.filter(valid_from__gte=first, valid_from__lt=after)
        .annotate(previous_grade=Subquery(before))
        .filter(previous_grade__isnull=False)
        .order_by("valid_from", "customer_id")
        .values_list("customer_id", "customer__name", "previous_grade", "grade", "valid_from")
    )
    rows = []
    for customer_id, name, was, grade, day in changes.iterator(chunk_size=5000):
        if was == grade or was not in _GRADE_LEVEL or grade not in _GRADE_LEVEL:
            continue
        rows.append(
            {
                "customer_id": customer_id,
                "name": name,
                "from_grade": was,
                "to_grade": grade,
                "direction": "up" if _GRADE_LEVEL[grade] > _GRADE_LEVEL[was] else "down",
                "date": day.isoformat(),
            }
        )
    return {
        "up": sum(1 for row in rows if row["direction"] == "up"),
        "down": sum(1 for row in rows if row["direction"] == "down"),
        "rows": rows,
    }


def _names(ids: list[int]) -> dict[int, str]:
    return dict(Customer.objects.filter(pk__in=ids).values_list("pk", "name"))


def _churn_risk(scores: pa.Table) -> list[dict[str, Any]]:
    candidates = scores.filter(
        pc.and_(
            pc.is_in(scores.column("grade"), pa.array(["core", "potential"])),
            pc.is_valid(scores.column("churn_probability")),
        )
    )
    top = candidates.sort_by(
        [
            ("churn_probability", "descending"),
            ("clv_12m", "descending"),
            ("customer_id", "ascending"),
        ]
    ).slice(0, LIST_SIZE)
    rows = top.to_pylist()
    names = _names([row["customer_id"] for row in rows])
    return [
        {
            "rank": rank,
            "customer_id": row["customer_id"],
            "name": names.get(row["customer_id"], ""),
            "grade": row["grade"],
            "churn_probability": _rounded(row["churn_probability"], 4),
            "clv_12m": _money(row["clv_12m"]),
            "days_since_last_purchase": row["days_since_last_purchase"],
        }
        for rank, row in enumerate(rows, start=1)
    ]


def _top_customers(scores: pa.Table) -> list[dict[str, Any]]:
    valued = scores.filter(pc.is_valid(scores.column("clv_12m")))
    top = valued.sort_by([("clv_12m", "descending"), ("customer_id", "ascending")])
    rows = top.slice(0, LIST_SIZE).to_pylist()
    names = _names([row["customer_id"] for row in rows])
    return [
        {
            "rank": rank,
            "customer_id": row["customer_id"],
            "name": names.get(row["customer_id"], ""),
            "grade": row["grade"],
            "clv_12m": _money(row["clv_12m"]),
            "credit_score": None if row["credit_score"] is None else int(row["credit_score"]),
            "churn_probability": _rounded(row["churn_probability"], 4),
            "rfm_segment": row["rfm_segment"],
            "expected_orders_90d": _rounded(row["expected_orders_90d"], 2),
        }
        for rank, row in enumerate(rows, start=1)
    ]


def report_build(month: date, *, today: date | None = None) -> dict[str, Any]:
    """The value report of ``month`` (any day in it) as JSON values: see the module docstring.

    Reads the database and the lake, writes nothing. A month that has not started yet is
    refused; the month still running is reported as of ``today`` (default: today in the
    merchant's time zone), with ``is_complete`` false.
    """
    first = month.replace(day=1)
    today = today or timezone.localdate()
    if first > today:
        raise ValidationFailed(f"month: {first:%Y-%m} has not started yet")
    after = next_month(first)
    scores, source = _scores_as_of(after)
    graded = pc.sum(pc.is_in(scores.column("grade"), pa.array(list(GRADES)))).as_py() or 0
    total = pc.sum(scores.column("clv_12m")).as_py()
    return {
        "version": LAYOUT_VERSION,
        "month": f"{first:%Y-%m}",
        "first_day": first.isoformat(),
        "last_day": (after - timedelta(days=1)).isoformat(),
        "is_complete": after <= today,
        "currency": settings.DEFAULT_CURRENCY,
        "scores": {
            "source": source.source,
            "as_of": source.as_of.isoformat() if source.as_of else None,
            "run_id": source.run_id,
            "is_later_than_month": source.is_later_than_month,
        },
        "totals": {
            "customers": scores.num_rows,
            "graded": graded,
            "clv_total": _money(total if total is not None else Decimal(0)),
        },
        "by_grade": _by_grade(scores),
        "by_segment": _by_segment(scores),
        "movers": _movers(first, after),
        "churn_risk": _churn_risk(scores),
        "top_customers": _top_customers(scores),
    }


# ---------------------------------------------------------------------- storing and reading


def report_generate(month: date, user: Any = None) -> Snapshot:
    """Build the report of ``month`` and keep it, replacing any earlier one of that month.

    Idempotent: generating again gives the same report (with the scores then known). Without
    a user it is the scheduled job; a user needs ``CHANGE_TARGETS`` and is audited.
    """
    if user is not None:
        require_permission(user, CHANGE_TARGETS)
    data = report_build(month)
    data["generated_by"] = user.get_username() if user is not None else "system"
    with transaction.atomic():
        snapshot, created = Snapshot.objects.update_or_create(
            kind=_kind(month.replace(day=1)),
            defaults={"data": data, "computed_at": timezone.now()},
        )
        if user is not None:
            audit_record(
                AuditEntry(
                    action="create" if created else "update",
                    entity_type="insight.report",
                    entity_id=data["month"],
                    summary=f"value report {data['month']} "
                    + ("generated" if created else "regenerated"),
                    changes={"customers": data["totals"]["customers"]},
                ),
                actor=user,
            )
    return snapshot


@dataclass(frozen=True)
class ReportInfo:
    month: str
    computed_at: datetime
    generated_by: str
    customers: int
    scores_as_of: date | None
    is_complete: bool


def report_list(*, user: Any) -> list[ReportInfo]:
    """The stored reports, newest month first (reading only a few keys of each)."""
    require_permission(user, VIEW_INSIGHTS)
    rows = (
        Snapshot.objects.filter(kind__startswith=KIND_PREFIX)
        .order_by("-kind")
        .values_list(
            "kind",
            "computed_at",
            "data__generated_by",
            "data__totals__customers",
            "data__scores__as_of",
            "data__is_complete",
        )
    )
    return [
        ReportInfo(
            month=kind.removeprefix(KIND_PREFIX),
            computed_at=computed_at,
            generated_by=generated_by or "",
            customers=int(customers or 0),
            scores_as_of=date.fromisoformat(scores_as_of) if scores_as_of else None,
            is_complete=bool(is_complete),
        )
        for kind, computed_at, generated_by, customers, scores_as_of, is_complete in rows
    ]


def report_get(month: date, *, user: Any = None) -> dict[str, Any]:
    """The stored report of ``month`` with ``computed_at``; a user needs ``VIEW_INSIGHTS``."""
    if user is not None:
        require_permission(user, VIEW_INSIGHTS)
    snapshot = Snapshot.objects.filter(kind=_kind(month.replace(day=1))).first()
    if snapshot is None:
        raise NotFound(f"no value report for {month:%Y-%m}: generate it first")
    return {**snapshot.data, "computed_at": snapshot.computed_at.isoformat()}
