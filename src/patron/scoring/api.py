"""REST endpoints of the models, under /api/models: score runs, grade policies (list, read,
save, preview, apply) and the back-test report.

Thin: each endpoint calls one selector (``patron.scoring.pages``) or one service
(``patron.scoring.policies``); they check the permissions (403) and raise the domain errors
(404 unknown version, 409 nothing scored yet, 422 invalid rules) that ``patron.api`` turns
into ``{code, message, details}``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from patron.apitext import DateText
from patron.customer.api import ErrorOut
from patron.scoring import pages
from patron.scoring.policies import policy_apply, policy_preview, policy_save

router = Router(tags=["models"])


# ---------------------------------------------------------------------- runs


class StageTimeOut(Schema):
    stage: str
    seconds: float


class MovesOut(Schema):
    grades: list[str] = Field(description='Row and column order: ["core", "potential", "ordinary"]')
    matrix: list[list[int]] = Field(
        description="matrix[i][j]: customers graded grades[i] before and grades[j] after"
    )
    up: int
    down: int
    unchanged: int
    new: int = Field(description="Customers graded for the first time")
    left: int = Field(description="Customers graded before but not after")


class RunOut(Schema):
    id: int
    as_of: date = Field(description="Only data before this day was used")
    status: str = Field(description="running, completed or failed")
    kind: str = Field(description="nightly, regrade, or policy (a grade policy applied)")
    started_at: datetime
    finished_at: datetime | None
    customers: int
    credit_model: str = Field(description="lightgbm or scorecard ('' for a policy applied)")
    churn_model: str = Field(description="lightgbm or bgnbd ('' for a policy applied)")
    policy_version: int | None
    grade_counts: dict[str, int]
    moves: MovesOut | None = Field(description="Grade moves made by a re-grade")
    pending_moves: MovesOut | None = Field(
        description="Moves a nightly run found, made at the next re-grade"
    )
    seconds: list[StageTimeOut]
    total_seconds: float


class RunParams(Schema):
    limit: int = Field(20, ge=1, le=pages.MAX_RUNS)


@router.get(
    "/runs", response={200: list[RunOut], 403: ErrorOut, 422: ErrorOut}, summary="Latest runs"
)
def list_runs(request: HttpRequest, params: Query[RunParams]) -> list[pages.RunRow]:
    return list(pages.run_list(user=request.user, limit=params.limit))


# ---------------------------------------------------------------------- grade policies


class PolicyInputOut(Schema):
    column: str
    label: str
    weight: float
    share: float = Field(description="Share of the total weight")
    is_higher_better: bool


class HardRuleOut(Schema):
    grade: str
    column: str
    label: str
    op: str
    value: float


class PolicyOut(Schema):
    version: int
    is_active: bool
    note: str
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    inputs: list[PolicyInputOut]
    core_min: float
    potential_min: float
    hysteresis: float
    rules: list[HardRuleOut] = Field(description="Hard rules, core's first")
    rules_json: dict[str, Any] = Field(description="The policy as stored (the body to edit)")


class PolicyIn(Schema):
    rules: dict[str, Any] = Field(
        description="inputs (column -> weight), lower_is_better, thresholds (core_min, "
        "potential_min), requires (core / potential -> [{column, op, value}]), hysteresis"
    )
    note: str = Field("", max_length=200, description="What changed and why")


class RulesIn(Schema):
    rules: dict[str, Any]


@router.get(
    "/grade-policies",
    response={200: list[PolicyOut], 403: ErrorOut},
    summary="Grade policy versions, newest first",
)
def list_policies(request: HttpRequest) -> list[pages.PolicyView]:
    return list(pages.policy_list(user=request.user))


@router.post(
    "/grade-policies",
    response={201: PolicyOut, 403: ErrorOut, 422: ErrorOut},
    summary="Save a new (inactive) grade policy version",
)
def create_policy(request: HttpRequest, policy: PolicyIn) -> tuple[int, pages.PolicyView]:
    saved = policy_save(user=request.user, rules=policy.rules, note=policy.note)
    return 201, pages.policy_as_view(saved)


@router.post(
    "/grade-policies/preview",
    response={200: MovesOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Who would move under these rules; nothing is saved",
)
def preview_policy(request: HttpRequest, policy: RulesIn) -> dict[str, Any]:
    return policy_preview(user=request.user, rules=policy.rules)


@router.get(
    "/grade-policies/{version}",
    response={200: PolicyOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="One grade policy version",
)
def get_policy(request: HttpRequest, version: int) -> pages.PolicyView:
    return pages.policy_detail(user=request.user, version=version)


@router.post(
    "/grade-policies/{version}/apply",
    response={200: MovesOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Make a version active and re-grade every scored customer now",
)
def apply_policy(request: HttpRequest, version: int) -> dict[str, Any]:
    return policy_apply(user=request.user, version=version)


# ---------------------------------------------------------------------- back-test report


class TrackingOut(Schema):
    days: list[int] = Field(description="Days after the cut-off")
    predicted_cumulative: list[float]
    actual_cumulative: list[int]


class HoldoutFitOut(Schema):
    predicted_repeat_transactions: float
    actual_repeat_transactions: int
    correlation_per_customer: float | None
    mean_absolute_error_per_customer: float


class HoldoutOut(HoldoutFitOut):
    tracking: TrackingOut


class ParetoNbdOut(Schema):
    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float
    holdout: HoldoutFitOut
    closer_than_bgnbd: bool = Field(
        description="Pareto/NBD's per-customer holdout error is below BG/NBD's"
    )


class BgNbdOut(Schema):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    holdout: HoldoutOut


class GammaGammaOut(Schema):
    p: float
    q: float
    gamma: float
    repeat_customers: int
    mean_expected_spend_per_transaction: float


class ClvErrorOut(Schema):
    note: str
    predicted_total: float
    actual_total: float
    mean_absolute_error: float
    correlation_per_customer: float | None


class CalibrationBinOut(Schema):
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


class ChurnReportOut(Schema):
    customers: int
    churned_in_holdout: int
    model_in_use: str = Field(description="lightgbm or bgnbd")
    model_in_use_auc: float | None
    model_in_use_brier: float | None
    bgnbd_auc: float | None
    bgnbd_brier: float | None
    calibration: list[CalibrationBinOut]
    training: dict[str, Any]


class CreditReportOut(Schema):
    customers: int
    bad_in_holdout: int
    model: str | None = Field(description="lightgbm or scorecard")
    auc: float | None
    ks: float | None
    training: dict[str, Any]


class GradeStabilityOut(Schema):
    not_measured: str | None = Field(None, description="Why stability was not measured")
    quarter_days: int | None = None
    share_unchanged: float | None = None
    grades: list[str] | None = None
    matrix: list[list[int]] | None = None
    up: int | None = None
    down: int | None = None
    unchanged: int | None = None
    new: int | None = None
    left: int | None = None


class ClusterProfileOut(Schema):
    cluster: int
    name: str
    size: int
    share: float
    medians: dict[str, float | None]
    distinctive: list[str]
    traits: list[str]


class ReportOut(Schema):
    as_of: date
    holdout_days: int
    period_days: float
    customers: int
    calibration_transactions: int
    bgnbd: BgNbdOut
    pareto_nbd: ParetoNbdOut = Field(description="Pareto/NBD on the same data, for comparison")
    gamma_gamma: GammaGammaOut
    clv_error: ClvErrorOut
    grade_stability: GradeStabilityOut | None = None
    churn: ChurnReportOut
    credit: CreditReportOut
    grade_counts: dict[str, int]
    clusters: list[ClusterProfileOut]
    seconds: dict[str, float]


class ReportParams(Schema):
    as_of: DateText = Field(description="Calibration cut-off: the models see only data before it")
    holdout_days: int = Field(
        pages.DEFAULT_HOLDOUT_DAYS,
        ge=1,
        le=pages.MAX_HOLDOUT_DAYS,
        description="Days after the cut-off the models are judged on",
    )


@router.get(
    "/report",
    response={200: ReportOut, 403: ErrorOut, 422: ErrorOut},
    summary="Back-test every model (takes tens of seconds on a million customers)",
)
def get_report(request: HttpRequest, params: Query[ReportParams]) -> dict[str, Any]:
    return pages.report_build(
        user=request.user, as_of=params.as_of, holdout_days=params.holdout_days
    )
