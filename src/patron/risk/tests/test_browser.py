"""Risk control in a real browser (Debian's Chromium through Playwright): an analyst restricts
a customer from an alert, a service agent files the customer's appeal on the customer page, and
a second analyst overturns it, after which the checkout policy no longer holds the restriction.

Each person works in a browser context of their own, as they would on their own machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.commerce.models import ReturnRequest
from patron.conftest import PASSWORD, make_customer_file, make_user
from patron.customer.models import Customer
from patron.risk import detect
from patron.risk.models import Alert, Appeal, Restriction
from patron.web.tests.browsing import BROWSER_MARKS, browser, open_as

__all__ = ["browser", "open_as"]  # shared fixtures (patron.web.tests.browsing)

pytestmark = BROWSER_MARKS

REASON = "退货率 60%，远高于店铺中位数"
STATEMENT = "商品确有质量问题，退货都有质检报告"


@dataclass(frozen=True)
class RiskCase:
    customer: Customer
    alert: Alert


@pytest.fixture
def risk_case(transactional_db: None, lake: Path) -> RiskCase:
    for username, role in (
        ("analyst-li", Role.RISK_ANALYST),
        ("analyst-wang", Role.RISK_ANALYST),
        ("agent-zhang", Role.SERVICE_AGENT),
    ):
        make_user(role, username=username, password=PASSWORD)
    customer = make_customer_file().customer
    detect.rules_seed()
    returned = ReturnRequest.objects.get(order__customer=customer)
    now = timezone.now()
    alert = Alert.objects.create(
        customer=customer,
        source="rule",
        rule_code="RET-RATE",
        severity="high",
        value=0.6,
        threshold=0.5,
        volume=5,
        evidence=[{"type": "return", "id": returned.pk}],
        suggested_action="order_review",
        created_at=now,
        updated_at=now,
    )
    return RiskCase(customer=customer, alert=alert)


def test_alert_restriction_appeal_overturned(
    live_server: Any, open_as: Any, risk_case: RiskCase
) -> None:
    base = live_server.url
    customer_url = f"{base}/customers/{risk_case.customer.pk}/"

    # given: an analyst restricts the customer from the alert in the queue
    analyst = open_as("analyst-li")
    analyst.click('nav.patron-navbar a.nav-link:text-is("Risk")')
    analyst.wait_for_url(f"{base}/risk/")
    analyst.click(f"[data-testid=alert-{risk_case.alert.pk}] td >> nth=0 >> a")
    analyst.wait_for_url(f"{base}/risk/alerts/{risk_case.alert.pk}/")
    assert analyst.locator("#id_kind").input_value() == "order_review"  # the suggestion
    analyst.fill("#id_restrict_reason", REASON)
    analyst.click("[data-testid=restrict-submit]")
    analyst.wait_for_url(f"{base}/risk/alerts/{risk_case.alert.pk}/")
    assert analyst.locator("[data-testid=alert-status]").inner_text() == "Restricted"
    restriction = Restriction.objects.get(customer=risk_case.customer)
    analyst.goto(customer_url)
    reasons = analyst.locator("[data-testid=checkout-reasons]").inner_text()
    assert f"Orders are checked by staff: {REASON}" in reasons

    # when: a service agent files the customer's appeal on the customer page
    agent = open_as("agent-zhang")
    agent.goto(customer_url)
    card = agent.locator(f"[data-testid=restriction-{restriction.pk}]")
    assert REASON in card.inner_text()
    assert agent.locator(f"[data-testid=lift-{restriction.pk}]").count() == 0
    card.locator("summary", has_text="File an appeal for the customer").click()
    agent.fill(f"#id_statement_{restriction.pk}", STATEMENT)
    card.locator("button[type=submit]", has_text="File appeal").click()
    agent.wait_for_url(f"{customer_url}#risk")
    appeal = Appeal.objects.get()
    assert f"Appeal #{appeal.pk} filed" in agent.locator("main .alert-success").inner_text()
    assert agent.locator("[data-testid=open-appeal]").inner_text() == (
        f"Appeal #{appeal.pk} is open"
    )

    # and the analyst who restricted cannot review it: the page says why
    analyst.goto(f"{base}/risk/appeals/{appeal.pk}/")
    analyst.click("[data-testid=start-review]")
    refusal = analyst.locator("[data-testid=form-error]").inner_text()
    assert "You cannot decide this appeal." in refusal
    assert "another analyst must review it" in refusal

    # then: a second analyst overturns it from the appeal queue
    reviewer = open_as("analyst-wang")
    reviewer.goto(f"{base}/risk/appeals/")
    reviewer.click(f"[data-testid=appeal-{appeal.pk}] td >> nth=0 >> a")
    reviewer.wait_for_url(f"{base}/risk/appeals/{appeal.pk}/")
    assert reviewer.locator("[data-testid=statement]").inner_text() == STATEMENT
    assert reviewer.locator("[data-testid=target-reason]").inner_text() == REASON
    reviewer.fill("#id_reason", "质检报告证实质量问题，限制撤销")
    reviewer.click("[data-testid=overturn]")
    reviewer.wait_for_url(f"{base}/risk/appeals/{appeal.pk}/")
    assert reviewer.locator("[data-testid=appeal-status]").inner_text() == "Overturned"

    # and the checkout policy on the customer page no longer holds the restriction
    agent.goto(customer_url)
    policy = agent.locator("[data-testid=checkout-policy]").inner_text()
    assert REASON not in policy
    assert "Orders are checked by staff: " not in policy
    assert agent.locator("[data-testid=order-review]").inner_text() == "no"
    assert agent.locator("[data-testid=restrictions-active]").inner_text() == (
        "No restriction in force."
    )
