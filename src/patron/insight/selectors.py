"""Reading insights: a metric's months for a period next to the period before, the targets
with where they stand, cohort retention and grade movement. Everything here reads the small
pre-aggregated tables ``metrics_fill`` keeps; only ``drill_down`` goes back to the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone, translation

from patron.account.roles import VIEW_INSIGHTS
from patron.account.services import require_permission
from patron.errors import NotFound, ValidationFailed
from patron.insight import metrics, rules
from patron.insight.models import FillState, MetricValue, Snapshot, Target
from patron.insight.services import latest_values

#: How a period's months combine into one figure. Stock metrics (a count or share at the end of
#: each month, or a trailing-12-month rate) take the last month; flows add up; ratios and means
#: divide the summed numerators by the summed denominators.
LAST = frozenset(
    {
        "customers",
        "repurchase_rate",
        "core_share",
        "grade_core",
        "grade_potential",
        "grade_ordinary",
    }
)
SUM = frozenset({"new_customers", "returning_customers"})
#: Purchase frequency per month divides by that month's distinct buyers: the months' sums would
#: count a customer once per month, so a period shows the mean of its months instead.
MEAN = frozenset({"purchase_frequency"})
MAX_MONTHS = 60


def label(metric: metrics.Metric) -> str:
    language = translation.get_language() or "en"
    return metric.label_zh if language.startswith("zh") else metric.label_en


def _metric(key: str) -> metrics.Metric:
    found = metrics.METRICS.get(key)
    if found is None:
        raise NotFound(f"no metric named {key!r}; the metrics are: {', '.join(metrics.METRICS)}")
    return found


@dataclass(frozen=True)
class Point:
    period: date
    value: float | None
    numerator: float | None
    denominator: float | None
    is_final: bool


def _points_of(keys: list[str], first: date, last: date) -> dict[str, list[Point]]:
    """Each metric's months from ``first`` to ``last``, in one query."""
    found: dict[str, list[Point]] = {key: [] for key in keys}
    rows = MetricValue.objects.filter(
        metric__in=keys, period__gte=first, period__lte=last
    ).order_by("metric", "period")
    for r in rows:
        found[r.metric].append(Point(r.period, r.value, r.numerator, r.denominator, r.is_final))
    return found


def combine(key: str, points: list[Point]) -> float | None:
    """One figure for a period from its months (see ``LAST`` and ``SUM``)."""
    known = [p for p in points if p.value is not None]
    if not known:
        return None
    if key in LAST:
        return known[-1].value
    if key in SUM:
        return float(sum(p.value for p in known if p.value is not None))
    if key in MEAN:
        return sum(p.value for p in known if p.value is not None) / len(known)
    numerator = sum(p.numerator or 0.0 for p in known)
    denominator = sum(p.denominator or 0.0 for p in known)
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class MetricSeries:
    key: str
    label: str
    unit: str
    direction: str
    definition: str
    first: date
    last: date
    points: list[Point]
    previous: list[Point]  # the same number of months just before
    value: float | None
    previous_value: float | None
    change: float | None  # relative change against the previous period

    @property
    def is_better(self) -> bool | None:
        if self.value is None or self.previous_value is None or self.value == self.previous_value:
            return None
        return (self.value > self.previous_value) == (self.direction == "up")


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last 12 complete months."""
    current = (today or timezone.localdate()).replace(day=1)
    return rules.add_months(current, -12), rules.add_months(current, -1)


def metric_series(*, user: Any, key: str, first: date, last: date) -> MetricSeries:
    return metric_series_many(user=user, keys=[key], first=first, last=last)[key]


def metric_series_many(
    *, user: Any, keys: list[str], first: date, last: date
) -> dict[str, MetricSeries]:
    """Each metric's months from ``first`` to ``last`` and the as long period before, with
    one figure for each period and the change between them; two queries for any number of
    metrics."""
    require_permission(user, VIEW_INSIGHTS)
    chosen = {key: _metric(key) for key in keys}
    if last < first:
        raise ValidationFailed(
            f"period: the end ({last:%Y-%m}) is before the start ({first:%Y-%m})"
        )
    span = (last.year - first.year) * 12 + last.month - first.month + 1
    if span > MAX_MONTHS:
        raise ValidationFailed(f"period: at most {MAX_MONTHS} months, got {span}")
    now = _points_of(keys, first, last)
    earlier = _points_of(keys, rules.add_months(first, -span), rules.add_months(first, -1))
    result = {}
    for key, metric in chosen.items():
        points, before = now[key], earlier[key]
        value, previous = combine(key, points), combine(key, before)
        change = (value - previous) / abs(previous) if value is not None and previous else None
        result[key] = MetricSeries(
            key=key,
            label=label(metric),
            unit=metric.unit,
            direction=metric.direction,
            definition=metric.definition,
            first=first,
            last=last,
            points=points,
            previous=before,
            value=value,
            previous_value=previous,
            change=change,
        )
    return result


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    unit: str
    direction: str
    definition: str
    filled_through: date | None
    latest_period: date | None
    latest_value: float | None


def metric_list(*, user: Any) -> list[MetricInfo]:
    """The registry in display order, with how far each metric is filled and its latest value
    (metrics without data are left out: they appear when their data exists)."""
    require_permission(user, VIEW_INSIGHTS)
    filled = dict(FillState.objects.values_list("metric", "filled_through"))
    latest: dict[str, tuple[date, float | None]] = {}
    for row in MetricValue.objects.order_by("metric", "period").values_list(
        "metric", "period", "value"
    ):
        latest[row[0]] = (row[1], row[2])
    return [
        MetricInfo(
            key=key,
            label=label(metric),
            unit=metric.unit,
            direction=metric.direction,
            definition=metric.definition,
            filled_through=filled.get(key),
            latest_period=latest[key][0],
            latest_value=latest[key][1],
        )
        for key, metric in metrics.METRICS.items()
        if key in latest
    ]


# ---------------------------------------------------------------------- targets


@dataclass(frozen=True)
class TargetView:
    id: int
    metric: str
    metric_label: str
    unit: str
    direction: str
    name: str
    baseline: float
    baseline_period: date
    target_value: float | None
    target_change: float | None
    goal: float
    starts_on: date
    deadline: date
    owner: str
    note: str
    is_default: bool
    current: float | None
    current_period: date | None
    progress: float | None
    time_elapsed: float
    status: str  # achieved, on_track, at_risk, missed, no_data


def _target_view(
    target: Target, today: date, latest: dict[str, tuple[date, float]] | None = None
) -> TargetView:
    metric = metrics.METRICS[target.metric]
    row = (latest_values({target.metric}) if latest is None else latest).get(target.metric)
    spec = rules.TargetSpec(
        direction=metric.direction,
        baseline=target.baseline,
        target_value=target.target_value,
        target_change=target.target_change,
        starts_on=target.starts_on,
        deadline=target.deadline,
    )
    progress = rules.target_progress(spec, row[1] if row else None, today)
    return TargetView(
        id=target.pk,
        metric=target.metric,
        metric_label=label(metric),
        unit=metric.unit,
        direction=metric.direction,
        name=translation.gettext(target.name) if target.is_default else target.name,
        baseline=target.baseline,
        baseline_period=target.baseline_period,
        target_value=target.target_value,
        target_change=target.target_change,
        goal=progress.goal,
        starts_on=target.starts_on,
        deadline=target.deadline,
        owner=target.owner,
        note=target.note,
        is_default=target.is_default,
        current=progress.current,
        current_period=row[0] if row else None,
        progress=progress.progress,
        time_elapsed=progress.time_elapsed,
        status=progress.status,
    )


def target_views(today: date | None = None) -> list[TargetView]:
    """Every target and where it stands (no permission check: the operator's CLI)."""
    day = today or timezone.localdate()
    targets = list(Target.objects.order_by("deadline", "id"))
    latest = latest_values({t.metric for t in targets})
    return [_target_view(t, day, latest) for t in targets]


def target_list(*, user: Any, today: date | None = None) -> list[TargetView]:
    require_permission(user, VIEW_INSIGHTS)
    return target_views(today)


def target_get(*, user: Any, target_id: int, today: date | None = None) -> TargetView:
    require_permission(user, VIEW_INSIGHTS)
    target = Target.objects.filter(pk=target_id).first()
    if target is None:
        raise NotFound(f"target {target_id} not found")
    return _target_view(target, today or timezone.localdate())


# ---------------------------------------------------------------------- snapshots and drill-down


def snapshot(*, user: Any, kind: str) -> dict[str, Any]:
    """``cohorts`` or ``grade_movement`` as the last fill left it, with when."""
    require_permission(user, VIEW_INSIGHTS)
    found = Snapshot.objects.filter(kind=kind).first()
    if found is None:
        raise NotFound(f"no {kind.replace('_', ' ')} yet: run patron insights fill")
    return {"computed_at": found.computed_at, **found.data}


def drill_down(*, user: Any, key: str, month: date, limit: int = 500) -> dict[str, Any]:
    """The customers behind a metric's value in a month (its numerator's customers)."""
    require_permission(user, VIEW_INSIGHTS)
    _metric(key)
    from patron.customer.models import Customer
    from patron.insight.services import load_insight_sources

    ids = metrics.drill(load_insight_sources(), key, month).to_pylist()
    shown = ids[:limit]
    names = dict(Customer.objects.filter(pk__in=shown).values_list("pk", "name"))
    return {
        "metric": key,
        "month": month,
        "count": len(ids),
        "customers": [{"id": pk, "name": names.get(pk, "")} for pk in shown],
    }


def _held_on(day: date, grade: str) -> QuerySet[Any]:
    from patron.scoring.models import GradeHistory

    return GradeHistory.objects.filter(grade=grade, valid_from__lte=day).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=day)
    )


def grade_movers(*, user: Any, key: str, moved_from: str, limit: int) -> dict[str, Any]:
    """The customers behind a cell of the grade-movement matrix: graded ``moved_from`` on the
    snapshot's ``before`` day and ``key``'s grade (``grade_<grade>``) on its ``after`` day, as
    ``metrics.grade_movement`` counts them (a well-kept history has no overlapping rows). ``was``
    and ``now`` are the two grades' codes; at most ``limit`` customers are listed."""
    require_permission(user, VIEW_INSIGHTS)
    grade = key.removeprefix("grade_")
    if not key.startswith("grade_") or grade not in metrics.GRADES:
        raise ValidationFailed(
            f"moved_from: only for a grade count (grade_core, grade_potential, grade_ordinary), "
            f"not {key}"
        )
    if moved_from not in metrics.GRADES:
        raise ValidationFailed(
            f"moved_from: one of {', '.join(metrics.GRADES)}, got {moved_from!r}"
        )
    found = snapshot(user=user, kind="grade_movement")
    before, after = date.fromisoformat(found["before"]), date.fromisoformat(found["after"])
    ids = list(
        _held_on(after, grade)
        .filter(customer_id__in=_held_on(before, moved_from).values("customer_id"))
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()
    )
    from patron.customer.models import Customer

    shown = ids[:limit]
    names = dict(Customer.objects.filter(pk__in=shown).values_list("pk", "name"))
    return {
        "before": before,
        "after": after,
        "was": moved_from,
        "now": grade,
        "count": len(ids),
        "customers": [{"id": pk, "name": names.get(pk, "")} for pk in shown],
    }
