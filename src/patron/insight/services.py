"""Filling the KPI tables, incrementally, and the targets staff set.

``metrics_fill`` computes each metric (``patron.insight.metrics``) for the months it has not
filled yet, through the intelligence pipeline's engine, and commits one metric at a time, moving
its ``FillState`` forward in the same transaction: a fill killed half-way resumes with the next
metric and month. A month becomes final ``SETTLE_DAYS`` after it ends (late returns, resolutions
and scores still change it until then); the months before that are recomputed on every fill.
Data imported late for a month already final is picked up only by ``rebuild=True`` (say so in
the docs, and run it after a back-dated import).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from patron.account.roles import CHANGE_TARGETS
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.errors import NotFound, ValidationFailed
from patron.insight import metrics, rules
from patron.insight.models import FillState, MetricValue, Snapshot, Target

Progress = Callable[[str, int, int | None], None]

#: How many months of cohorts the dashboard's retention heatmap keeps.
COHORT_MONTHS = 12
#: A month is final this many days after it ends: returns keep arriving for 30 days after
#: delivery, resolutions for 7 days, late CSAT scores for a while. Until then every fill
#: recomputes it.
SETTLE_DAYS = 31


def month_start(day: date) -> date:
    return day.replace(day=1)


def load_grades() -> pa.Table:
    """The grade history as ``metrics`` reads it (customer_id, grade, valid_from, valid_to)."""
    from patron.scoring.models import GradeHistory

    rows = list(GradeHistory.objects.values_list("customer_id", "grade", "valid_from", "valid_to"))
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 4
    return pa.table(
        {
            "customer_id": pa.array(columns[0], pa.int64()),
            "grade": pa.array(columns[1], pa.string()),
            "valid_from": pa.array(columns[2], pa.date32()),
            "valid_to": pa.array(columns[3], pa.date32()),
        }
    )


def load_insight_sources() -> Any:
    from patron.scoring.sources import load_sources

    sources = load_sources()
    sources.extra["grades"] = load_grades()
    return sources


def _first_month(sources: Any) -> date | None:
    """The month of the earliest order or registration: where filling starts."""
    import pyarrow.compute as pc

    candidates = []
    for table, column in ((sources.orders, "placed_at"), (sources.customers, "registered_at")):
        if table.num_rows:
            earliest = pc.min(table.column(column)).as_py()
            if earliest is not None:
                candidates.append(earliest.date())
    return month_start(min(candidates)) if candidates else None


@dataclass
class FillSummary:
    months: dict[str, int] = field(default_factory=dict)  # metric -> months written
    skipped: list[str] = field(default_factory=list)  # metrics without data
    seconds: float = 0.0


def metrics_fill(
    *, today: date | None = None, rebuild: bool = False, progress: Progress | None = None
) -> FillSummary:
    """Fill every metric up to the month of ``today`` (default: today, merchant's zone)."""
    started = time.monotonic()
    today = today or timezone.localdate()
    current = month_start(today)
    # The first month that is not final yet: every later month is recomputed on each fill.
    settling = month_start(today - timedelta(days=SETTLE_DAYS))
    sources = load_insight_sources()
    first = _first_month(sources)
    summary = FillSummary()
    if first is None:
        summary.skipped = list(metrics.METRICS)
        return summary
    if rebuild:
        with transaction.atomic():
            FillState.objects.all().delete()
            MetricValue.objects.all().delete()
    keys = list(metrics.METRICS)
    for done, key in enumerate(keys):
        if progress:
            progress("fill metrics", done, len(keys))
        if not metrics.has_data(sources, key):
            summary.skipped.append(key)
            continue
        state = FillState.objects.filter(metric=key).first()
        start = first
        if state is not None and state.filled_through is not None:
            start = rules.add_months(state.filled_through, 1)
        months = metrics.months(start, rules.add_months(current, 1))
        if not months:
            continue
        table = metrics.compute(sources, key, months)
        now = timezone.now()
        rows = [
            MetricValue(
                metric=key,
                period=row["period"],
                value=row["value"],
                numerator=row["numerator"],
                denominator=row["denominator"],
                is_final=row["period"] < settling,
                computed_at=now,
            )
            for row in table.to_pylist()
        ]
        with transaction.atomic():
            MetricValue.objects.filter(metric=key, period__in=months).delete()
            MetricValue.objects.bulk_create(rows, batch_size=1000)
            finals = [m for m in months if m < settling]
            if finals:
                FillState.objects.update_or_create(
                    metric=key, defaults={"filled_through": max(finals)}
                )
        summary.months[key] = len(rows)
    _snapshots_refresh(sources, current)
    if progress:
        progress("fill metrics", len(keys), len(keys))
    targets_seed(today=today)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _snapshots_refresh(sources: Any, current: date) -> None:
    """Cohort retention and quarter-on-quarter grade movement, kept for the dashboard."""
    first = rules.add_months(current, -(COHORT_MONTHS - 1))
    cohorts = metrics.cohort_retention(sources, first, current).to_pylist()
    quarter = date(current.year, 3 * ((current.month - 1) // 3) + 1, 1)
    grades = sources.extra["grades"]
    movement = (
        metrics.grade_movement(grades, rules.add_months(quarter, -3), quarter)
        if grades.num_rows
        else None
    )
    now = timezone.now()
    with transaction.atomic():
        Snapshot.objects.update_or_create(
            kind="cohorts",
            defaults={
                "data": _jsonable({"first": first, "last": current, "rows": cohorts}),
                "computed_at": now,
            },
        )
        Snapshot.objects.update_or_create(
            kind="grade_movement",
            defaults={
                "data": _jsonable(
                    {
                        "before": rules.add_months(quarter, -3),
                        "after": quarter,
                        "movement": movement,
                    }
                ),
                "computed_at": now,
            },
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------- targets


def latest_values(keys: set[str]) -> dict[str, tuple[date, float]]:
    """Each metric's value in its last complete month, with that month, in one query (metrics
    without a complete month are left out)."""
    latest: dict[str, tuple[date, float]] = {}
    rows = (
        MetricValue.objects.filter(metric__in=keys, is_final=True, value__isnull=False)
        .order_by("metric", "period")
        .values_list("metric", "period", "value")
    )
    for key, period, value in rows:
        if value is not None:
            latest[key] = (period, value)
    return latest


def latest_value(metric: str) -> tuple[date, float] | None:
    """The metric's value in the last complete month, with that month."""
    return latest_values({metric}).get(metric)


def targets_seed(*, today: date) -> int:
    """The seed documents' targets, once each, as soon as their metric has a value."""
    made = 0
    for default in rules.SEED_TARGETS:
        if Target.objects.filter(metric=default.metric, is_default=True).exists():
            continue
        latest = latest_value(default.metric)
        if latest is None:
            continue
        Target.objects.create(
            metric=default.metric,
            name=default.name,
            baseline=latest[1],
            baseline_period=latest[0],
            target_value=default.target_value,
            target_change=default.target_change,
            starts_on=today,
            deadline=rules.add_months(today, default.months),
            owner="",
            note="From the seed documents (R-J2); edit as you see fit",
            is_default=True,
        )
        made += 1
    return made


EDITABLE = ("name", "target_value", "target_change", "deadline", "owner", "note", "baseline")


def _target_check(target: Target) -> None:
    where = f"target {target.name!r}" if target.name else "target"
    if target.metric not in metrics.METRICS:
        raise ValidationFailed(
            f"{where}.metric: unknown metric {target.metric!r}; choose from "
            f"{', '.join(metrics.METRICS)}"
        )
    if (target.target_value is None) == (target.target_change is None):
        raise ValidationFailed(f"{where}: set exactly one of target_value and target_change")
    if target.target_change is not None and target.target_change <= -1:
        raise ValidationFailed(f"{where}.target_change: a share above −1 (e.g. −0.2 for −20 %)")
    if target.deadline <= target.starts_on:
        raise ValidationFailed(f"{where}.deadline: must be after the start ({target.starts_on})")
    if not target.name.strip():
        raise ValidationFailed(f"{where}.name: required")


def target_create(
    *,
    user: Any,
    metric: str,
    name: str,
    deadline: date,
    target_value: float | None = None,
    target_change: float | None = None,
    owner: str = "",
    note: str = "",
) -> Target:
    """A new target; its baseline is the metric's value in the last complete month."""
    require_permission(user, CHANGE_TARGETS)
    today = timezone.localdate()
    latest = latest_value(metric) if metric in metrics.METRICS else None
    target = Target(
        metric=metric,
        name=name.strip(),
        baseline=latest[1] if latest else 0.0,
        baseline_period=latest[0] if latest else month_start(today),
        target_value=target_value,
        target_change=target_change,
        starts_on=today,
        deadline=deadline,
        owner=owner.strip(),
        note=note.strip(),
        created_by=user,
    )
    _target_check(target)
    if latest is None:
        raise ValidationFailed(
            f"target {name!r}.metric: {metric} has no value yet to start from; fill the metrics "
            "first (patron insights fill)"
        )
    with transaction.atomic():
        target.save()
        _audit_target(user, target, "target set", {"metric": metric, "goal": _goal_text(target)})
    return target


def target_update(*, user: Any, target_id: int, data: dict[str, Any]) -> Target:
    require_permission(user, CHANGE_TARGETS)
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            f"target {target_id}: cannot change {', '.join(unknown)}; editable: {', '.join(EDITABLE)}"
        )
    with transaction.atomic():
        target = Target.objects.select_for_update().filter(pk=target_id).first()
        if target is None:
            raise NotFound(f"target {target_id} not found")
        before = {name: getattr(target, name) for name in data}
        for name, value in data.items():
            setattr(target, name, value.strip() if isinstance(value, str) else value)
        if (
            "target_value" in data
            and data["target_value"] is not None
            and "target_change" not in data
        ):
            target.target_change = None
        if (
            "target_change" in data
            and data["target_change"] is not None
            and "target_value" not in data
        ):
            target.target_value = None
        _target_check(target)
        target.save()
        _audit_target(
            user,
            target,
            "target changed",
            {name: [str(before[name]), str(getattr(target, name))] for name in data},
        )
    return target


def target_delete(*, user: Any, target_id: int) -> None:
    require_permission(user, CHANGE_TARGETS)
    with transaction.atomic():
        target = Target.objects.select_for_update().filter(pk=target_id).first()
        if target is None:
            raise NotFound(f"target {target_id} not found")
        _audit_target(user, target, "target removed", {"metric": target.metric})
        target.delete()


def _goal_text(target: Target) -> str:
    if target.target_value is not None:
        return f"reach {target.target_value:g} by {target.deadline}"
    assert target.target_change is not None
    return f"{target.target_change:+.0%} from {target.baseline:g} by {target.deadline}"


def _audit_target(user: Any, target: Target, what: str, changes: dict[str, Any]) -> None:
    audit_record(
        AuditEntry(
            action="update",
            entity_type="insight.target",
            entity_id=str(target.pk),
            summary=f"{what}: {target.name}"[:300],
            changes=changes,
        ),
        actor=user,
    )
