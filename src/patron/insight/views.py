"""Insight pages (R-C4, R-J1, R-J2): the KPI dashboard, one metric with the customers behind a
month, and the targets.

Each view parses the request, calls the insight selectors or services and renders. Numbers are
formatted here by each metric's unit (ratios as %, money in ¥, minutes), and the charts are
ECharts options built here (``patron.web.charts``) whose points link to the drill-down
(``charts.with_drill``): a month of a metric opens ``/insights/metrics/<key>/?month=YYYY-MM``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from patron.account.roles import CHANGE_TARGETS, VIEW_CUSTOMERS
from patron.account.services import require_permission
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.insight import metrics, rules, selectors, services
from patron.web import charts
from patron.web.templatetags.patron_web import choice, money
from patron.web.views import patron_page

#: How many customers a drill-down lists (the count says how many there are in all).
DRILL_LIMIT = 500
#: Quick choices next to the period form: the last N complete months.
PRESET_MONTHS = (3, 6, 12, 24)
PREVIOUS_COLOUR = "#9ca3af"

STATUS_LABELS: dict[str, Promise] = {
    "achieved": gettext_lazy("Achieved"),
    "on_track": gettext_lazy("On track"),
    "at_risk": gettext_lazy("At risk"),
    "missed": gettext_lazy("Missed"),
    "no_data": gettext_lazy("No data"),
}
STATUS_TONES = {
    "achieved": "success",
    "on_track": "primary",
    "at_risk": "warning",
    "missed": "danger",
    "no_data": "secondary",
}


# ---------------------------------------------------------------------- formatting


def _month_text(day: date) -> str:
    return f"{day:%Y-%m}"


def _months(first: date, last: date) -> list[date]:
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    return [rules.add_months(first, index) for index in range(max(count, 0))]


def _plain(value: float, digits: int = 4) -> str:
    """A number without an exponent or trailing zeros: 0.85 → "0.85", 1234567.0 → "1234567"."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_value(value: float | None, unit: str) -> str:
    """A metric's value as people read it: ratios in %, money in ¥, minutes, whole counts."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "ratio":  # a small rate keeps two decimals: 0.42 %, not 0.4 %
        return f"{100 * value:.{1 if abs(value) >= 0.01 else 2}f} %"
    if unit == "money":
        return money(round(value, 2))
    if unit == "minutes":
        return _("%(minutes)s min") % {"minutes": f"{value:,.1f}"}
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def format_change(change: float | None) -> str:
    return "—" if change is None else f"{100 * change:+.1f} %"


def _chart_value(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    if unit == "ratio":
        return round(100 * value, 1)
    if unit == "count":
        return round(value)
    if unit == "per_customer":
        return round(value, 3)
    return round(value, 2)


def _axis_name(unit: str) -> str:
    return {"ratio": "%", "money": "¥", "minutes": _("min")}.get(unit, "")


def _title(label: str) -> str:
    return label[:1].upper() + label[1:]


def _grade_label(grade: str) -> str:
    from patron.scoring.models import Grade

    return choice(Grade(grade).label)


# ---------------------------------------------------------------------- the period


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def months(self) -> list[date]:
        return _months(self.first, self.last)

    @property
    def previous(self) -> Period:
        span = len(self.months)
        return Period(rules.add_months(self.first, -span), rules.add_months(self.first, -1))

    @property
    def query(self) -> str:
        return f"start={self.first:%Y-%m}&end={self.last:%Y-%m}"

    @property
    def text(self) -> str:
        return f"{self.first:%Y-%m} – {self.last:%Y-%m}"


def _period(data: QueryDict) -> Period:
    """``start`` and ``end`` (YYYY-MM); either one left out takes the default (the last 12
    complete months)."""
    first, last = selectors.default_period()
    start, end = data.get("start", "").strip(), data.get("end", "").strip()
    if start:
        first = rules.month_parse(start, "start")
    if end:
        last = rules.month_parse(end, "end")
    return Period(first, last)


def _presets() -> list[dict[str, str]]:
    last = selectors.default_period()[1]
    return [
        {
            "label": _("Last %(count)s months") % {"count": count},
            "start": _month_text(rules.add_months(last, 1 - count)),
            "end": _month_text(last),
        }
        for count in PRESET_MONTHS
    ]


def _drill_url(period: Period) -> str:
    """The metric page for ``{key}`` and ``{month}``, within ``period``."""
    path = reverse("web:insights-metric", args=["KEY"]).replace("KEY", "{key}")
    return f"{path}?{period.query}&month={{month}}"


# ---------------------------------------------------------------------- charts


def _aligned(points: Sequence[selectors.Point], months: Sequence[date]) -> list[float | None]:
    by_month = {point.period: point.value for point in points}
    return [by_month.get(month) for month in months]


def compare_chart(series: selectors.MetricSeries, period: Period) -> dict[str, Any]:
    """One metric month by month, the previous period's months dashed on the same axis;
    both link to their own month's customers."""
    months, before = period.months, period.previous.months
    option = charts.line(
        [_month_text(m) for m in months],
        [
            (
                _("This period"),
                [_chart_value(v, series.unit) for v in _aligned(series.points, months)],
            ),
            (
                _("Previous period"),
                [_chart_value(v, series.unit) for v in _aligned(series.previous, before)],
            ),
        ],
        y_name=_axis_name(series.unit),
    )
    option["series"][0]["symbolSize"] = 8
    option["series"][1].update(
        symbolSize=6, lineStyle={"type": "dashed"}, itemStyle={"color": PREVIOUS_COLOUR}
    )
    return charts.with_drill(
        option,
        _drill_url(period),
        [
            {"key": series.key, "month": [_month_text(m) for m in months]},
            {"key": series.key, "month": [_month_text(m) for m in before]},
        ],
    )


def _group_chart(
    group: Sequence[selectors.MetricSeries], period: Period, kind: str
) -> dict[str, Any]:
    """Several metrics of one unit over the period: lines, or stacked bars (parts of a whole)."""
    months = period.months
    labels = [_month_text(m) for m in months]
    values = [
        (_title(s.label), [_chart_value(v, s.unit) for v in _aligned(s.points, months)])
        for s in group
    ]
    unit = group[0].unit
    if kind == "stacked":
        option = charts.bars(labels, values, y_name=_axis_name(unit), stacked=True)
    else:
        option = charts.line(labels, values, y_name=_axis_name(unit))
        for line in option["series"]:
            line["symbolSize"] = 8
    return charts.with_drill(
        option, _drill_url(period), [{"key": s.key, "month": labels} for s in group]
    )


@dataclass(frozen=True)
class PanelSpec:
    id: str
    keys: tuple[str, ...]
    kind: str = "compare"  # compare (one metric vs the previous period), lines, stacked
    title: str | Promise | None = None  # None: the metric's label


@dataclass(frozen=True)
class SectionSpec:
    id: str
    title: str | Promise
    panels: tuple[PanelSpec, ...]


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "customers",
        gettext_lazy("Customers"),
        (
            PanelSpec("customers", ("customers",)),
            PanelSpec(
                "new-returning",
                ("new_customers", "returning_customers"),
                "stacked",
                gettext_lazy("New and returning customers"),
            ),
        ),
    ),
    SectionSpec(
        "purchasing",
        gettext_lazy("Purchasing"),
        (
            PanelSpec("repurchase-rate", ("repurchase_rate",)),
            PanelSpec("average-order-value", ("average_order_value",)),
            PanelSpec("purchase-frequency", ("purchase_frequency",)),
        ),
    ),
    SectionSpec(
        "service",
        gettext_lazy("Returns and service"),
        (
            PanelSpec("return-rate", ("return_rate",)),
            PanelSpec("complaint-rate", ("complaint_rate",)),
            PanelSpec(
                "service-quality",
                ("csat", "resolution_rate", "sla_attainment"),
                "lines",
                gettext_lazy("Satisfaction, resolution and SLA"),
            ),
            PanelSpec("first-response", ("first_response_minutes",)),
        ),
    ),
    SectionSpec(
        "grades",
        gettext_lazy("Grades"),
        (
            PanelSpec("core-share", ("core_share",)),
            PanelSpec(
                "grade-distribution",
                ("grade_core", "grade_potential", "grade_ordinary"),
                "stacked",
                gettext_lazy("Grade distribution"),
            ),
        ),
    ),
)


def _sections() -> list[SectionSpec]:
    """``SECTIONS``, and a chart of its own for any metric added to the registry later."""
    placed = {key for section in SECTIONS for panel in section.panels for key in panel.keys}
    others = tuple(
        PanelSpec(key.replace("_", "-"), (key,)) for key in metrics.METRICS if key not in placed
    )
    return (
        [*SECTIONS, SectionSpec("other", gettext_lazy("Other metrics"), others)]
        if others
        else list(SECTIONS)
    )


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    definition: str
    option: dict[str, Any]
    links: list[tuple[str, str]]  # (label, metric page) for each metric shown

    @property
    def script_id(self) -> str:
        return f"chart-{self.id}-data"


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    panels: list[Panel]


def _has_values(series: selectors.MetricSeries) -> bool:
    return any(point.value is not None for point in series.points)


def _panel(
    spec: PanelSpec, series: dict[str, selectors.MetricSeries], period: Period
) -> Panel | None:
    """The panel's chart over the metrics of it that have a value in the period (none: no panel)."""
    shown = [series[key] for key in spec.keys if key in series and _has_values(series[key])]
    if not shown:
        return None
    option = (
        compare_chart(shown[0], period)
        if spec.kind == "compare"
        else _group_chart(shown, period, spec.kind)
    )
    return Panel(
        id=spec.id,
        title=str(spec.title) if spec.title else _title(shown[0].label),
        definition=" ".join(f"{_title(s.label)}: {s.definition}" for s in shown)
        if len(shown) > 1
        else shown[0].definition,
        option=option,
        links=[
            (_title(s.label), reverse("web:insights-metric", args=[s.key]) + f"?{period.query}")
            for s in shown
        ],
    )


def cohort_chart(snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """Retention by monthly cohort: rows are the months of a first order (with the cohort's
    size), columns the months since; a cell opens the cohort's customers (the new customers of
    its month)."""
    rows = snapshot.get("rows") or []
    cohorts = sorted({row["cohort"] for row in rows})
    if not cohorts:
        return None
    width = max(row["months_since"] for row in rows) + 1
    rate = {(row["cohort"], row["months_since"]): row["rate"] for row in rows}
    size = {row["cohort"]: row["customers"] for row in rows}
    values = [
        [None if rate.get((c, m)) is None else round(100 * rate[(c, m)], 1) for m in range(width)]
        for c in cohorts
    ]
    later = [v for row in values for v in row[1:] if v is not None]
    if not any(v is not None for row in values for v in row):
        return None
    option = charts.matrix(
        [f"{c[:7]} ({size[c]})" for c in cohorts],
        [str(m) for m in range(width)],
        values,
        suffix="%",
        highest=max(later, default=100.0) or 100.0,
    )
    option["xAxis"]["name"] = _("months since the first order")
    option["xAxis"]["nameLocation"] = "middle"
    option["xAxis"]["nameGap"] = 24
    option["xAxis"]["position"] = "top"
    cell_months = [c[:7] for i, c in enumerate(cohorts) for v in values[i] if v is not None]
    drill = reverse("web:insights-metric", args=["KEY"]).replace("KEY", "{key}")
    return charts.with_drill(
        option,
        drill + "?start={month}&end={month}&month={month}",
        [{"key": "new_customers", "month": cell_months}],
    )


def movement_chart(snapshot: dict[str, Any]) -> dict[str, Any] | None:
    """The grade-movement matrix (rows: grade at the start of the last quarter, columns: at the
    start of this one); a cell opens its customers."""
    movement = snapshot.get("movement")
    if not movement or not any(sum(row) for row in movement["matrix"]):
        return None
    grades = movement["grades"]
    labels = [_grade_label(g) for g in grades]
    option = charts.heatmap(labels, labels, movement["matrix"])
    option["xAxis"]["name"] = _("after")
    option["yAxis"]["name"] = _("before")
    option["yAxis"]["inverse"] = True
    keys: list[str | None] = []
    was: list[str] = []
    for i, before in enumerate(grades):
        for j, after in enumerate(grades):
            keys.append(f"grade_{after}" if movement["matrix"][i][j] else None)
            was.append(before)
    drill = reverse("web:insights-metric", args=["KEY"]).replace("KEY", "{key}")
    return charts.with_drill(option, drill + "?moved_from={was}", [{"key": keys, "was": was}])


# ---------------------------------------------------------------------- KPI cards and targets


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    definition: str
    value: str
    previous: str
    change: str
    tone: str  # better, worse, same
    url: str


def _kpi(series: selectors.MetricSeries, period: Period) -> Kpi:
    better = series.is_better
    return Kpi(
        key=series.key,
        label=_title(series.label),
        definition=series.definition,
        value=format_value(series.value, series.unit),
        previous=format_value(series.previous_value, series.unit),
        change=format_change(series.change),
        tone="same" if better is None else "better" if better else "worse",
        url=reverse("web:insights-metric", args=[series.key]) + f"?{period.query}",
    )


@dataclass(frozen=True)
class TargetRow:
    target: selectors.TargetView
    metric_label: str
    baseline: str
    goal: str
    current: str
    change: str  # the relative change asked for, "" for a target value
    progress: str
    progress_percent: int  # the bar's width, 0..100
    elapsed_percent: int
    status_label: str
    tone: str


def target_row(target: selectors.TargetView) -> TargetRow:
    progress = target.progress
    return TargetRow(
        target=target,
        metric_label=_title(target.metric_label),
        baseline=format_value(target.baseline, target.unit),
        goal=format_value(target.goal, target.unit),
        current=format_value(target.current, target.unit),
        change="" if target.target_change is None else format_change(target.target_change),
        progress="—" if progress is None else f"{round(100 * progress)} %",
        progress_percent=0 if progress is None else round(100 * min(max(progress, 0.0), 1.0)),
        elapsed_percent=round(100 * target.time_elapsed),
        status_label=str(STATUS_LABELS.get(target.status, target.status)),
        tone=STATUS_TONES.get(target.status, "secondary"),
    )


# ---------------------------------------------------------------------- the dashboard


@patron_page
def dashboard(request: HttpRequest) -> HttpResponse:
    infos = selectors.metric_list(user=request.user)
    context: dict[str, Any] = {
        "start": request.GET.get("start", ""),
        "end": request.GET.get("end", ""),
        "presets": _presets(),
        "has_metrics": bool(infos),
        "filled_through": max((i.filled_through for i in infos if i.filled_through), default=None),
    }
    try:
        period = _period(request.GET)
        series = selectors.metric_series_many(
            user=request.user,
            keys=[info.key for info in infos],
            first=period.first,
            last=period.last,
        )
    except ValidationFailed as error:
        context["error"] = error.message
        return render(request, "insight/dashboard.html", context, status=error.status)
    sections = []
    for spec in _sections():
        panels = [p for p in (_panel(panel, series, period) for panel in spec.panels) if p]
        if panels:
            sections.append(Section(spec.id, str(spec.title), panels))
    context.update(
        start=_month_text(period.first),
        end=_month_text(period.last),
        period=period,
        kpis=[_kpi(s, period) for s in series.values()],
        sections=sections,
        targets=[target_row(t) for t in selectors.target_list(user=request.user)],
        may_change_targets=request.user.has_perm(CHANGE_TARGETS),
    )
    for kind, build in (("cohorts", cohort_chart), ("grade_movement", movement_chart)):
        try:
            found = selectors.snapshot(user=request.user, kind=kind)
        except NotFound:
            continue
        context[kind] = found
        context[f"{kind}_chart"] = build(found)
    return render(request, "insight/dashboard.html", context)


# ---------------------------------------------------------------------- one metric


@dataclass(frozen=True)
class MonthRow:
    month: str
    value: str
    numerator: str
    denominator: str
    is_final: bool
    is_filled: bool
    previous_month: str
    previous_value: str
    is_selected: bool


def _month_rows(series: selectors.MetricSeries, period: Period, selected: str) -> list[MonthRow]:
    now = {p.period: p for p in series.points}
    before = {p.period: p for p in series.previous}
    rows = []
    for month, earlier in zip(period.months, period.previous.months, strict=True):
        point, old = now.get(month), before.get(earlier)
        is_count = series.unit == "count"
        rows.append(
            MonthRow(
                month=_month_text(month),
                value=format_value(point.value if point else None, series.unit),
                numerator=""
                if is_count or not point or point.numerator is None
                else _plain(point.numerator, 2),
                denominator=""
                if is_count or not point or point.denominator is None
                else _plain(point.denominator, 2),
                is_final=bool(point and point.is_final),
                is_filled=point is not None,
                previous_month=_month_text(earlier),
                previous_value=format_value(old.value if old else None, series.unit),
                is_selected=_month_text(month) == selected,
            )
        )
    return rows


@patron_page
def metric_detail(request: HttpRequest, key: str) -> HttpResponse:
    period = _period(request.GET)
    series = selectors.metric_series(
        user=request.user, key=key, first=period.first, last=period.last
    )
    month = request.GET.get("month", "").strip()
    moved_from = request.GET.get("moved_from", "").strip()
    drill: dict[str, Any] | None = None
    movers: dict[str, Any] | None = None
    if month:
        drill = selectors.drill_down(
            user=request.user,
            key=key,
            month=rules.month_parse(month, "month"),
            limit=DRILL_LIMIT,
        )
        month = _month_text(drill["month"])
    elif moved_from:
        movers = selectors.grade_movers(
            user=request.user, key=key, moved_from=moved_from, limit=DRILL_LIMIT
        )
        movers["was"], movers["now"] = _grade_label(movers["was"]), _grade_label(movers["now"])
    context = {
        "series": series,
        "label": _title(series.label),
        "kpi": _kpi(series, period),
        "period": period,
        "start": _month_text(period.first),
        "end": _month_text(period.last),
        "presets": _presets(),
        "chart": compare_chart(series, period) if _has_values(series) or series.previous else None,
        "rows": _month_rows(series, period, month),
        "month": month,
        "drill": drill,
        "movers": movers,
        "may_open_customers": request.user.has_perm(VIEW_CUSTOMERS),
        "unit_note": {"ratio": _("in %"), "money": _("in ¥"), "minutes": _("in minutes")}.get(
            series.unit, ""
        ),
    }
    return render(request, "insight/metric.html", context)


# ---------------------------------------------------------------------- targets


TEXT_LIMITS = {"name": 120, "owner": 150, "note": 300}


@dataclass
class TargetForm:
    """The target form as the user typed it; a ratio metric's values are typed in %, a change
    always in % of the baseline."""

    metric: str = ""
    name: str = ""
    target_value: str = ""
    target_change: str = ""
    deadline: str = ""
    owner: str = ""
    note: str = ""
    baseline: str = ""
    error: str = ""
    invalid: set[str] = field(default_factory=set)

    FIELDS = ("name", "target_value", "target_change", "deadline", "owner", "note", "baseline")

    @classmethod
    def of(cls, target: selectors.TargetView) -> TargetForm:
        def shown(value: float | None) -> str:
            if value is None:
                return ""
            return _plain(100 * value if target.unit == "ratio" else value)

        return cls(
            metric=target.metric,
            name=target.name,
            target_value=shown(target.target_value),
            target_change=""
            if target.target_change is None
            else _plain(100 * target.target_change),
            deadline=target.deadline.isoformat(),
            owner=target.owner,
            note=target.note,
            baseline=shown(target.baseline),
        )

    @classmethod
    def submitted(cls, data: QueryDict, *, metric: str | None = None) -> TargetForm:
        form = cls(metric=metric if metric is not None else data.get("metric", "").strip())
        for name in cls.FIELDS:
            setattr(form, name, data.get(name, "").strip())
        return form

    def _number(self, name: str, *, is_percent: bool) -> float | None:
        text = getattr(self, name).replace(",", "").replace("%", "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValidationFailed(f"target.{name}: expected a number, got '{text}'") from None
        if not math.isfinite(value):
            raise ValidationFailed(f"target.{name}: expected a finite number")
        return value / 100 if is_percent else value

    def _parsed(self, name: str) -> Any:
        is_ratio = metrics.METRICS.get(self.metric, None) is not None and (
            metrics.METRICS[self.metric].unit == "ratio"
        )
        if name in ("target_value", "baseline"):
            value = self._number(name, is_percent=is_ratio)
            if name == "baseline" and value is None:
                raise ValidationFailed("target.baseline: required")
            return value
        if name == "target_change":
            return self._number(name, is_percent=True)
        if name == "deadline":
            try:
                return date.fromisoformat(self.deadline)
            except ValueError:
                raise ValidationFailed(
                    f"target.deadline: expected a date as YYYY-MM-DD, got '{self.deadline}'"
                ) from None
        text = getattr(self, name)
        if len(text) > TEXT_LIMITS[name]:
            raise ValidationFailed(f"target.{name}: at most {TEXT_LIMITS[name]} characters")
        return text

    def for_create(self) -> dict[str, Any]:
        return {name: self._parsed(name) for name in self.FIELDS if name != "baseline"}

    def changes(self, initial: TargetForm) -> dict[str, Any]:
        """The fields the user changed, parsed (text compared as shown, so a baseline shown
        rounded is not rewritten by saving the form untouched)."""
        return {
            name: self._parsed(name)
            for name in self.FIELDS
            if getattr(self, name) != getattr(initial, name)
        }

    def fail(self, error: ValidationFailed) -> None:
        self.error = error.message
        if "exactly one of target_value and target_change" in error.message:
            self.invalid.update(("target_value", "target_change"))
        for name in ("metric", *self.FIELDS):
            if f".{name}:" in error.message:
                self.invalid.add(name)


def _metric_choices(user: Any) -> list[tuple[str, str, str]]:
    """(key, label, unit) of the metrics a target can be set on: those with a value."""
    return [(i.key, _title(i.label), i.unit) for i in selectors.metric_list(user=user)]


def _targets_page(
    request: HttpRequest,
    *,
    form: TargetForm,
    editing: TargetRow | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "targets": [target_row(t) for t in selectors.target_list(user=request.user)],
        "form": form,
        "editing": editing,
        "metric_choices": _metric_choices(request.user),
        "may_change": request.user.has_perm(CHANGE_TARGETS),
        "slack_percent": round(100 * rules.SLACK),
        "statuses": [(STATUS_LABELS[s], STATUS_TONES[s]) for s in rules.STATUSES],
    }
    return render(request, "insight/targets.html", context, status=status)


@patron_page
@require_http_methods(["GET", "POST"])
def target_list(request: HttpRequest) -> HttpResponse:
    """The targets and where they stand; POST sets a new one (its baseline is the metric's
    last complete month)."""
    if request.method == "GET":
        selectors.target_list(user=request.user)  # 403 before anything else is read
        return _targets_page(request, form=TargetForm())
    require_permission(request.user, CHANGE_TARGETS)
    form = TargetForm.submitted(request.POST)
    try:
        target = services.target_create(user=request.user, metric=form.metric, **form.for_create())
    except ValidationFailed as error:
        form.fail(error)
        return _targets_page(request, form=form, status=error.status)
    messages.success(request, _("Target “%(name)s” set.") % {"name": target.name})
    return redirect("web:insights-targets")


@patron_page
@require_http_methods(["GET", "POST"])
def target_edit(request: HttpRequest, target_id: int) -> HttpResponse:
    """One target: its form (for those who may change targets), saved or deleted by POST."""
    target = selectors.target_get(user=request.user, target_id=target_id)
    initial = TargetForm.of(target)
    if request.method == "GET":
        return _targets_page(request, form=initial, editing=target_row(target))
    require_permission(request.user, CHANGE_TARGETS)
    if request.POST.get("action") == "delete":
        services.target_delete(user=request.user, target_id=target_id)
        messages.success(request, _("Target “%(name)s” removed.") % {"name": target.name})
        return redirect("web:insights-targets")
    form = TargetForm.submitted(request.POST, metric=target.metric)
    try:
        services.target_update(user=request.user, target_id=target_id, data=form.changes(initial))
    except ValidationFailed as error:
        form.fail(error)
        return _targets_page(request, form=form, editing=target_row(target), status=error.status)
    messages.success(request, _("Target “%(name)s” saved.") % {"name": form.name or target.name})
    return redirect("web:insights-targets")


@patron_page
@require_http_methods(["GET", "POST"])
def correlations(request: HttpRequest) -> HttpResponse:
    """Which factors move with repurchase and satisfaction; POST runs the analysis again."""
    from patron.insight.correlations import correlations_run, correlations_view

    if request.method == "POST":
        try:
            correlations_run(user=request.user)
        except Conflict as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The analysis was run again on today's data."))
        return redirect("web:insights-correlations")
    found = correlations_view(user=request.user)
    context = {
        "run": found[0] if found else None,
        "studies": found[1] if found else [],
        "may_run": request.user.has_perm(CHANGE_TARGETS),
    }
    return render(request, "insight/correlations.html", context)
