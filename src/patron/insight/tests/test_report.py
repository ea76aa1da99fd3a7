"""The monthly customer-value report (R-C5): every section exactly, the scores as of the month
(latest, lake snapshot, or later), storing and regenerating, the CSV and XLSX files, the
printable page in Chinese and English, the API, the job, and who may read or generate it.

Six scored customers, October 2026, scores as of 2026-11-01 (the nightly run on the 1st):

======  =========  ========  ======  =====  ==================  ================
name    grade      CLV       credit  churn  RFM segment         grade history
======  =========  ========  ======  =====  ==================  ================
甲      core       1000.00   800     0.10   important_value     ordinary → core 10-01
乙      core       500.50    700     0.40   important_value     core → potential 10-15 → core 10-20
丙      potential  300.25    650     0.70   important_retain    potential from 10-01 (first)
丁      potential  120.00    600     —      general_value       —
戊      ordinary   50.00     500     0.90   general_win_back    potential → ordinary 09-30
己      ordinary   —         400     —      (never bought)      potential → ordinary 11-01
======  =========  ========  ======  =====  ==================  ================
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from patron.account.models import User
from patron.account.roles import Role
from patron.account.services import token_create
from patron.audit.models import AuditEvent
from patron.conftest import NO_ROLE, make_customer, make_user
from patron.customer.models import Customer
from patron.errors import PermissionDenied, ValidationFailed
from patron.insight import report
from patron.insight.models import Snapshot
from patron.insight.report_tasks import generate_monthly_report
from patron.scoring.models import CustomerScore, GradeHistory, ScoreRun
from patron.scoring.writeback import snapshot_write

# transaction=True: on PostgreSQL the scores are read through ADBC, its own connection
pytestmark = pytest.mark.django_db(transaction=True)

OCTOBER = date(2026, 10, 1)
ROLES = [role.value for role in Role] + [NO_ROLE]
MAY_READ = {"administrator", "operations_manager", "marketer", "auditor", "analyst"}
MAY_GENERATE = {"administrator", "operations_manager"}
SECTION_TITLES = [
    "Value by grade",
    "Value by RFM segment",
    "Grade changes",
    "Churn risk",
    "Top customers",
]


@dataclass(frozen=True)
class Shop:
    run: ScoreRun
    customers: dict[str, Customer]

    def id(self, name: str) -> int:
        return self.customers[name].pk


def _score(
    customer: Customer,
    run: ScoreRun,
    *,
    grade: str,
    clv: str | None,
    credit: int,
    churn: float | None,
    segment: str,
    orders: float | None = None,
    days: int | None = None,
) -> None:
    CustomerScore.objects.create(
        customer=customer,
        run=run,
        as_of=run.as_of,
        grade=grade,
        clv_12m=None if clv is None else Decimal(clv),
        credit_score=credit,
        churn_probability=churn,
        rfm_segment=segment,
        expected_orders_90d=orders,
        days_since_last_purchase=days,
    )


def _history(customer: Customer, run: ScoreRun, *periods: tuple[str, str, str | None]) -> None:
    for grade, start, end in periods:
        GradeHistory.objects.create(
            customer=customer,
            grade=grade,
            valid_from=date.fromisoformat(start),
            valid_to=date.fromisoformat(end) if end else None,
            run=run,
            policy_version=1,
        )


@pytest.fixture
def shop(lake: Path) -> Shop:
    run = ScoreRun.objects.create(
        as_of=date(2026, 11, 1), status="completed", started_at=timezone.now()
    )
    customers = {name: make_customer(name=name) for name in ("甲", "乙", "丙", "丁", "戊", "己")}
    rows: list[tuple[str, str, str | None, int, float | None, str, float | None, int | None]] = [
        ("甲", "core", "1000.00", 800, 0.10, "important_value", 3.5, 5),
        ("乙", "core", "500.50", 700, 0.40, "important_value", 2.0, 20),
        ("丙", "potential", "300.25", 650, 0.70, "important_retain", 1.0, 60),
        ("丁", "potential", "120.00", 600, None, "general_value", 0.8, 30),
        ("戊", "ordinary", "50.00", 500, 0.90, "general_win_back", 0.1, 200),
        ("己", "ordinary", None, 400, None, "", None, None),
    ]
    for name, grade, clv, credit, churn, segment, orders, days in rows:
        _score(
            customers[name],
            run,
            grade=grade,
            clv=clv,
            credit=credit,
            churn=churn,
            segment=segment,
            orders=orders,
            days=days,
        )
    _history(
        customers["甲"], run, ("ordinary", "2026-01-01", "2026-10-01"), ("core", "2026-10-01", None)
    )
    _history(
        customers["乙"],
        run,
        ("core", "2026-07-01", "2026-10-15"),
        ("potential", "2026-10-15", "2026-10-20"),
        ("core", "2026-10-20", None),
    )
    _history(customers["丙"], run, ("potential", "2026-10-01", None))
    _history(
        customers["戊"],
        run,
        ("potential", "2026-07-01", "2026-09-30"),
        ("ordinary", "2026-09-30", None),
    )
    _history(
        customers["己"],
        run,
        ("potential", "2026-07-01", "2026-11-01"),
        ("ordinary", "2026-11-01", None),
    )
    return Shop(run=run, customers=customers)


def _empty_values(**labels: str) -> dict[str, Any]:
    return {
        **labels,
        "customers": 0,
        "share": 0.0,
        "clv_total": "0.00",
        "clv_mean": None,
        "credit_score_mean": None,
        "churn_probability_mean": None,
    }


# ---------------------------------------------------------------------- the sections


def test_the_report_gives_value_by_grade(shop: Shop) -> None:
    # when
    built = report.report_build(OCTOBER)

    # then
    assert built["month"] == "2026-10"
    assert (built["first_day"], built["last_day"]) == ("2026-10-01", "2026-10-31")
    assert built["is_complete"] is True
    assert built["scores"] == {
        "source": "scores",
        "as_of": "2026-11-01",
        "run_id": shop.run.pk,
        "is_later_than_month": False,
    }
    assert built["totals"] == {"customers": 6, "graded": 6, "clv_total": "1970.75"}
    assert built["by_grade"] == [
        {
            "grade": "core",
            "label_zh": "核心客户",
            "label_en": "Core",
            "customers": 2,
            "share": 0.3333,
            "clv_total": "1500.50",
            "clv_mean": "750.25",
            "credit_score_mean": 750.0,
            "churn_probability_mean": 0.25,
        },
        {
            "grade": "potential",
            "label_zh": "潜力客户",
            "label_en": "Potential",
            "customers": 2,
            "share": 0.3333,
            "clv_total": "420.25",
            "clv_mean": "210.13",  # 210.125, rounded half up
            "credit_score_mean": 625.0,
            "churn_probability_mean": 0.7,  # 丁 has no churn probability
        },
        {
            "grade": "ordinary",
            "label_zh": "普通客户",
            "label_en": "Ordinary",
            "customers": 2,
            "share": 0.3333,
            "clv_total": "50.00",
            "clv_mean": "50.00",  # over the customers with a CLV: 己 never bought
            "credit_score_mean": 450.0,
            "churn_probability_mean": 0.9,
        },
    ]


def test_the_report_gives_value_by_rfm_segment_with_every_class(shop: Shop) -> None:
    # when
    segments = report.report_build(OCTOBER)["by_segment"]

    # then: the eight classes in their usual order, then those who never bought
    assert segments == [
        {
            "segment": "important_value",
            "label_zh": "重要价值客户",
            "label_en": "Important value",
            "customers": 2,
            "share": 0.3333,
            "clv_total": "1500.50",
            "clv_mean": "750.25",
            "credit_score_mean": 750.0,
            "churn_probability_mean": 0.25,
        },
        _empty_values(
            segment="important_develop", label_zh="重要发展客户", label_en="Important to develop"
        ),
        {
            "segment": "important_retain",
            "label_zh": "重要保持客户",
            "label_en": "Important to retain",
            "customers": 1,
            "share": 0.1667,
            "clv_total": "300.25",
            "clv_mean": "300.25",
            "credit_score_mean": 650.0,
            "churn_probability_mean": 0.7,
        },
        _empty_values(
            segment="important_win_back", label_zh="重要挽留客户", label_en="Important to win back"
        ),
        {
            "segment": "general_value",
            "label_zh": "一般价值客户",
            "label_en": "General value",
            "customers": 1,
            "share": 0.1667,
            "clv_total": "120.00",
            "clv_mean": "120.00",
            "credit_score_mean": 600.0,
            "churn_probability_mean": None,
        },
        _empty_values(
            segment="general_develop", label_zh="一般发展客户", label_en="General to develop"
        ),
        _empty_values(
            segment="general_retain", label_zh="一般保持客户", label_en="General to retain"
        ),
        {
            "segment": "general_win_back",
            "label_zh": "一般挽留客户",
            "label_en": "General to win back",
            "customers": 1,
            "share": 0.1667,
            "clv_total": "50.00",
            "clv_mean": "50.00",
            "credit_score_mean": 500.0,
            "churn_probability_mean": 0.9,
        },
        {
            "segment": "",
            "label_zh": "未购买",
            "label_en": "No purchase yet",
            "customers": 1,
            "share": 0.1667,
            "clv_total": "0.00",
            "clv_mean": None,
            "credit_score_mean": 400.0,
            "churn_probability_mean": None,
        },
    ]


def test_movers_are_the_grade_changes_that_started_in_the_month(shop: Shop) -> None:
    # when
    movers = report.report_build(OCTOBER)["movers"]

    # then: 丙's first grade is no change; 戊 (September) and 己 (November) are outside
    assert movers == {
        "up": 2,
        "down": 1,
        "rows": [
            {
                "customer_id": shop.id("甲"),
                "name": "甲",
                "from_grade": "ordinary",
                "to_grade": "core",
                "direction": "up",
                "date": "2026-10-01",
            },
            {
                "customer_id": shop.id("乙"),
                "name": "乙",
                "from_grade": "core",
                "to_grade": "potential",
                "direction": "down",
                "date": "2026-10-15",
            },
            {
                "customer_id": shop.id("乙"),
                "name": "乙",
                "from_grade": "potential",
                "to_grade": "core",
                "direction": "up",
                "date": "2026-10-20",
            },
        ],
    }
    november = report.report_build(date(2026, 11, 1), today=date(2026, 11, 23))["movers"]
    assert [(row["name"], row["direction"]) for row in november["rows"]] == [("己", "down")]


def test_churn_risk_lists_core_and_potential_customers_most_likely_to_churn(shop: Shop) -> None:
    # when
    churn_risk = report.report_build(OCTOBER)["churn_risk"]

    # then: 戊 is ordinary and 丁 has no churn probability
    assert churn_risk == [
        {
            "rank": 1,
            "customer_id": shop.id("丙"),
            "name": "丙",
            "grade": "potential",
            "churn_probability": 0.7,
            "clv_12m": "300.25",
            "days_since_last_purchase": 60,
        },
        {
            "rank": 2,
            "customer_id": shop.id("乙"),
            "name": "乙",
            "grade": "core",
            "churn_probability": 0.4,
            "clv_12m": "500.50",
            "days_since_last_purchase": 20,
        },
        {
            "rank": 3,
            "customer_id": shop.id("甲"),
            "name": "甲",
            "grade": "core",
            "churn_probability": 0.1,
            "clv_12m": "1000.00",
            "days_since_last_purchase": 5,
        },
    ]


def test_top_customers_are_ordered_by_clv(shop: Shop) -> None:
    # when
    top = report.report_build(OCTOBER)["top_customers"]

    # then: 己 has no CLV
    assert [(row["rank"], row["name"], row["clv_12m"]) for row in top] == [
        (1, "甲", "1000.00"),
        (2, "乙", "500.50"),
        (3, "丙", "300.25"),
        (4, "丁", "120.00"),
        (5, "戊", "50.00"),
    ]
    assert top[0] == {
        "rank": 1,
        "customer_id": shop.id("甲"),
        "name": "甲",
        "grade": "core",
        "clv_12m": "1000.00",
        "credit_score": 800,
        "churn_probability": 0.1,
        "rfm_segment": "important_value",
        "expected_orders_90d": 3.5,
    }


def test_the_lists_hold_fifty_customers_ties_by_customer_number(lake: Path) -> None:
    # given: 60 core customers with the same CLV and churn probability
    run = ScoreRun.objects.create(
        as_of=date(2026, 11, 1), status="completed", started_at=timezone.now()
    )
    customers = [make_customer() for _ in range(60)]
    for customer in customers:
        _score(customer, run, grade="core", clv="10.00", credit=700, churn=0.5, segment="")

    # when
    built = report.report_build(OCTOBER)

    # then
    first_fifty = [c.pk for c in customers[:50]]
    assert [row["customer_id"] for row in built["top_customers"]] == first_fifty
    assert [row["customer_id"] for row in built["churn_risk"]] == first_fifty
    assert built["by_grade"][0]["clv_total"] == "600.00"


def test_an_empty_shop_gives_an_empty_report(db: None, lake: Path) -> None:
    # when
    built = report.report_build(OCTOBER)

    # then
    assert built["scores"] == {
        "source": "scores",
        "as_of": None,
        "run_id": None,
        "is_later_than_month": False,
    }
    assert built["totals"] == {"customers": 0, "graded": 0, "clv_total": "0.00"}
    assert [row["customers"] for row in built["by_grade"]] == [0, 0, 0]
    assert [row["share"] for row in built["by_grade"]] == [None, None, None]
    assert len(built["by_segment"]) == 8
    assert built["movers"] == {"up": 0, "down": 0, "rows": []}
    assert built["churn_risk"] == [] and built["top_customers"] == []


def test_a_month_not_started_is_refused(shop: Shop) -> None:
    with pytest.raises(ValidationFailed, match="month: 2026-12 has not started yet"):
        report.report_build(date(2026, 12, 1), today=date(2026, 11, 23))
    running = report.report_build(date(2026, 11, 1), today=date(2026, 11, 23))
    assert running["is_complete"] is False


# ---------------------------------------------------------------------- scores as of the month


def _snapshot(as_of: str, grades: dict[int, tuple[str, float, float]]) -> ScoreRun:
    """A lake snapshot of a past run: customer -> (grade, CLV, churn probability)."""
    run = ScoreRun.objects.create(
        as_of=date.fromisoformat(as_of), status="completed", started_at=timezone.now()
    )
    ids = sorted(grades)
    table = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "p_alive": pa.array([0.5] * len(ids)),
            "expected_orders_90d": pa.array([1.25] * len(ids)),
            "clv_12m": pa.array([grades[c][1] for c in ids], pa.float64()),
            "credit_score": pa.array([600.0] * len(ids)),
            "churn_probability": pa.array([grades[c][2] for c in ids]),
            "rfm_segment": pa.array(["general_value"] * len(ids)),
            "cluster": pa.array([0] * len(ids), pa.int64()),
            "grade": pa.array([grades[c][0] for c in ids]),
            "grade_composite": pa.array([0.5] * len(ids)),
        }
    )
    snapshot_write(run, table)
    return run


def test_a_past_month_uses_the_lake_snapshot_of_its_end(shop: Shop) -> None:
    # given: snapshots before, at and after September's cut-off (2026-10-01)
    a, b = shop.id("甲"), shop.id("乙")
    _snapshot("2026-09-01", {a: ("ordinary", 1.0, 0.1), b: ("ordinary", 1.0, 0.1)})
    september = _snapshot("2026-10-01", {a: ("potential", 200.004, 0.3), b: ("core", 99.5, 0.6)})
    _snapshot("2026-10-15", {a: ("core", 5.0, 0.1), b: ("core", 5.0, 0.1)})

    # when
    built = report.report_build(date(2026, 9, 1))

    # then
    assert built["scores"] == {
        "source": "snapshot",
        "as_of": "2026-10-01",
        "run_id": september.pk,
        "is_later_than_month": False,
    }
    assert built["totals"] == {"customers": 2, "graded": 2, "clv_total": "299.50"}
    assert [(row["grade"], row["customers"], row["clv_total"]) for row in built["by_grade"]] == [
        ("core", 1, "99.50"),
        ("potential", 1, "200.00"),
        ("ordinary", 0, "0.00"),
    ]
    assert built["churn_risk"] == [
        {
            "rank": 1,
            "customer_id": b,
            "name": "乙",
            "grade": "core",
            "churn_probability": 0.6,
            "clv_12m": "99.50",
            "days_since_last_purchase": None,  # not kept in snapshots
        },
        {
            "rank": 2,
            "customer_id": a,
            "name": "甲",
            "grade": "potential",
            "churn_probability": 0.3,
            "clv_12m": "200.00",
            "days_since_last_purchase": None,
        },
    ]


def test_without_a_snapshot_that_old_the_latest_scores_are_used_and_said_to_be_later(
    shop: Shop,
) -> None:
    # when
    built = report.report_build(date(2026, 8, 1))

    # then
    assert built["scores"] == {
        "source": "scores",
        "as_of": "2026-11-01",
        "run_id": shop.run.pk,
        "is_later_than_month": True,
    }
    assert built["totals"]["customers"] == 6


# ---------------------------------------------------------------------- storing


def test_generating_again_replaces_the_report_and_is_audited(shop: Shop) -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER, username="ops-wang")

    # when
    report.report_generate(OCTOBER, user=manager)
    CustomerScore.objects.filter(customer=shop.customers["甲"]).update(clv_12m=Decimal("10.00"))
    report.report_generate(OCTOBER, user=manager)

    # then
    assert Snapshot.objects.filter(kind__startswith="report:").count() == 1
    stored = report.report_get(OCTOBER, user=manager)
    assert stored["totals"]["clv_total"] == "980.75"
    assert stored["generated_by"] == "ops-wang"
    events = AuditEvent.objects.filter(entity_type="insight.report").order_by("id")
    assert [(e.action, e.entity_id, e.summary, e.actor_label) for e in events] == [
        ("create", "2026-10", "value report 2026-10 generated", "ops-wang"),
        ("update", "2026-10", "value report 2026-10 regenerated", "ops-wang"),
    ]


def test_a_user_without_change_targets_may_not_generate(shop: Shop) -> None:
    # given
    analyst = make_user(Role.ANALYST)

    # when
    with pytest.raises(PermissionDenied):
        report.report_generate(OCTOBER, user=analyst)

    # then
    assert not Snapshot.objects.exists()
    assert not AuditEvent.objects.filter(entity_type="insight.report").exists()


def test_the_list_is_newest_month_first(shop: Shop) -> None:
    # given
    for month in (date(2026, 8, 1), OCTOBER, date(2026, 9, 1)):
        report.report_generate(month)

    # when
    listed = report.report_list(user=make_user(Role.ANALYST))

    # then
    assert [(r.month, r.customers, r.generated_by, r.is_complete) for r in listed] == [
        ("2026-10", 6, "system", True),
        ("2026-09", 6, "system", True),
        ("2026-08", 6, "system", True),
    ]
    assert listed[0].scores_as_of == date(2026, 11, 1)


def test_a_month_without_a_report_is_not_found(shop: Shop) -> None:
    from patron.errors import NotFound

    with pytest.raises(NotFound, match="no value report for 2026-10: generate it first"):
        report.report_get(OCTOBER)


def test_the_monthly_job_reports_the_month_before(shop: Shop) -> None:
    # when: the slot of 1 November, twice
    first = generate_monthly_report.call(as_of="2026-11-01")
    second = generate_monthly_report.call(as_of="2026-11-01")

    # then
    assert (
        first
        == second
        == {
            "month": "2026-10",
            "customers": 6,
            "scores_as_of": "2026-11-01",
            "moved_up": 2,
            "moved_down": 1,
        }
    )
    assert list(Snapshot.objects.values_list("kind", flat=True)) == ["report:2026-10"]
    assert report.report_get(OCTOBER)["generated_by"] == "system"
    assert not AuditEvent.objects.filter(entity_type="insight.report").exists()


# ---------------------------------------------------------------------- pages and files


def client_for(role: str, *, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(make_user(role))
    return client


def text_of(page: str) -> str:
    without_tags = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", without_tags).strip())


@pytest.fixture
def october(shop: Shop) -> Shop:
    report.report_generate(OCTOBER)
    return shop


def _csv(response: Any) -> list[list[str]]:
    content: bytes = response.content
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_csv_is_one_section_with_a_bom_a_header_and_the_rows(october: Shop) -> None:
    # when
    response = client_for("analyst").get("/insights/reports/2026-10/download.csv?section=by_grade")

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="patron-value-report-2026-10-by-grade.csv"'
    )
    assert _csv(response) == [
        [
            "Code",
            "Grade",
            "Customers",
            "Share",
            "Total 12-month CLV",
            "Mean 12-month CLV",
            "Mean credit score",
            "Mean churn probability",
        ],
        ["core", "Core", "2", "0.3333", "1500.50", "750.25", "750.0", "0.25"],
        ["potential", "Potential", "2", "0.3333", "420.25", "210.13", "625.0", "0.7"],
        ["ordinary", "Ordinary", "2", "0.3333", "50.00", "50.00", "450.0", "0.9"],
    ]


def test_csv_in_chinese_has_chinese_headers_and_labels(october: Shop) -> None:
    # when
    response = client_for("analyst", language="zh-hans").get(
        "/insights/reports/2026-10/download.csv?section=movers"
    )

    # then
    rows = _csv(response)
    assert rows[0] == ["客户ID", "姓名", "原等级", "新等级", "方向", "日期"]
    assert rows[1] == [str(october.id("甲")), "甲", "普通客户", "核心客户", "上升", "2026-10-01"]
    assert rows[2][2:5] == ["核心客户", "潜力客户", "下降"]
    assert len(rows) == 4


def test_xlsx_has_one_sheet_per_section_with_a_bold_header_and_numbers(october: Shop) -> None:
    # when
    response = client_for("marketer").get("/insights/reports/2026-10/download.xlsx")

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert (
        response["Content-Disposition"] == 'attachment; filename="patron-value-report-2026-10.xlsx"'
    )
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == SECTION_TITLES
    grades = workbook["Value by grade"]
    assert all(cell.font.bold for cell in grades[1])
    assert [cell.value for cell in grades[2]] == [
        "core",
        "Core",
        2,
        0.3333,
        1500.5,
        750.25,
        750,
        0.25,
    ]
    assert grades["E2"].number_format == "#,##0.00"
    assert grades["D2"].number_format == "0.00%"
    assert grades.max_row == 4
    assert workbook["Value by RFM segment"].max_row == 10
    assert workbook["Grade changes"].max_row == 4
    churn = workbook["Churn risk"]
    assert [cell.value for cell in churn[2]] == [
        1,
        october.id("丙"),
        "丙",
        "Potential",
        0.7,
        300.25,
        60,
    ]
    top = workbook["Top customers"]
    assert top.max_row == 6
    assert [cell.value for cell in top[6]][:6] == [5, october.id("戊"), "戊", "Ordinary", 50, 500]


def test_xlsx_of_one_section_holds_that_sheet(october: Shop) -> None:
    response = client_for("analyst").get(
        "/insights/reports/2026-10/download.xlsx?section=churn_risk"
    )
    assert response.status_code == 200
    assert load_workbook(io.BytesIO(response.content)).sheetnames == ["Churn risk"]
    assert "patron-value-report-2026-10-churn-risk.xlsx" in response["Content-Disposition"]


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        (
            "/insights/reports/2026-13/",
            422,
            "month: expected a month as YYYY-MM, got '2026-13'",
        ),
        (
            "/insights/reports/2026-13/download.xlsx",
            422,
            "month: expected a month as YYYY-MM, got '2026-13'",
        ),
        ("/insights/reports/2026-09/", 404, "no value report for 2026-09: generate it first"),
        (
            "/insights/reports/2026-10/download.pdf",
            404,
            "no download format 'pdf'; choose one of csv, xlsx",
        ),
        (
            "/insights/reports/2026-10/download.csv",
            422,
            "section: required for CSV (one section per file); choose one of by_grade, "
            "by_segment, movers, churn_risk, top_customers",
        ),
        (
            "/insights/reports/2026-10/download.csv?section=vip",
            422,
            "section: no section named 'vip'; choose one of by_grade, by_segment, movers, "
            "churn_risk, top_customers",
        ),
    ],
)
def test_bad_requests_get_a_page_naming_the_value(
    october: Shop, url: str, status: int, message: str
) -> None:
    response = client_for("analyst").get(url)
    assert response.status_code == status
    assert message in text_of(response.content.decode())


def chart_of(page: str, chart_id: str) -> dict[str, Any]:
    found = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', page)
    assert found, f"no chart {chart_id}"
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


def test_the_printable_page_in_english(october: Shop) -> None:
    # when
    response = client_for("analyst").get("/insights/reports/2026-10/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    text = text_of(page)
    assert "Customer-value report 2026-10" in text
    assert "2026-10-01 to 2026-10-31" in text
    assert f"scores as of 2026-11-01 (run #{october.run.pk})" in text
    for title in SECTION_TITLES:
        assert title in text
    assert "Core 2 33.3 % ¥1,500.50 ¥750.25 750.0 25.0 %" in text
    assert "Important value 2" in text and "No purchase yet 1" in text
    assert "2 up, 1 down" in text
    assert "@media print" in page
    assert 'class="d-flex gap-2 no-print"' in page
    chart = chart_of(page, "clv-chart")
    assert chart["xAxis"]["data"] == ["Core", "Potential", "Ordinary"]
    assert chart["series"][0]["data"] == [1500.5, 420.25, 50.0]
    customer_link = f'href="/customers/{october.id("丙")}/"'
    assert customer_link in page
    assert 'data-testid="regenerate"' not in page  # an analyst reads, does not generate


def test_the_printable_page_in_chinese(october: Shop) -> None:
    # when
    response = client_for("operations_manager", language="zh-hans").get(
        "/insights/reports/2026-10/"
    )

    # then
    assert response.status_code == 200
    page = response.content.decode()
    text = text_of(page)
    assert "客户价值报告 2026-10" in text
    assert "核心客户 2 33.3 % ¥1,500.50" in text
    assert "重要价值客户 2" in text and "未购买 1" in text
    assert "按等级的价值" in text and "流失风险" in text
    assert chart_of(page, "clv-chart")["xAxis"]["data"] == ["核心客户", "潜力客户", "普通客户"]
    assert 'data-testid="regenerate"' in page


def test_the_list_page_shows_reports_and_the_form_to_those_who_may_generate(
    october: Shop,
) -> None:
    # when
    manager_page = client_for("operations_manager").get("/insights/reports/").content.decode()
    analyst_page = client_for("analyst", language="zh-hans").get("/insights/reports/")

    # then
    assert 'data-testid="report-2026-10"' in manager_page
    assert 'data-testid="generate-form"' in manager_page
    assert "scheduled job" in text_of(manager_page)
    assert analyst_page.status_code == 200
    assert 'data-testid="generate-form"' not in analyst_page.content.decode()
    assert "价值报告" in text_of(analyst_page.content.decode())


def test_generating_from_the_page_redirects_to_the_report(shop: Shop) -> None:
    # when
    client = client_for("administrator")
    response = client.post("/insights/reports/", {"month": "2026-10"})

    # then
    assert response.status_code == 302
    assert response["Location"] == "/insights/reports/2026-10/"
    assert report.report_get(OCTOBER)["totals"]["customers"] == 6


def test_a_bad_month_in_the_form_is_shown_next_to_it(shop: Shop) -> None:
    # when
    response = client_for("administrator").post("/insights/reports/", {"month": "10/2026"})

    # then
    assert response.status_code == 422
    assert "month: expected a month as YYYY-MM, got '10/2026'" in text_of(response.content.decode())
    assert not Snapshot.objects.exists()


# ---------------------------------------------------------------------- the API


@pytest.fixture
def api() -> str:
    """The report API's prefix."""
    return "/api/insights"


def api_client(user: User) -> Client:
    return Client(
        headers={"Authorization": f"Bearer {token_create(user=user)}", "accept-language": "en"}
    )


def test_the_api_generates_lists_reads_and_downloads(shop: Shop, api: str) -> None:
    # given
    manager = api_client(make_user(Role.OPERATIONS_MANAGER, username="ops-li"))

    # when
    created = manager.post(f"{api}/reports/2026-10")
    listed = manager.get(f"{api}/reports")
    read = manager.get(f"{api}/reports/2026-10")
    csv_file = manager.get(f"{api}/reports/2026-10/download?format=csv&section=top_customers")
    xlsx_file = manager.get(f"{api}/reports/2026-10/download?format=xlsx")

    # then
    assert created.status_code == 201
    body = created.json()
    assert body["month"] == "2026-10" and body["generated_by"] == "ops-li"
    assert body["by_grade"][0]["clv_total"] == "1500.50"
    assert body["movers"]["up"] == 2 and len(body["movers"]["rows"]) == 3
    assert [row["name"] for row in body["churn_risk"]] == ["丙", "乙", "甲"]
    assert listed.status_code == 200
    assert [(r["month"], r["customers"], r["generated_by"]) for r in listed.json()] == [
        ("2026-10", 6, "ops-li")
    ]
    assert read.status_code == 200 and read.json()["totals"]["clv_total"] == "1970.75"
    assert read.json()["by_segment"][-1]["segment"] == ""
    assert _csv(csv_file)[1][:5] == ["1", str(shop.id("甲")), "甲", "Core", "1000.00"]
    assert load_workbook(io.BytesIO(xlsx_file.content)).sheetnames == SECTION_TITLES
    assert 'filename="patron-value-report-2026-10.xlsx"' in xlsx_file["Content-Disposition"]


@pytest.mark.parametrize(
    ("url", "method", "status", "message"),
    [
        ("/reports/2026-13", "get", 422, "invalid request: path.month"),
        ("/reports/2026-13", "post", 422, "invalid request: path.month"),
        ("/reports/2026-09", "get", 404, "no value report for 2026-09: generate it first"),
        (
            "/reports/2026-10/download?format=pdf",
            "get",
            422,
            "invalid request: query.format",
        ),
        (
            "/reports/2026-10/download?format=csv&section=vip",
            "get",
            422,
            "section: no section named 'vip'; choose one of by_grade, by_segment, movers, "
            "churn_risk, top_customers",
        ),
    ],
)
def test_the_api_refuses_bad_input_naming_it(
    october: Shop, api: str, url: str, method: str, status: int, message: str
) -> None:
    client = api_client(make_user(Role.ADMINISTRATOR))
    response = getattr(client, method)(f"{api}{url}")
    assert response.status_code == status
    assert response.json()["message"] == message


# ---------------------------------------------------------------------- who may do what


@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_and_generate_reports(october: Shop, api: str, role: str) -> None:
    # given
    user = make_user(role)
    page = Client()
    page.force_login(user)
    client = api_client(user)
    stored_at = Snapshot.objects.get(kind="report:2026-10").computed_at
    reads = {
        "list page": page.get("/insights/reports/"),
        "report page": page.get("/insights/reports/2026-10/"),
        "xlsx download": page.get("/insights/reports/2026-10/download.xlsx"),
        "csv download": page.get("/insights/reports/2026-10/download.csv?section=movers"),
        "GET /reports": client.get(f"{api}/reports"),
        "GET /reports/{month}": client.get(f"{api}/reports/2026-10"),
        "GET /reports/{month}/download": client.get(f"{api}/reports/2026-10/download"),
    }

    # when
    generates = {
        "generate page": page.post("/insights/reports/", {"month": "2026-10"}),
        "POST /reports/{month}": client.post(f"{api}/reports/2026-10"),
    }

    # then
    may_read = role in MAY_READ
    assert {name: r.status_code for name, r in reads.items()} == {
        name: 200 if may_read else 403 for name in reads
    }
    may_generate = role in MAY_GENERATE
    assert {name: r.status_code for name, r in generates.items()} == {
        "generate page": 302 if may_generate else 403,
        "POST /reports/{month}": 201 if may_generate else 403,
    }
    changed = Snapshot.objects.get(kind="report:2026-10").computed_at != stored_at
    assert changed is may_generate
    audited = AuditEvent.objects.filter(entity_type="insight.report").count()
    assert audited == (2 if may_generate else 0)
