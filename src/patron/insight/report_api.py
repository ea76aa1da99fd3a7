"""REST endpoints of the monthly value report (R-C5), mounted under /api/insights: the stored
reports, one report as JSON, generating one, and its downloads.

Thin: each endpoint calls one function of ``patron.insight.report`` (or the export); 403
permission, 404 no report for the month, 422 a malformed month, format or section.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from ninja import Path, Query, Router, Schema
from pydantic import Field

from patron.apitext import NO_NUL
from patron.customer.api import ErrorOut
from patron.insight import report, report_export, rules

router = Router(tags=["insights"])

MONTH_PATH = Path(..., pattern=r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$", description="YYYY-MM")

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
MONEY = "Money: a decimal string with two decimals"


class ReportInfoOut(Schema):
    month: str = Field(description="YYYY-MM")
    computed_at: datetime
    generated_by: str = Field(description="A username, or 'system' for the scheduled job")
    customers: int
    scores_as_of: date | None
    is_complete: bool = Field(description="False when generated before the month ended")


class ScoresOut(Schema):
    source: str = Field(description="scores (the latest in the database) or snapshot (lake)")
    as_of: date | None
    run_id: int | None
    is_later_than_month: bool = Field(
        description="True when no snapshot from the month's end was kept: later scores were used"
    )


class TotalsOut(Schema):
    customers: int
    graded: int
    clv_total: str = Field(description=MONEY)


class ValueOut(Schema):
    label_zh: str
    label_en: str
    customers: int
    share: float | None = Field(description="0..1 of the graded (by grade) or scored customers")
    clv_total: str = Field(description=MONEY)
    clv_mean: str | None = Field(description=f"{MONEY}; over the customers with a CLV")
    credit_score_mean: float | None
    churn_probability_mean: float | None


class GradeValueOut(ValueOut):
    grade: str


class SegmentValueOut(ValueOut):
    segment: str = Field(description="RFM class code; '' for customers who never bought")


class MoverOut(Schema):
    customer_id: int
    name: str
    from_grade: str
    to_grade: str
    direction: str = Field(description="up or down")
    date: date


class MoversOut(Schema):
    up: int
    down: int
    rows: list[MoverOut]


class ChurnRiskOut(Schema):
    rank: int
    customer_id: int
    name: str
    grade: str
    churn_probability: float | None
    clv_12m: str | None = Field(description=MONEY)
    days_since_last_purchase: int | None = Field(
        description="Null when the scores came from a lake snapshot"
    )


class TopCustomerOut(Schema):
    rank: int
    customer_id: int
    name: str
    grade: str
    clv_12m: str | None = Field(description=MONEY)
    credit_score: int | None
    churn_probability: float | None
    rfm_segment: str
    expected_orders_90d: float | None


class ValueReportOut(Schema):
    version: int
    month: str = Field(description="YYYY-MM")
    first_day: date
    last_day: date
    is_complete: bool
    currency: str
    computed_at: datetime
    generated_by: str
    scores: ScoresOut
    totals: TotalsOut
    by_grade: list[GradeValueOut]
    by_segment: list[SegmentValueOut]
    movers: MoversOut
    churn_risk: list[ChurnRiskOut] = Field(description="The 50 core and potential customers")
    top_customers: list[TopCustomerOut] = Field(description="The 50 with the highest CLV")


@router.get(
    "/reports",
    response={200: list[ReportInfoOut], **ERRORS},
    summary="The stored monthly value reports, newest month first",
)
def list_reports(request: HttpRequest) -> list[report.ReportInfo]:
    return report.report_list(user=request.user)


@router.post(
    "/reports/{month}",
    response={201: ValueReportOut, **ERRORS},
    summary="Generate (or regenerate) the value report of a month (YYYY-MM)",
)
def generate_report(request: HttpRequest, month: str = MONTH_PATH) -> tuple[int, dict[str, Any]]:
    first = rules.month_parse(month)
    report.report_generate(first, user=request.user)
    return 201, report.report_get(first, user=request.user)


@router.get(
    "/reports/{month}",
    response={200: ValueReportOut, **ERRORS},
    summary="The stored value report of a month (YYYY-MM)",
)
def get_report(request: HttpRequest, month: str = MONTH_PATH) -> dict[str, Any]:
    return report.report_get(rules.month_parse(month), user=request.user)


class DownloadParams(Schema):
    format: Literal["csv", "xlsx"] = Field(
        "xlsx", description="csv (one section) or xlsx (every section)"
    )
    section: str | None = Field(
        None, pattern=NO_NUL, description=f"Required for csv: one of {', '.join(report.SECTIONS)}"
    )


@router.get(
    "/reports/{month}/download",
    response={200: None, **ERRORS},
    summary="The value report as a file: CSV (one section) or XLSX",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file",
                "content": {
                    report_export.CSV_TYPE: {},
                    report_export.XLSX_TYPE: {},
                },
            }
        }
    },
)
def download_report(
    request: HttpRequest, params: Query[DownloadParams], month: str = MONTH_PATH
) -> HttpResponse:
    data = report.report_get(rules.month_parse(month), user=request.user)
    file = report_export.report_export(data, file_format=params.format, section=params.section)
    response = HttpResponse(file.content, content_type=file.content_type)
    response["Content-Disposition"] = content_disposition_header(True, file.filename)
    return response
