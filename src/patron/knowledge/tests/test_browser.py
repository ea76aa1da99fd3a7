"""The FAQ page in a real browser (Debian's Chromium through Playwright): an agent types a
customer's question and the answering article appears as they type (htmx), marked as the one
that would be sent automatically; the evaluation page shows its figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from patron.account.roles import Role
from patron.conftest import PASSWORD, make_user
from patron.knowledge import services
from patron.web.tests.browsing import BROWSER_MARKS, browser, open_as

__all__ = ["browser", "open_as"]  # shared fixtures (patron.web.tests.browsing)

pytestmark = BROWSER_MARKS


@pytest.fixture
def shop_faq(transactional_db: None) -> None:
    services.knowledge_seed()
    make_user(Role.SERVICE_AGENT, username="agent-zhou", password=PASSWORD)


def test_live_suggestions_as_the_agent_types(
    shop_faq: None, open_as: Callable[[str], Any], live_server: Any
) -> None:
    # given
    page = open_as("agent-zhou")
    page.goto(f"{live_server.url}/service/faq/")

    # when
    page.fill("[data-testid=faq-search]", "退款什么时候到账啊")

    # then
    suggestion = page.locator("[data-testid=faq-suggestion-refund-time]")
    suggestion.wait_for(timeout=30_000)
    assert suggestion.locator("[data-testid=auto-reply]").count() == 1
    assert page.url == f"{live_server.url}/service/faq/"  # the list stays where it was

    # when: the evaluation page
    page.click("[data-testid=faq-nav] >> text=Evaluation")

    # then
    page.locator("[data-testid=hit-at-3]").wait_for()
    assert page.locator("[data-testid=hit-at-3]").inner_text().endswith("%")
    assert page.locator("[data-testid=unknown-labels]").count() == 0
