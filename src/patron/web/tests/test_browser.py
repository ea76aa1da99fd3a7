"""The web app in a real browser: Debian's Chromium driven by Playwright (sync API).

Playwright's sync API runs an event loop in this thread, so Django's "async unsafe" guard
would refuse the ORM calls that the fixtures make; the tests are sequential, so it is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.account.roles import Role
from patron.conftest import PASSWORD, CustomerFile, make_customer_file, make_user
from patron.web.tests.browsing import BROWSER_MARKS, browser, log_in, new_context

pytestmark = BROWSER_MARKS

__all__ = ["browser"]  # the module-scoped Chromium (patron.web.tests.browsing)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = new_context(browser)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def browser_data(transactional_db: None, lake: Path) -> CustomerFile:
    make_user(Role.OPERATIONS_MANAGER, username="manager-chen", password=PASSWORD)
    return make_customer_file()


def test_search_a_customer_and_see_the_orders(
    live_server: Any, page: Any, browser_data: CustomerFile
) -> None:
    # given
    log_in(page, live_server.url, "manager-chen")
    rows = page.locator("[data-testid=customer-table] tbody tr")
    assert rows.count() == 3

    # when: typing searches live (htmx), without submitting the form
    page.fill("#id_q", "13812341234")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=customer-table] tbody tr').length === 1"
    )
    page.click("text=王小明")
    page.wait_for_url(f"{live_server.url}/customers/{browser_data.customer.pk}/")

    # then
    assert page.locator("[data-testid=customer-name]").inner_text() == "王小明"
    assert page.locator("[data-testid=customer-phone]").inner_text() == "13812341234"
    orders = page.locator("[data-testid=orders-table] tr.order-row")
    assert orders.count() == 3
    assert orders.nth(2).locator("td").nth(1).inner_text() == "SO-0001"
    assert orders.nth(2).locator("td").nth(8).inner_text() == "¥299.00"
    details = page.locator(f"#order-{browser_data.orders[0].pk}-details")
    assert details.is_visible() is False
    orders.nth(2).locator("button.expand-toggle").click()
    details.wait_for(state="visible")
    assert "Silk scarf" in details.inner_text()
    assert "Alipay" in details.inner_text()


def test_tabs_and_language_switch(live_server: Any, page: Any, browser_data: CustomerFile) -> None:
    # given
    log_in(page, live_server.url, "manager-chen")
    page.goto(f"{live_server.url}/customers/{browser_data.customer.pk}/")

    # when
    page.click("#tab-timeline")
    timeline = page.locator("[data-testid=timeline]")
    timeline.wait_for(state="visible")
    first_entry = timeline.locator("li").first.inner_text()
    page.click("button[name=language][value=zh-hans]")
    page.wait_for_load_state()

    # then
    assert first_entry.split("\n")[1].startswith("Order placed SO-0003")
    assert page.locator("#tab-orders").inner_text().startswith("订单")
    assert page.url == f"{live_server.url}/customers/{browser_data.customer.pk}/"
