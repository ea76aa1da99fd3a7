"""The value report pages (R-C5): the stored reports with a "generate" form, one report as a
printable page, and its downloads (CSV per section, XLSX).

Each view parses the month (``YYYY-MM``), calls one function of ``patron.insight.report`` and
renders; the tables are laid out from the same column list as the exports
(``report_export.COLUMNS``), so the page and the files always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from patron.account.roles import CHANGE_TARGETS
from patron.account.services import require_permission
from patron.errors import NotFound, ValidationFailed
from patron.insight import report, report_export, rules
from patron.web import charts
from patron.web.templatetags.patron_web import money
from patron.web.views import patron_page

#: Grade changes listed on the page; the downloads hold all of them.
MOVERS_SHOWN = 200
_NUMERIC = {
    report_export.INTEGER,
    report_export.NUMBER,
    report_export.MONEY,
    report_export.RATIO,
}


@dataclass(frozen=True)
class Cell:
    text: str
    is_numeric: bool = False
    url: str = ""


@dataclass(frozen=True)
class Table:
    section: str
    title: str
    headers: list[tuple[str, bool]]  # (header, is_numeric)
    rows: list[list[Cell]]
    hidden_rows: int = 0


def _cell(row: dict[str, Any], column: report_export.Column, currency: str) -> Cell:
    value = report_export.cell_text(row, column)
    is_numeric = column.kind in _NUMERIC
    if value is None:
        return Cell("—", is_numeric)
    if column.kind == report_export.MONEY:
        return Cell(money(Decimal(value), currency), True)
    if column.kind == report_export.RATIO:
        return Cell(f"{100 * value:.1f} %", True)
    if column.kind == report_export.NUMBER:
        return Cell(f"{value:.1f}", True)
    if column.key == "name" and row.get("customer_id"):
        url = reverse("web:customer-detail", kwargs={"customer_id": row["customer_id"]})
        return Cell(str(value), url=url)
    return Cell(str(value), is_numeric)


def report_tables(data: dict[str, Any]) -> list[Table]:
    """Every section as a table of display cells (labels in the active language)."""
    currency = data.get("currency", "CNY")
    tables = []
    for section in report.SECTIONS:
        columns = report_export.COLUMNS[section]
        rows = report_export.section_rows(data, section)
        shown = rows[:MOVERS_SHOWN] if section == "movers" else rows
        tables.append(
            Table(
                section=section,
                title=str(report_export.SECTION_TITLES[section]),
                headers=[(str(c.header), c.kind in _NUMERIC) for c in columns],
                rows=[[_cell(row, c, currency) for c in columns] for row in shown],
                hidden_rows=len(rows) - len(shown),
            )
        )
    return tables


def clv_chart(data: dict[str, Any]) -> dict[str, Any]:
    """Total 12-month CLV per grade, one bar each."""
    rows = data["by_grade"]
    labels = [report_export.localised(row["label_zh"], row["label_en"]) for row in rows]
    totals = [float(Decimal(row["clv_total"])) for row in rows]
    return charts.bars(
        labels,
        [(_("Total 12-month CLV"), totals)],
        y_name=data.get("currency", "CNY"),
    )


def _list_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "reports": report.report_list(user=request.user),
        "may_generate": request.user.has_perm(CHANGE_TARGETS),
        "default_month": f"{report.previous_month(timezone.localdate()):%Y-%m}",
    }


@patron_page
@require_http_methods(["GET", "POST"])
def report_list(request: HttpRequest) -> HttpResponse:
    """GET: the stored reports. POST ``month``: generate (or regenerate) that month's report."""
    if request.method == "GET":
        return render(request, "insight/report_list.html", _list_context(request))
    require_permission(request.user, CHANGE_TARGETS)
    text = request.POST.get("month", "")
    try:
        month = rules.month_parse(text)
        report.report_generate(month, user=request.user)
    except ValidationFailed as error:
        context = {**_list_context(request), "error": error.message, "month_value": text}
        return render(request, "insight/report_list.html", context, status=422)
    messages.success(
        request, _("The value report for %(month)s is ready.") % {"month": f"{month:%Y-%m}"}
    )
    return redirect("web:insights-report", month=f"{month:%Y-%m}")


@patron_page
def report_detail(request: HttpRequest, month: str) -> HttpResponse:
    data = report.report_get(rules.month_parse(month), user=request.user)
    context = {
        "report": data,
        "month": data["month"],
        "computed_at": datetime.fromisoformat(data["computed_at"]),
        "tables": report_tables(data),
        "chart": clv_chart(data),
        "may_generate": request.user.has_perm(CHANGE_TARGETS),
        "sections": [
            (section, str(report_export.SECTION_TITLES[section])) for section in report.SECTIONS
        ],
        "movers_shown": MOVERS_SHOWN,
    }
    return render(request, "insight/report_detail.html", context)


@patron_page
def report_download(request: HttpRequest, month: str, fmt: str) -> HttpResponse:
    """``download.csv?section=…`` (one section) or ``download.xlsx`` (every section)."""
    data = report.report_get(rules.month_parse(month), user=request.user)
    if fmt not in report_export.FORMATS:
        raise NotFound(
            f"no download format {fmt!r}; choose one of {', '.join(report_export.FORMATS)}"
        )
    file = report_export.report_export(
        data, file_format=fmt, section=request.GET.get("section") or None
    )
    response = HttpResponse(file.content, content_type=file.content_type)
    response["Content-Disposition"] = content_disposition_header(True, file.filename)
    return response
