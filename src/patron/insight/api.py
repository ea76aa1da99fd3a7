"""REST endpoints of insights, under /api/insights: the metric registry and each metric's
months, targets, cohort retention, grade movement, drill-down, and a refill.

Thin: each endpoint calls one selector or service; 403 permission, 404 unknown metric or target,
422 invalid input.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from patron.account.roles import CHANGE_TARGETS
from patron.account.services import require_permission
from patron.apitext import TEXT, DateText
from patron.customer.api import ErrorOut
from patron.insight import metrics, rules, selectors, services

router = Router(tags=["insights"])

#: A month as the API takes it.
MONTH = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class MetricInfoOut(Schema):
    key: str
    label: str
    unit: str = Field(description="count, ratio (0..1), money, minutes or per_customer")
    direction: str = Field(description="up: higher is better; down: lower is better")
    definition: str
    filled_through: date | None = Field(description="Every month up to this one is final")
    latest_period: date | None
    latest_value: float | None


@router.get(
    "/metrics",
    response={200: list[MetricInfoOut], **ERRORS},
    summary="The metric registry (metrics with data), with how far each is filled",
)
def list_metrics(request: HttpRequest) -> list[selectors.MetricInfo]:
    return selectors.metric_list(user=request.user)


class PointOut(Schema):
    period: date
    value: float | None
    numerator: float | None
    denominator: float | None
    is_final: bool


class SeriesOut(Schema):
    key: str
    label: str
    unit: str
    direction: str
    definition: str
    first: date
    last: date
    points: list[PointOut]
    previous: list[PointOut] = Field(description="The same number of months just before")
    value: float | None = Field(description="The period as one figure")
    previous_value: float | None
    change: float | None = Field(description="Relative change against the previous period")
    is_better: bool | None


class PeriodParams(Schema):
    start: str | None = Field(
        None, pattern=MONTH, description="First month, YYYY-MM (default: 12 months ago)"
    )
    end: str | None = Field(
        None, pattern=MONTH, description="Last month, YYYY-MM (default: last month)"
    )


def _period(params: PeriodParams) -> tuple[date, date]:
    first, last = selectors.default_period()
    if params.start:
        first = rules.month_parse(params.start, "start")
    if params.end:
        last = rules.month_parse(params.end, "end")
    return first, last


@router.get(
    "/metrics/{key}",
    response={200: SeriesOut, **ERRORS},
    summary="One metric month by month, and the period against the one before",
)
def get_metric(request: HttpRequest, key: str, params: Query[PeriodParams]) -> Any:
    first, last = _period(params)
    return selectors.metric_series(user=request.user, key=key, first=first, last=last)


class DrillCustomerOut(Schema):
    id: int
    name: str


class DrillOut(Schema):
    metric: str
    month: date
    count: int
    customers: list[DrillCustomerOut] = Field(description="At most 500, by customer number")


class DrillParams(Schema):
    month: str = Field(pattern=MONTH, description="YYYY-MM")


@router.get(
    "/metrics/{key}/customers",
    response={200: DrillOut, **ERRORS},
    summary="The customers behind a metric's value in one month (drill-down)",
)
def drill(request: HttpRequest, key: str, params: Query[DrillParams]) -> dict[str, Any]:
    month = rules.month_parse(params.month, "month")
    return selectors.drill_down(user=request.user, key=key, month=month)


# ---------------------------------------------------------------------- targets


class TargetOut(Schema):
    id: int
    metric: str
    metric_label: str
    unit: str
    direction: str
    name: str
    baseline: float
    baseline_period: date
    target_value: float | None
    target_change: float | None = Field(description="Relative: -0.2 is 20 % less than baseline")
    goal: float
    starts_on: date
    deadline: date
    owner: str
    note: str
    is_default: bool
    current: float | None
    current_period: date | None
    progress: float | None = Field(description="Share of the way from baseline to goal")
    time_elapsed: float = Field(description="Share of the time from start to deadline")
    status: str = Field(description="achieved, on_track, at_risk, missed or no_data")


class TargetIn(Schema):
    metric: str = Field(
        pattern="^(" + "|".join(metrics.METRICS) + ")$", description="A key of GET /metrics"
    )
    name: str = Field(min_length=1, max_length=120, pattern=TEXT)
    deadline: DateText
    target_value: float | None = None
    target_change: float | None = Field(None, description="-0.2 for −20 %")
    owner: str = Field("", max_length=150)
    note: str = Field("", max_length=300)


class TargetPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=120)
    deadline: DateText | None = None
    target_value: float | None = None
    target_change: float | None = None
    owner: str | None = Field(None, max_length=150)
    note: str | None = Field(None, max_length=300)
    baseline: float | None = None


@router.get("/targets", response={200: list[TargetOut], **ERRORS}, summary="Targets and progress")
def list_targets(request: HttpRequest) -> list[selectors.TargetView]:
    return selectors.target_list(user=request.user)


@router.post("/targets", response={201: TargetOut, **ERRORS}, summary="Set a target")
def create_target(request: HttpRequest, body: TargetIn) -> tuple[int, selectors.TargetView]:
    target = services.target_create(user=request.user, **body.model_dump())
    return 201, selectors.target_get(user=request.user, target_id=target.pk)


@router.patch("/targets/{target_id}", response={200: TargetOut, **ERRORS}, summary="Edit a target")
def update_target(request: HttpRequest, target_id: int, body: TargetPatch) -> selectors.TargetView:
    changes = body.model_dump(exclude_unset=True)
    services.target_update(user=request.user, target_id=target_id, data=changes)
    return selectors.target_get(user=request.user, target_id=target_id)


@router.delete("/targets/{target_id}", response={204: None, **ERRORS}, summary="Remove a target")
def delete_target(request: HttpRequest, target_id: int) -> tuple[int, None]:
    services.target_delete(user=request.user, target_id=target_id)
    return 204, None


# ---------------------------------------------------------------------- cohorts, movement, fill


class CohortRowOut(Schema):
    cohort: date
    months_since: int
    customers: int
    active: int
    rate: float | None


class CohortsOut(Schema):
    computed_at: datetime
    first: date
    last: date
    rows: list[CohortRowOut]


@router.get(
    "/cohorts",
    response={200: CohortsOut, **ERRORS},
    summary="Retention by monthly cohort (first order month), as of the last fill",
)
def cohorts(request: HttpRequest) -> dict[str, Any]:
    return selectors.snapshot(user=request.user, kind="cohorts")


class GradeMovementOut(Schema):
    computed_at: datetime
    before: date
    after: date
    movement: dict[str, Any] | None = Field(
        description="{grades, matrix (rows: grade before, columns: after), up, down, unchanged, "
        "new, left}; null before any grades"
    )


@router.get(
    "/grade-movement",
    response={200: GradeMovementOut, **ERRORS},
    summary="How many customers moved between grades from last quarter to this one",
)
def grade_movement(request: HttpRequest) -> dict[str, Any]:
    return selectors.snapshot(user=request.user, kind="grade_movement")


class FillOut(Schema):
    months: dict[str, int]
    skipped: list[str]
    seconds: float


@router.post(
    "/fill",
    response={200: FillOut, **ERRORS},
    summary="Fill the metrics now (the nightly job does this)",
)
def fill(request: HttpRequest) -> services.FillSummary:
    require_permission(request.user, CHANGE_TARGETS)
    return services.metrics_fill()


@router.get(
    "/correlations",
    response={200: dict[str, Any], **ERRORS},
    summary="The last correlation analysis: factors vs repurchase and satisfaction, with "
    "95 % intervals and a simple model's weights (run it with POST)",
)
def get_correlations(request: HttpRequest) -> dict[str, Any]:
    from patron.insight.correlations import correlations_stored

    return correlations_stored(user=request.user)


@router.post(
    "/correlations",
    response={200: dict[str, Any], 409: ErrorOut, **ERRORS},
    summary="Run the correlation analysis again on today's data",
)
def run_correlations(request: HttpRequest) -> dict[str, Any]:
    from patron.insight.correlations import correlations_run

    return correlations_run(user=request.user)
