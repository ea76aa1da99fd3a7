"""Certification in a real browser (Debian's Chromium through Playwright): a service agent files
an identity application for a customer with both sides of the ID card, sees the pre-checks, and
an operations manager approves it from the queue, after which the customer page shows the level.
A mistyped ID number comes back at once, saying which character is wrong.

Each person works in a browser context of their own, as they would on their own machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.certification import services
from patron.certification.models import Application, Certification
from patron.conftest import PASSWORD, make_customer, make_user
from patron.customer.models import Customer
from patron.web.tests.browsing import BROWSER_MARKS, browser, open_as

__all__ = ["browser", "open_as"]  # shared fixtures (patron.web.tests.browsing)

pytestmark = BROWSER_MARKS

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 100


@dataclass(frozen=True)
class Case:
    customer: Customer
    front: Path
    back: Path


@pytest.fixture
def case(transactional_db: None, lake: Path, tmp_path: Path) -> Case:
    services.levels_seed()  # a flush before this test removes what the migration created
    make_user(Role.SERVICE_AGENT, username="agent-zhang", password=PASSWORD)
    make_user(Role.OPERATIONS_MANAGER, username="manager-chen", password=PASSWORD)
    front, back = tmp_path / "front.png", tmp_path / "back.png"
    front.write_bytes(PNG)
    back.write_bytes(PNG)
    return Case(customer=make_customer(name="张三"), front=front, back=back)


def _fill_identity(page: Any, case: Case, id_number: str) -> None:
    assert page.locator("#id_level").input_value() == "identity"
    assert page.locator("#id_company_name").is_hidden()  # business fields: not for this level
    page.fill("#id_real_name", "张三")
    page.fill("#id_id_number", id_number)
    page.fill("#id_phone", "13800138000")
    page.fill("#id_birth_date", "1949-12-31")
    assert page.locator("[name=document_kind_0]").input_value() == "id_front"
    assert page.locator("[name=document_kind_1]").input_value() == "id_back"
    page.set_input_files("[data-testid=document-file-0]", str(case.front))
    page.set_input_files("[data-testid=document-file-1]", str(case.back))


def test_apply_precheck_approve_and_the_level_is_shown(
    live_server: Any, open_as: Any, case: Case
) -> None:
    base = live_server.url
    customer_url = f"{base}/customers/{case.customer.pk}/"

    # given: a service agent starts the application from the customer page
    agent = open_as("agent-zhang")
    agent.goto(customer_url)
    assert agent.locator("[data-testid=not-certified]").inner_text() == "Not certified"
    agent.click("[data-testid=start-application]")
    agent.wait_for_url(f"{base}/certification/apply/?customer={case.customer.pk}")
    assert "/apply/" in agent.locator("#id_applicant_link").input_value()

    # when: they enter valid details with both sides of the ID card and submit
    _fill_identity(agent, case, "11010519491231002X")
    agent.click("[data-testid=submit]")

    # then: the application waits for review, every pre-check passed
    application = Application.objects.get(customer=case.customer)
    agent.wait_for_url(f"{base}/certification/applications/{application.pk}/")
    checks = agent.locator("[data-testid=prechecks]").inner_text()
    assert "The resident ID number is well formed and its check digit is right." in checks
    assert "The birth date entered (1949-12-31) matches the ID number." in checks
    assert agent.locator("[data-testid=application-status]").inner_text() == "Waiting for review"
    assert agent.locator("[data-testid=ready]").count() == 1
    assert agent.locator("[data-testid=approve]").count() == 0  # agents do not decide

    # when: an operations manager opens it from the queue and approves it
    manager = open_as("manager-chen")
    manager.click('nav.patron-navbar a.nav-link:text-is("Certification")')
    manager.wait_for_url(f"{base}/certification/")
    row = manager.locator(f"[data-testid=application-{application.pk}]")
    assert "Ready to decide" in row.inner_text()
    row.locator("td >> nth=0 >> a").click()
    manager.wait_for_url(f"{base}/certification/applications/{application.pk}/")
    assert manager.locator("[data-testid=field-id_number]").inner_text() == "11010519491231002X"
    manager.fill("#id_reason", "证件与本人一致")
    manager.click("[data-testid=approve]")
    manager.wait_for_url(f"{base}/certification/applications/{application.pk}/")

    # then: approved, and the customer page shows the level
    assert manager.locator("[data-testid=application-status]").inner_text() == "Approved"
    assert manager.locator("[data-testid=decision-reason]").inner_text() == "证件与本人一致"
    certification = Certification.objects.get(customer=case.customer)
    assert certification.level.code == "identity"
    agent.goto(customer_url)
    assert agent.locator("[data-testid=level-badge]").inner_text() == "Identity verified"
    # the page tells the day in the shop's time zone (Shanghai is a day ahead after 16:00 UTC)
    until = f"{timezone.localtime(certification.expires_at):%Y-%m-%d}"
    assert until in agent.locator("[data-testid=certified-until]").inner_text()


def test_a_mistyped_id_number_is_explained_at_once(
    live_server: Any, open_as: Any, case: Case
) -> None:
    base = live_server.url

    # given
    agent = open_as("agent-zhang")
    agent.goto(f"{base}/certification/apply/?customer={case.customer.pk}")

    # when: the last character of the ID number is mistyped
    _fill_identity(agent, case, "11010519491231002Y")
    agent.click("[data-testid=submit]")

    # then: the page says which character is wrong, and keeps what was typed
    failed = agent.locator("[data-testid=failed-checks]").inner_text()
    assert "The resident ID number is mistyped: its last character should be X, not Y." in failed
    assert agent.locator("#id_id_number").input_value() == "11010519491231002Y"
    assert Application.objects.get(customer=case.customer).status == "needs_info"

    # and once corrected it goes to the reviewers, with the documents already uploaded
    assert "front.png" in agent.locator("[data-testid=uploaded]").inner_text()
    agent.fill("#id_id_number", "11010519491231002X")
    agent.click("[data-testid=submit]")
    application = Application.objects.get(customer=case.customer)
    agent.wait_for_url(f"{base}/certification/applications/{application.pk}/")
    assert agent.locator("[data-testid=application-status]").inner_text() == "Waiting for review"
    assert application.documents.count() == 2
