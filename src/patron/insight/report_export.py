"""A stored value report (``patron.insight.report``) as files: CSV, one section per file, and
XLSX, one sheet per section. Headers and labels are in the active language.

CSV starts with a byte-order mark: without it Excel reads UTF-8 as the local code page and
Chinese names come out garbled. In XLSX, numbers are numbers (money with two decimals, shares
and probabilities as percentages), so a sheet can be summed and charted as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from patron.errors import ValidationFailed
from patron.insight.report import NO_SEGMENT_LABELS, SECTIONS
from patron.intelligence.models.rfm import LABELS as SEGMENT_LABELS
from patron.scoring.models import Grade

FORMATS = ("csv", "xlsx")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"

#: Short titles: XLSX sheet names (at most 31 characters, no ``:``).
SECTION_TITLES: dict[str, str | Promise] = {
    "by_grade": _("Value by grade"),
    "by_segment": _("Value by RFM segment"),
    "movers": _("Grade changes"),
    "churn_risk": _("Churn risk"),
    "top_customers": _("Top customers"),
}

#: How a column is written: text, integer, number, money (string with two decimals in the
#: report), ratio (0..1), and labels looked up from a code.
TEXT, INTEGER, NUMBER, MONEY, RATIO = "text", "integer", "number", "money", "ratio"
LABEL, GRADE, SEGMENT, DIRECTION = "label", "grade", "segment", "direction"


@dataclass(frozen=True)
class Column:
    key: str
    header: str | Promise
    kind: str = TEXT


_VALUE_COLUMNS = (
    Column("customers", _("Customers"), INTEGER),
    Column("share", _("Share"), RATIO),
    Column("clv_total", _("Total 12-month CLV"), MONEY),
    Column("clv_mean", _("Mean 12-month CLV"), MONEY),
    Column("credit_score_mean", _("Mean credit score"), NUMBER),
    Column("churn_probability_mean", _("Mean churn probability"), RATIO),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "by_grade": (
        Column("grade", _("Code")),
        Column("label", _("Grade"), LABEL),
        *_VALUE_COLUMNS,
    ),
    "by_segment": (
        Column("segment", _("Code")),
        Column("label", _("RFM segment"), LABEL),
        *_VALUE_COLUMNS,
    ),
    "movers": (
        Column("customer_id", _("Customer ID"), INTEGER),
        Column("name", _("Name")),
        Column("from_grade", _("From grade"), GRADE),
        Column("to_grade", _("To grade"), GRADE),
        Column("direction", _("Direction"), DIRECTION),
        Column("date", _("Date")),
    ),
    "churn_risk": (
        Column("rank", _("Rank"), INTEGER),
        Column("customer_id", _("Customer ID"), INTEGER),
        Column("name", _("Name")),
        Column("grade", _("Grade"), GRADE),
        Column("churn_probability", _("Churn probability"), RATIO),
        Column("clv_12m", _("12-month CLV"), MONEY),
        Column("days_since_last_purchase", _("Days since last purchase"), INTEGER),
    ),
    "top_customers": (
        Column("rank", _("Rank"), INTEGER),
        Column("customer_id", _("Customer ID"), INTEGER),
        Column("name", _("Name")),
        Column("grade", _("Grade"), GRADE),
        Column("clv_12m", _("12-month CLV"), MONEY),
        Column("credit_score", _("Credit score"), INTEGER),
        Column("churn_probability", _("Churn probability"), RATIO),
        Column("rfm_segment", _("RFM segment"), SEGMENT),
        Column("expected_orders_90d", _("Expected orders in 90 days"), NUMBER),
    ),
}


def is_chinese() -> bool:
    return (translation.get_language() or "").startswith("zh")


def localised(chinese: str, english: str) -> str:
    return chinese if is_chinese() else english


def grade_label(code: str) -> str:
    if code not in Grade.values:
        return code
    chinese, _sep, english = str(Grade(code).label).partition(" ")
    return localised(chinese, english)


def segment_label(code: str) -> str:
    if not code:
        return localised(*NO_SEGMENT_LABELS)
    if code not in SEGMENT_LABELS:
        return code
    return localised(*SEGMENT_LABELS[code])


def direction_label(direction: str) -> str:
    return str({"up": _("up"), "down": _("down")}.get(direction, direction))


_LABELS: dict[str, Callable[[Any], str]] = {
    GRADE: grade_label,
    SEGMENT: segment_label,
    DIRECTION: direction_label,
}


def section_rows(report: dict[str, Any], section: str) -> list[dict[str, Any]]:
    """The rows of one section of a stored report."""
    rows = report.get(section, [])
    return list(rows["rows"] if section == "movers" else rows)


def cell_text(row: dict[str, Any], column: Column) -> Any:
    """A cell as shown: labels in the active language, other values as the report holds them."""
    if column.kind == LABEL:
        return localised(row["label_zh"], row["label_en"])
    value = row.get(column.key)
    if value is None:
        return None
    if column.kind in _LABELS:
        return _LABELS[column.kind](value)
    return value


def section_check(section: str | None, *, is_required: bool) -> str | None:
    if section is None or section == "":
        if is_required:
            raise ValidationFailed(
                f"section: required for CSV (one section per file); choose one of "
                f"{', '.join(SECTIONS)}"
            )
        return None
    if section not in SECTIONS:
        raise ValidationFailed(
            f"section: no section named {section!r}; choose one of {', '.join(SECTIONS)}"
        )
    return section


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    content: bytes


def report_csv(report: dict[str, Any], section: str) -> bytes:
    """One section as CSV (UTF-8 with a byte-order mark, Excel's line endings)."""
    columns = COLUMNS[section]
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([str(column.header) for column in columns])
    for row in section_rows(report, section):
        writer.writerow(["" if (v := cell_text(row, c)) is None else v for c in columns])
    return out.getvalue().encode("utf-8")


_NUMBER_FORMATS = {MONEY: "#,##0.00", RATIO: "0.00%", NUMBER: "0.0#", INTEGER: "0"}
_WIDTHS = {TEXT: 16, LABEL: 18, GRADE: 12, SEGMENT: 18, DIRECTION: 10}


def _xlsx_value(row: dict[str, Any], column: Column) -> Any:
    value = cell_text(row, column)
    if value is None:
        return None
    if column.kind == MONEY:
        return Decimal(value)
    return value


def report_xlsx(report: dict[str, Any], sections: tuple[str, ...] = SECTIONS) -> bytes:
    """The report as a workbook: one sheet per section, a bold header row, numbers as numbers."""
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    for section in sections:
        sheet = workbook.create_sheet(title=str(SECTION_TITLES[section])[:31])
        columns = COLUMNS[section]
        for index, column in enumerate(columns):
            letter = chr(ord("A") + index)
            sheet.column_dimensions[letter].width = _WIDTHS.get(column.kind, 14)
        sheet.freeze_panes = "A2"
        header = []
        for column in columns:
            cell = WriteOnlyCell(sheet, value=str(column.header))
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        for row in section_rows(report, section):
            cells = []
            for column in columns:
                cell = WriteOnlyCell(sheet, value=_xlsx_value(row, column))
                if column.kind in _NUMBER_FORMATS:
                    cell.number_format = _NUMBER_FORMATS[column.kind]
                cells.append(cell)
            sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def report_export(
    report: dict[str, Any], *, file_format: str, section: str | None = None
) -> ExportFile:
    """A stored report as a file: CSV needs a ``section``; XLSX holds every section, or the one
    given. An unknown format or section is refused, naming the value and the choices."""
    stem = f"patron-value-report-{report['month']}"
    if file_format == "csv":
        chosen = section_check(section, is_required=True)
        assert chosen is not None
        return ExportFile(
            filename=f"{stem}-{chosen.replace('_', '-')}.csv",
            content_type=CSV_TYPE,
            content=report_csv(report, chosen),
        )
    if file_format == "xlsx":
        chosen = section_check(section, is_required=False)
        suffix = f"-{chosen.replace('_', '-')}" if chosen else ""
        return ExportFile(
            filename=f"{stem}{suffix}.xlsx",
            content_type=XLSX_TYPE,
            content=report_xlsx(report, (chosen,) if chosen else SECTIONS),
        )
    raise ValidationFailed(
        f"format: no download format {file_format!r}; choose one of {', '.join(FORMATS)}"
    )
