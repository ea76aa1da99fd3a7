"""The insights dashboard in a real browser (Debian's Chromium through Playwright): every chart
is drawn with data, the period changes, and a click on a chart's point opens the customers
behind that month of that metric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.account.roles import Role
from patron.conftest import PASSWORD, make_user
from patron.insight.tests.test_views import ALL_CHARTS, PERIOD, Shop, build_shop
from patron.web.tests.browsing import BROWSER_MARKS, browser, log_in, new_context

__all__ = ["browser"]  # the module-scoped Chromium, shared with the web app's browser tests

pytestmark = BROWSER_MARKS

#: For each chart container: whether ECharts drew it (an <svg>), how many points its option's
#: series hold (a heatmap cell counts when it has a value), and whether its points link.
CHARTS_DRAWN = """() => Array.from(document.querySelectorAll('[data-chart]')).map((el) => {
  const chart = window.echarts.getInstanceByDom(el);
  const series = chart ? chart.getOption().series : [];
  const points = series.reduce((count, s) => count + s.data.filter(
    (p) => p !== null && p !== undefined && !(Array.isArray(p) && p[2] === null)).length, 0);
  return {id: el.dataset.testid, isDrawn: el.querySelector('svg') !== null, points: points,
          isLinked: el.dataset.drill === '1'};
})"""

#: Where, in the viewport (scrolled to the chart), point ``index`` of series ``series`` of a chart is drawn.
POINT_AT = """([testid, series, index]) => {
  const el = document.querySelector(`[data-testid=${testid}]`);
  el.scrollIntoView({block: 'center', behavior: 'instant'});
  const chart = window.echarts.getInstanceByDom(el);
  const value = chart.getOption().series[series].data[index];
  const [x, y] = chart.convertToPixel({seriesIndex: series}, [index, value]);
  const box = el.getBoundingClientRect();
  return {x: box.left + x, y: box.top + y};
}"""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = new_context(browser, width=1440)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shop(transactional_db: None, lake: Path) -> Shop:
    make_user(Role.OPERATIONS_MANAGER, username="manager-chen", password=PASSWORD)
    return build_shop()


def test_the_dashboard_draws_every_chart_changes_period_and_drills_down(
    live_server: Any, page: Any, shop: Shop
) -> None:
    base = live_server.url
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # given: the dashboard, opened from the navigation
    log_in(page, base, "manager-chen")
    page.click('nav.patron-navbar a.nav-link:text-is("Insights")')
    page.wait_for_url(f"{base}/insights/")
    page.goto(f"{base}/insights/?{PERIOD}")

    # then every chart is drawn, with data, and its points link to the drill-down
    drawn = page.evaluate(CHARTS_DRAWN)
    assert {chart["id"] for chart in drawn} == ALL_CHARTS
    empty = [c["id"] for c in drawn if not (c["isDrawn"] and c["points"] > 0 and c["isLinked"])]
    assert empty == []

    # when the period changes
    page.fill("#id_start", "2026-03")
    page.fill("#id_end", "2026-04")
    page.click("[data-testid=period-submit]")
    page.wait_for_url(f"{base}/insights/?start=2026-03&end=2026-04")

    # then the charts show its months, compared with the two months before
    months = page.evaluate(
        "() => window.echarts.getInstanceByDom(document.querySelector("
        "'[data-testid=chart-complaint-rate]')).getOption().xAxis[0].data"
    )
    assert months == ["2026-03", "2026-04"]
    assert (
        "compared with the previous period (2026-01 – 2026-02)"
        in page.locator("[data-testid=period-text]").inner_text()
    )
    assert (
        page.locator("[data-testid=kpi-average_order_value] [data-testid=kpi-value]").inner_text()
        == "¥130.00"
    )

    # when April's point of the complaint rate is clicked
    point = page.evaluate(POINT_AT, ["chart-complaint-rate", 0, 1])
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url(
        f"{base}/insights/metrics/complaint_rate/?start=2026-03&end=2026-04&month=2026-04"
    )

    # then the customers behind April's complaints are listed, and open
    customers = page.locator("[data-testid=drill-customer]")
    assert customers.count() == 1
    assert customers.first.locator("a").inner_text() == "顾客3"
    customers.first.locator("a").click()
    page.wait_for_url(f"{base}/customers/{shop.customers[3].pk}/")
    assert page.locator("[data-testid=customer-name]").inner_text() == "顾客3"

    # and the months table drills down the same way
    page.go_back()
    page.click("[data-testid=month-2026-03] [data-testid=drill-link]")
    page.wait_for_url(
        f"{base}/insights/metrics/complaint_rate/?start=2026-03&end=2026-04&month=2026-03"
    )
    assert page.locator("[data-testid=drill-customer]").count() == 1
    assert page.locator("[data-testid=drill-customer] a").inner_text() == "顾客1"
    assert errors == []
