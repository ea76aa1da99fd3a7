"""The insight pages: who may open them, the dashboard for a period and the one before, the
drill-down to the customers behind a month, and setting, editing and removing targets."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.commerce.models import Order, ReturnRequest
from patron.conftest import NO_ROLE, at, make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.insight import selectors, services
from patron.insight.metrics import METRICS
from patron.insight.models import Target
from patron.scoring.models import GradeHistory, ScoreRun
from patron.service.models import Ticket

# transaction=True: on PostgreSQL the fill reads the sources through ADBC, its own connection
pytestmark = pytest.mark.django_db(transaction=True)

TODAY = date(2026, 5, 15)  # January to April complete, May running
PERIOD = "start=2026-01&end=2026-04"

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
RISK_ANALYST = Role.RISK_ANALYST.value
MARKETER = Role.MARKETER.value
AUDITOR = Role.AUDITOR.value
ANALYST = Role.ANALYST.value
ROLES = [role.value for role in Role] + [NO_ROLE]
#: Written out, not derived from the roles: a change of rights must fail a line here.
MAY_VIEW = {ADMINISTRATOR, OPERATIONS_MANAGER, MARKETER, AUDITOR, ANALYST}

ALL_CHARTS = {
    "chart-customers",
    "chart-new-returning",
    "chart-repurchase-rate",
    "chart-average-order-value",
    "chart-purchase-frequency",
    "chart-return-rate",
    "chart-complaint-rate",
    "chart-service-quality",
    "chart-first-response",
    "chart-core-share",
    "chart-grade-distribution",
    "chart-cohorts",
    "chart-movement",
}


@dataclass(frozen=True)
class Shop:
    customers: tuple[Customer, ...]  # 0, 2, 4 order in January and February; 1, 3, 5 to May


def build_shop() -> Shop:
    """Six customers with orders, a return (customer 1, in March), three tickets (complaints by
    1 in March and 3 in April) and grades (0–2 core, then potential from March; 3–5 ordinary),
    then a fill as of ``TODAY``."""
    customers = []
    for i in range(6):
        customer = make_customer(name=f"顾客{i}", registered_at=at("2026-01-02 09:00"))
        customers.append(customer)
        for month in range(1, 6 if i % 2 else 3):
            placed = at(f"2026-{month:02d}-1{i} 10:00")
            make_order(
                customer,
                external_id=f"O{i}-{month}",
                placed_at=placed,
                total=str(100 + 10 * i),
                delivered_at=placed + timedelta(days=2),
            )
    returned_order = Order.objects.get(external_id="O1-3")
    ReturnRequest.objects.create(
        source="shop",
        external_id="R1",
        order=returned_order,
        kind=ReturnRequest.Kind.RETURN,
        requested_at=at("2026-03-20 10:00"),
    )
    for number, (index, opened, answered, resolved, score, is_complaint) in enumerate(
        [
            (0, "2026-02-11 10:00", 20, 60, 4, False),
            (1, "2026-03-12 10:00", 10, 300, 5, True),
            (3, "2026-04-14 10:00", 120, 3 * 24 * 60, 2, True),
        ]
    ):
        opened_at = at(opened)
        Ticket.objects.create(
            source="shop",
            external_id=f"T{number}",
            customer=customers[index],
            channel=Ticket.Channel.WEB,
            subject="包裹破损" if is_complaint else "发票",
            status=Ticket.Status.SOLVED,
            is_complaint=is_complaint,
            opened_at=opened_at,
            first_response_at=opened_at + timedelta(minutes=answered),
            resolved_at=opened_at + timedelta(minutes=resolved),
            satisfaction=score,
        )
    run = ScoreRun.objects.create(
        as_of=date(2025, 12, 1), status=ScoreRun.Status.COMPLETED, started_at=timezone.now()
    )
    for customer in customers[:3]:
        GradeHistory.objects.create(
            customer=customer,
            grade="core",
            valid_from=date(2025, 12, 1),
            valid_to=date(2026, 3, 1),
            run=run,
            policy_version=1,
        )
        GradeHistory.objects.create(
            customer=customer,
            grade="potential",
            valid_from=date(2026, 3, 1),
            run=run,
            policy_version=1,
        )
    for customer in customers[3:]:
        GradeHistory.objects.create(
            customer=customer,
            grade="ordinary",
            valid_from=date(2025, 12, 1),
            run=run,
            policy_version=1,
        )
    services.metrics_fill(today=TODAY)
    return Shop(customers=tuple(customers))


@pytest.fixture
def shop(lake: Path) -> Shop:
    return build_shop()


def client_for(user: User | None, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    if user is not None:
        client.force_login(user)
    return client


def text_of(html: str) -> str:
    without_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", without_tags).strip()


def chart_options(html: str) -> dict[str, dict[str, Any]]:
    """Each chart container's id (``data-testid``) → its ECharts option."""
    options = {}
    for script, testid in re.findall(r'data-chart="([\w-]+)" data-testid="([\w-]+)"', html):
        data = re.search(
            rf'<script id="{script}" type="application/json">(.*?)</script>', html, re.S
        )
        assert data, script
        options[testid] = json.loads(data.group(1))
    return options


def found(pattern: str, html: str) -> str:
    """The first group of ``pattern``'s first match in ``html`` (which must match)."""
    match = re.search(pattern, html, re.S)
    assert match, pattern
    return match.group(1)


def drilled_ids(html: str) -> list[int]:
    return [
        int(pk)
        for pk in re.findall(
            r'<tr data-testid="drill-customer">\s*<td class="text-mono">(\d+)</td>', html
        )
    ]


def kpi(html: str, key: str) -> tuple[str, str, str]:
    """(value, change, tone) of a KPI card."""
    card = re.search(rf'data-testid="kpi-{key}">(.*?)</a>', html, re.S)
    assert card, key
    value = re.search(r'data-testid="kpi-value">([^<]*)<', card.group(1))
    change = re.search(r'data-testid="kpi-change" data-tone="(\w+)">([^<]*)<', card.group(1))
    assert value and change
    return value.group(1), change.group(2), change.group(1)


# --- who may open what --------------------------------------------------------------------------


def _pages(target_id: int) -> dict[str, str]:
    return {
        "dashboard": f"/insights/?{PERIOD}",
        "metric": f"/insights/metrics/average_order_value/?{PERIOD}",
        "drill-down": "/insights/metrics/new_customers/?month=2026-01",
        "targets": "/insights/targets/",
        "one target": f"/insights/targets/{target_id}/",
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_page_opens_for_the_roles_that_see_insights(role: str, lake: Path) -> None:
    # given: no fill yet, and one target
    target = Target.objects.create(
        metric="csat",
        name="CSAT ≥ 85 %",
        baseline=0.8,
        baseline_period=date(2026, 4, 1),
        target_value=0.85,
        starts_on=TODAY,
        deadline=date(2027, 5, 15),
    )
    client = client_for(make_user(role))

    # when
    statuses = {name: client.get(url).status_code for name, url in _pages(target.pk).items()}

    # then
    expected = 200 if role in MAY_VIEW else 403
    assert statuses == dict.fromkeys(statuses, expected)


def test_anonymous_visitors_are_sent_to_the_login(lake: Path) -> None:
    client = Client()
    for url in _pages(1).values():
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_only_target_holders_may_post(shop: Shop) -> None:
    # given
    target = Target.objects.get(metric="complaint_rate", is_default=True)
    before = list(Target.objects.values_list("pk", "name", "target_change"))
    form = {"metric": "average_order_value", "name": "AOV", "target_value": "150"}

    # when
    for role in (MARKETER, AUDITOR, ANALYST, SERVICE_AGENT):
        client = client_for(make_user(role))
        created = client.post("/insights/targets/", {**form, "deadline": "2027-01-31"})
        deleted = client.post(f"/insights/targets/{target.pk}/", {"action": "delete"})
        # then
        assert (created.status_code, deleted.status_code) == (403, 403)
    assert list(Target.objects.values_list("pk", "name", "target_change")) == before


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_shows_every_metric_every_chart_and_the_targets(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))

    # when
    response = client.get(f"/insights/?{PERIOD}")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    options = chart_options(html)
    assert set(options) == ALL_CHARTS
    for testid, option in options.items():
        values = [
            point
            for series in option["series"]
            for point in series["data"]
            if point is not None and (not isinstance(point, list) or point[2] is not None)
        ]
        assert values, testid
        assert option["drill"]["url"].startswith("/insights/metrics/{key}/?"), testid
    assert options["chart-customers"]["xAxis"]["data"] == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    assert options["chart-grade-distribution"]["series"][0]["data"] == [3, 3, 0, 0]  # core
    assert options["chart-movement"]["series"][0]["data"] == [
        [0, 0, 0],
        [1, 0, 3],
        [2, 0, 0],
        [0, 1, 0],
        [1, 1, 0],
        [2, 1, 0],
        [0, 2, 0],
        [1, 2, 0],
        [2, 2, 3],
    ]
    assert kpi(html, "average_order_value") == ("¥126.67", "—", "same")  # 2,280 / 18 orders
    assert kpi(html, "new_customers") == ("6", "—", "same")
    assert kpi(html, "return_rate")[0] == "5.6 %"  # 1 of 18 delivered orders
    page = text_of(html)
    assert "2026-01 – 2026-04, compared with the previous period (2025-09 – 2025-12)" in page
    seeded = Target.objects.get(metric="repurchase_rate", is_default=True)
    assert f'href="/insights/targets/{seeded.pk}/"' in html
    assert "Repurchase rate +15 %" in page


def test_a_chart_point_opens_its_month_of_its_metric(shop: Shop) -> None:
    # given
    client = client_for(make_user(ANALYST))
    html = client.get(f"/insights/?{PERIOD}").content.decode()

    # when
    drill = chart_options(html)["chart-new-returning"]["drill"]

    # then
    assert drill["url"] == "/insights/metrics/{key}/?" + PERIOD + "&month={month}"
    assert [s["key"] for s in drill["series"]] == ["new_customers", "returning_customers"]
    assert drill["series"][1]["month"] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    compare = chart_options(html)["chart-customers"]["drill"]["series"]
    assert compare[1]["month"] == ["2025-09", "2025-10", "2025-11", "2025-12"]  # previous period


def test_changing_the_period_compares_with_the_months_before_it(shop: Shop) -> None:
    # given
    client = client_for(make_user(MARKETER))

    # when
    html = client.get("/insights/?start=2026-03&end=2026-04").content.decode()

    # then
    assert kpi(html, "average_order_value") == ("¥130.00", "+4.0 %", "better")  # vs ¥125.00
    # 2 complaints in 6 orders, none before: worse, by no share of 0
    assert kpi(html, "complaint_rate") == ("33.3 %", "—", "worse")
    assert chart_options(html)["chart-customers"]["xAxis"]["data"] == ["2026-03", "2026-04"]
    assert "2026-03 – 2026-04, compared with the previous period (2026-01 – 2026-02)" in text_of(
        html
    )


def test_without_a_period_the_dashboard_shows_the_last_twelve_complete_months(shop: Shop) -> None:
    # given
    first, last = selectors.default_period()

    # when
    html = client_for(make_user(AUDITOR)).get("/insights/").content.decode()

    # then
    assert f'name="start" value="{first:%Y-%m}"' in html
    assert f'name="end" value="{last:%Y-%m}"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-13&end=2026-04", "start: expected a month as YYYY-MM, got '2026-13'"),
        ("start=2026-04&end=2026-01", "period: the end (2026-01) is before the start (2026-04)"),
        ("start=2020-01&end=2026-04", "period: at most 60 months, got 76"),
    ],
)
def test_a_bad_period_is_refused_next_to_the_form(shop: Shop, query: str, message: str) -> None:
    # when
    response = client_for(make_user(ANALYST)).get(f"/insights/?{query}")

    # then
    assert response.status_code == 422
    html = response.content.decode()
    assert found(r'data-testid="period-error">([^<]*)<', html) == message.replace("'", "&#x27;")
    assert chart_options(html) == {}


def test_before_any_fill_the_dashboard_says_how_to_fill(lake: Path) -> None:
    html = client_for(make_user(ANALYST)).get("/insights/").content.decode()
    assert 'data-testid="no-metrics"' in html
    assert "patron insights fill" in html


# --- one metric and its drill-down --------------------------------------------------------------


def test_the_metric_page_shows_the_definition_and_each_month(shop: Shop) -> None:
    # when
    response = client_for(make_user(ANALYST)).get(
        f"/insights/metrics/average_order_value/?{PERIOD}"
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    page = text_of(html)
    assert f"Definition: {METRICS['average_order_value'].definition}" in page
    assert found(r'data-testid="metric-value">([^<]*)<', html) == "¥126.67"
    assert "2026-03 ¥130.00 390 3 2025-11 —" in page
    assert "2026-04 provisional ¥130.00 390 3 2025-12 —" in page  # settles 31 days after
    options = chart_options(html)["chart-metric"]
    assert options["series"][0]["data"] == [125.0, 125.0, 130.0, 130.0]
    assert 'data-testid="drill"' not in html


@pytest.mark.parametrize(
    ("key", "month", "expected"),
    [
        ("new_customers", "2026-01", [0, 1, 2, 3, 4, 5]),
        ("new_customers", "2026-02", []),
        ("returning_customers", "2026-03", [1, 3, 5]),
        ("return_rate", "2026-03", [1]),
        ("complaint_rate", "2026-04", [3]),
        ("grade_core", "2026-02", [0, 1, 2]),
    ],
)
def test_the_drill_down_lists_exactly_the_customers_behind_a_month(
    shop: Shop, key: str, month: str, expected: list[int]
) -> None:
    # when
    response = client_for(make_user(MARKETER)).get(
        f"/insights/metrics/{key}/?{PERIOD}&month={month}"
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert drilled_ids(html) == [shop.customers[i].pk for i in expected]
    for i in expected:
        assert f'href="/customers/{shop.customers[i].pk}/">顾客{i}</a>' in html
    count = found(r'data-testid="drill-count">\s*([^<·]*)', html).strip()
    assert count == f"{len(expected)} customer{'' if len(expected) == 1 else 's'}"
    assert f'<tr data-testid="month-{month}" class="table-active">' in html


def test_a_cell_of_the_grade_movement_opens_the_customers_who_moved(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    drill = chart_options(client.get(f"/insights/?{PERIOD}").content.decode())["chart-movement"][
        "drill"
    ]
    assert drill["url"] == "/insights/metrics/{key}/?moved_from={was}"
    cell = 1  # row core, column potential
    key, was = drill["series"][0]["key"][cell], drill["series"][0]["was"][cell]

    # when
    html = client.get(f"/insights/metrics/{key}/?moved_from={was}").content.decode()

    # then
    assert (key, was) == ("grade_potential", "core")
    assert drilled_ids(html) == [c.pk for c in shop.customers[:3]]
    assert "Customers graded Core on 2026-01-01 and Potential on 2026-04-01" in text_of(html)


def test_a_cohort_cell_opens_the_cohort(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    option = chart_options(client.get(f"/insights/?{PERIOD}").content.decode())["chart-cohorts"]
    row = option["yAxis"]["data"].index("2026-01 (6)")
    cell = next(i for i, c in enumerate(option["series"][0]["data"]) if c[1] == row and c[0] == 2)

    # when
    drill = option["drill"]["series"][0]
    html = client.get(
        f"/insights/metrics/{drill['key']}/?month={drill['month'][cell]}"
    ).content.decode()

    # then
    assert option["series"][0]["data"][cell] == [2, row, 50.0]  # 3 of 6 ordered in March
    assert drilled_ids(html) == [c.pk for c in shop.customers]


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/insights/metrics/gmv/", 404, "no metric named &#x27;gmv&#x27;"),
        ("/insights/metrics/csat/?month=2026-1x", 422, "month: expected a month as YYYY-MM"),
        ("/insights/metrics/csat/?moved_from=core", 422, "moved_from: only for a grade count"),
        (
            "/insights/metrics/grade_core/?moved_from=gold",
            422,
            "moved_from: one of core, potential",
        ),
    ],
)
def test_a_bad_metric_or_month_is_an_error_page(
    shop: Shop, url: str, status: int, message: str
) -> None:
    response = client_for(make_user(ANALYST)).get(url)
    assert response.status_code == status
    assert message in response.content.decode()


# --- targets ------------------------------------------------------------------------------------


def _form_values(html: str) -> dict[str, str]:
    form = found(r'(data-testid="target-form".*?</form>)', html)
    values = dict(
        re.findall(r'<input type="(?:text|date|hidden)"[^>]*?name="(\w+)" value="([^"]*)"', form)
    )
    values.update(re.findall(r'<textarea[^>]*name="(\w+)"[^>]*>([^<]*)</textarea>', form))
    return values


def test_a_manager_sets_a_target_in_percent(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    latest = services.latest_value("repurchase_rate")
    assert latest is not None

    # when
    response = client.post(
        "/insights/targets/",
        {
            "action": "save",
            "metric": "repurchase_rate",
            "name": "复购率 60 %",
            "target_value": "60",
            "target_change": "",
            "deadline": "2027-03-31",
            "owner": "运营部",
            "note": "",
        },
    )

    # then
    assert response.status_code == 302 and response["Location"] == "/insights/targets/"
    target = Target.objects.get(name="复购率 60 %")
    assert (target.metric, target.target_value, target.target_change) == (
        "repurchase_rate",
        0.6,
        None,
    )
    assert (target.baseline_period, target.baseline) == latest
    assert (target.deadline, target.owner) == (date(2027, 3, 31), "运营部")
    listed = text_of(client.get("/insights/targets/").content.decode())
    assert "Target “复购率 60 %” set." in listed
    assert "复购率 60 % Repurchase rate" in listed


@pytest.mark.parametrize(
    ("changes", "message", "invalid"),
    [
        (
            {"target_value": "", "target_change": ""},
            "set exactly one of target_value and target_change",
            {"target_value", "target_change"},
        ),
        (
            {"target_value": "60", "target_change": "10"},
            "set exactly one of target_value and target_change",
            {"target_value", "target_change"},
        ),
        (
            {"target_value": "六十"},
            "target.target_value: expected a number, got &#x27;六十&#x27;",
            {"target_value"},
        ),
        ({"deadline": "next year"}, "target.deadline: expected a date as YYYY-MM-DD", {"deadline"}),
        ({"deadline": "2026-01-01"}, ".deadline: must be after the start", {"deadline"}),
        ({"name": "  "}, "target.name: required", {"name"}),
        ({"metric": "gmv"}, ".metric: unknown metric &#x27;gmv&#x27;", {"metric"}),
        (
            {"target_value": "", "target_change": "-100"},
            ".target_change: a share above −1",
            {"target_change"},
        ),
    ],
)
def test_a_bad_target_is_refused_with_the_field_named(
    shop: Shop, changes: dict[str, str], message: str, invalid: set[str]
) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    count = Target.objects.count()
    form = {
        "metric": "repurchase_rate",
        "name": "复购率 60 %",
        "target_value": "60",
        "target_change": "",
        "deadline": "2027-03-31",
        "owner": "",
        "note": "",
    }

    # when
    response = client.post("/insights/targets/", {**form, **changes})

    # then
    assert response.status_code == 422
    html = response.content.decode()
    assert message in found(r'data-testid="form-error">([^<]*)<', html)
    marked = set(
        re.findall(
            r'name="(\w+)"[^>]*class="form-(?:control|select) form-(?:control|select)-sm is-invalid"',
            html,
        )
    )
    marked |= set(re.findall(r'<select id="id_(\w+)" name="\w+" class="[^"]*is-invalid"', html))
    assert marked == invalid
    assert _form_values(html)["name"] == {**form, **changes}["name"].strip()  # as typed
    assert Target.objects.count() == count


def test_a_manager_edits_a_target_and_only_the_changed_fields_are_saved(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    target = Target.objects.get(metric="complaint_rate", is_default=True)
    form = _form_values(client.get(f"/insights/targets/{target.pk}/").content.decode())

    # when
    response = client.post(
        f"/insights/targets/{target.pk}/",
        {**form, "name": "投诉率 −25 %", "target_change": "-25", "owner": "客服部"},
    )

    # then
    assert response.status_code == 302
    edited = Target.objects.get(pk=target.pk)
    assert (edited.name, edited.target_change, edited.target_value) == ("投诉率 −25 %", -0.25, None)
    assert (edited.owner, edited.baseline, edited.deadline) == (
        "客服部",
        target.baseline,
        target.deadline,
    )


def test_switching_a_target_from_a_change_to_a_value(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    target = Target.objects.get(metric="complaint_rate", is_default=True)
    form = _form_values(client.get(f"/insights/targets/{target.pk}/").content.decode())

    # when
    client.post(
        f"/insights/targets/{target.pk}/", {**form, "target_value": "20", "target_change": ""}
    )

    # then
    edited = Target.objects.get(pk=target.pk)
    assert (edited.target_value, edited.target_change) == (0.2, None)


def test_a_bad_edit_is_refused_and_changes_nothing(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    target = Target.objects.get(metric="complaint_rate", is_default=True)
    form = _form_values(client.get(f"/insights/targets/{target.pk}/").content.decode())

    # when
    response = client.post(
        f"/insights/targets/{target.pk}/", {**form, "name": "新名字", "baseline": ""}
    )

    # then
    assert response.status_code == 422
    assert "target.baseline: required" in response.content.decode()
    assert Target.objects.get(pk=target.pk).name == target.name


def test_a_manager_removes_a_target(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER))
    target = Target.objects.get(metric="complaint_rate", is_default=True)

    # when
    response = client.post(f"/insights/targets/{target.pk}/", {"action": "delete"})

    # then
    assert response.status_code == 302
    assert not Target.objects.filter(pk=target.pk).exists()
    assert client.get(f"/insights/targets/{target.pk}/").status_code == 404


def test_readers_see_a_target_without_a_form(shop: Shop) -> None:
    # given
    target = Target.objects.get(metric="complaint_rate", is_default=True)

    # when
    html = client_for(make_user(AUDITOR)).get(f"/insights/targets/{target.pk}/").content.decode()

    # then
    assert 'data-testid="target-detail"' in html
    assert 'data-testid="target-form"' not in html


# --- Chinese ------------------------------------------------------------------------------------


def test_the_pages_read_in_chinese(shop: Shop) -> None:
    # given
    client = client_for(make_user(OPERATIONS_MANAGER), language="zh-hans")
    target = Target.objects.get(metric="complaint_rate", is_default=True)

    # when
    dashboard = text_of(client.get(f"/insights/?{PERIOD}").content.decode())
    metric = text_of(
        client.get(f"/insights/metrics/new_customers/?{PERIOD}&month=2026-01").content.decode()
    )
    targets = text_of(client.get(f"/insights/targets/{target.pk}/").content.decode())

    # then
    assert "客单价 ¥126.67" in dashboard
    assert "2026-01 – 2026-04，与上一期间（2025-09 – 2025-12）相比" in dashboard
    assert "洞察" in dashboard and "按月度同期群的留存" in dashboard
    assert "2026-01 新客户 背后的客户 6 位客户" in metric
    assert "目标及其进展" in targets
    assert "删除目标" in targets
    assert "投诉率下降 20 %" in dashboard and "Complaint rate −20 %" not in dashboard
    assert "投诉率下降 20 %" in targets


# --- the docs -----------------------------------------------------------------------------------


def test_the_docs_give_every_definition_word_for_word() -> None:
    docs = (Path(__file__).parents[4] / "docs" / "insights.md").read_text(encoding="utf-8")
    assert [key for key, metric in METRICS.items() if metric.definition not in docs] == []


# Session, user, permissions (2) and groups; fill state, metric list, the series of every metric
# (this period and the one before), targets and their latest values, two snapshots. It was 45
# when each metric and each target read its own rows.
DASHBOARD_QUERIES = 13


def test_the_dashboard_reads_the_database_a_fixed_number_of_times(shop: Shop) -> None:
    # given: the dashboard's queries do not grow with the metrics or the targets
    client = client_for(make_user(OPERATIONS_MANAGER))
    client.get(f"/insights/?{PERIOD}")
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/insights/?{PERIOD}")
    # then
    assert response.status_code == 200
    assert len(queries) <= DASHBOARD_QUERIES, "\n".join(q["sql"][:120] for q in queries)
