"""The correlation analysis on a small shop whose loyal customers come back: the run, the
page in plain words with the warning, the API, and who may see and run it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import make_customer, make_order, make_user
from patron.insight.correlations import correlations_run

pytestmark = pytest.mark.django_db(transaction=True)  # the extract reads through ADBC

AS_OF = date(2026, 11, 1)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _shop() -> None:
    """80 buyers before the cut-off (2026-05-05); the 40 who bought often come back after it."""
    cutoff = datetime(2026, 5, 5, tzinfo=SHANGHAI)
    for number in range(80):
        loyal = number < 40
        customer = make_customer(name=f"客户{number}")
        for k in range(5 if loyal else 1):
            at = cutoff - timedelta(days=30 + 20 * k + number % 7)
            make_order(
                customer, external_id=f"O{number}-{k}", placed_at=at, paid_at=at, total="120.00"
            )
        if loyal:
            at = cutoff + timedelta(days=40 + number % 30)
            make_order(
                customer, external_id=f"O{number}-again", placed_at=at, paid_at=at, total="99.00"
            )


def test_the_run_finds_that_frequent_buyers_come_back() -> None:
    _shop()
    data = correlations_run(as_of=AS_OF)
    repurchase = next(s for s in data["studies"] if s["outcome"] == "repurchase")
    assert (repurchase["customers"], repurchase["positive"]) == (80, 40)
    top = {f["feature"]: f for f in repurchase["factors"]}
    assert top["orders"]["rho"] > 0.8 and top["orders"]["is_clear"]
    satisfaction = next(s for s in data["studies"] if s["outcome"] == "satisfaction")
    assert satisfaction["customers"] == 0  # no rated tickets: nothing claimed


def test_the_page_says_it_in_plain_words_with_the_warning() -> None:
    _shop()
    manager = Client()
    manager.force_login(make_user(Role.OPERATIONS_MANAGER))
    assert (
        'data-testid="no-correlations"' in manager.get("/insights/correlations/").content.decode()
    )
    # when the manager runs it from the page
    response = manager.post("/insights/correlations/")
    assert response.status_code == 302
    html = manager.get(
        "/insights/correlations/", headers={"Accept-Language": "en"}
    ).content.decode()
    assert 'data-testid="not-cause"' in html and "Correlation is not cause" in html
    assert 'data-testid="factor-orders"' in html
    assert "Customers with a higher orders more often buy again within the window" in html


@pytest.mark.parametrize(
    ("role", "see", "run"),
    [
        (Role.OPERATIONS_MANAGER, 200, 200),
        (Role.ANALYST, 200, 403),
        (Role.SERVICE_AGENT, 403, 403),
    ],
)
def test_who_may_see_and_run_the_analysis(role: Role, see: int, run: int) -> None:
    _shop()
    client = Client()
    client.force_login(make_user(role))
    assert client.get("/api/insights/correlations").status_code == (404 if see == 200 else see)
    correlations_run(as_of=AS_OF)
    assert client.get("/api/insights/correlations").status_code == see
    assert client.get("/insights/correlations/").status_code == see
    assert client.post("/api/insights/correlations").status_code == run
