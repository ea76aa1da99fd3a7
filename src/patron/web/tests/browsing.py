"""What the browser tests share: Debian's Chromium driven by Playwright (sync API), a
module-scoped browser, and logged-in pages, each in a browser context of its own person.

Playwright's sync API runs an event loop in this thread, so Django's "async unsafe" guard
would refuse the ORM calls that the fixtures make; the tests are sequential, so it is safe.
Test modules import the fixtures they use from here (and list them in ``__all__``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.conftest import PASSWORD

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: ``pytestmark`` of every browser test module.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's Chromium is not installed at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_context(browser: Any, *, width: int = 1366) -> Any:
    context = browser.new_context(locale="en-US", viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    return context


def log_in(page: Any, base_url: str, username: str) -> None:
    """Log in through the form; the live server's first request imports every page, which is
    slow on a busy machine, hence the long first wait."""
    page.goto(f"{base_url}/login/", timeout=60_000)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base_url}/customers/")


@pytest.fixture
def open_as(browser: Any, live_server: Any) -> Iterator[Callable[[str], Any]]:
    """``open_as(username)``: a logged-in page in a browser context of that person's own."""
    contexts: list[Any] = []

    def login(username: str) -> Any:
        context = new_context(browser)
        contexts.append(context)
        page = context.new_page()
        log_in(page, live_server.url, username)
        return page

    yield login
    for context in contexts:
        context.close()
