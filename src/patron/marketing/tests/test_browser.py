"""The marketer's flow in a real browser (Debian's Chromium through Playwright), through the
pages only: build a segment with the rule builder (preview its size, save it), plan a campaign
on it, launch it, and read its evaluation — treatment against holdout with the uplift's 95 %
interval. Then the same for retention: create a win-back programme from its form, run it, and
read who entered and why.

The customers bought before the test (some of them within the campaign's period, which began
two weeks ago), so the evaluation has real figures to show.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.conftest import PASSWORD, make_customer, make_order, make_user
from patron.customer.models import Customer
from patron.marketing.models import Campaign, CampaignMember, Segment, WinbackEnrolment
from patron.marketing.tests.factories import consent, score
from patron.outbox.models import Message
from patron.web.tests.browsing import BROWSER_MARKS, browser, open_as

__all__ = ["browser", "open_as"]  # shared fixtures (patron.web.tests.browsing)

pytestmark = BROWSER_MARKS

PROVINCE = "浙江省"
CUSTOMERS = 40


@pytest.fixture
def shop(transactional_db: None) -> list[Customer]:
    """40 customers in 浙江省 with marketing consent on SMS, every third of whom ordered last
    week; 5 customers elsewhere; the marketer who will work on them."""
    make_user(Role.MARKETER, username="marketer-li", password=PASSWORD)
    paid = timezone.now() - timedelta(days=7)
    people = []
    for i in range(CUSTOMERS):
        person = make_customer(name=f"浙江客户{i}", province=PROVINCE, phone=f"1380000{i:04d}")
        consent(person, "marketing", "sms", True, 60)
        score(person, churn_probability=0.8 if i % 2 else 0.2)
        if i % 3 == 0:
            make_order(person, external_id=f"SO-B{i}", placed_at=paid, total="199.00", paid_at=paid)
        people.append(person)
    for i in range(5):
        make_customer(name=f"上海客户{i}", province="上海市")
    return people


def _local(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_build_a_segment_launch_a_campaign_and_read_its_evaluation(
    shop: list[Customer], open_as: Any, live_server: Any
) -> None:
    base = live_server.url
    page = open_as("marketer-li")

    # given: the marketer builds a segment and previews it
    page.goto(f"{base}/marketing/segments/")
    builder = page.locator("[data-testid=segment-builder]")
    builder.locator("select[name=field_0]").select_option("province")
    builder.locator("select[name=op_0]").select_option("eq")
    builder.locator("input[name=value_0]").fill(PROVINCE)
    page.click("[data-testid=preview-button]")
    assert page.locator("[data-testid=preview-count]").inner_text() == str(CUSTOMERS)

    # when: they save it
    page.locator("input[name=name]").fill("浙江老客")
    page.click("[data-testid=save-button]")
    page.wait_for_selector("[data-testid=rule-text]")  # the segment's own page
    segment = Segment.objects.get(name="浙江老客")
    assert re.search(rf"/marketing/segments/{segment.pk}/(#.*)?$", page.url)
    assert page.locator("[data-testid=rule-text]").inner_text() == f"Province is {PROVINCE}"
    assert page.locator("[data-testid=member-count]").inner_text() == str(CUSTOMERS)

    # and plan a campaign on it: repurchase, a period that began two weeks ago, 25 % held out
    page.goto(f"{base}/marketing/campaigns/")
    form = page.locator("[data-testid=campaign-form]")
    form.locator("input[name=name]").fill("浙江回购")
    form.locator("select[name=goal_metric]").select_option("repurchase_rate")
    form.locator("select[name=segment_id]").select_option(str(segment.pk))
    now = timezone.now()
    form.locator("input[name=period_start]").fill(_local(now - timedelta(days=14)))
    form.locator("input[name=period_end]").fill(_local(now + timedelta(days=14)))
    form.locator("input[name=holdout_percent]").fill("25")
    form.locator("select[name=offer_kind]").select_option("message")
    form.locator("input[name=message_title]").fill("新品上市")
    form.locator("textarea[name=message_text]").fill("秋季新品已上架，欢迎回来看看")
    form.locator("button").click()
    page.wait_for_selector("[data-testid=campaign-status]")  # the campaign's own page
    campaign = Campaign.objects.get(name="浙江回购")
    assert re.search(rf"/marketing/campaigns/{campaign.pk}/(#.*)?$", page.url)
    assert page.locator("[data-testid=campaign-status]").inner_text() == "草稿 Draft"

    # and launch it
    page.click("[data-testid=launch]")
    page.wait_for_selector("[data-testid=campaign-status]:has-text('Running')")

    # then: the audience was frozen and split, the treated messaged, the holdout not
    members = CampaignMember.objects.filter(campaign=campaign)
    treated = members.filter(group="treatment")
    assert members.count() == CUSTOMERS
    assert members.filter(group="holdout").count() == 10  # 40 × 25 %
    assert Message.objects.filter(customer_id__in=treated.values("customer_id")).count() == 30

    # and the evaluation reads: each group's repurchase rate, the uplift and its interval
    bought = {p.pk for i, p in enumerate(shop) if i % 3 == 0}
    for group, testid in (("treatment", "metric-treatment"), ("holdout", "metric-holdout")):
        ids = set(members.filter(group=group).values_list("customer_id", flat=True))
        expected = f"{len(ids & bought) / len(ids) * 100:.1f} %"
        assert page.locator(f"[data-testid={testid}]").inner_text() == expected
    uplift = page.locator("[data-testid=uplift]").inner_text()
    assert "Uplift" in uplift and "95 % interval" in uplift and "percentage points" in uplift
    assert page.locator("[data-testid=significant]").inner_text() in (
        "significant",
        "not significant",
    )
    page.wait_for_selector("[data-testid=campaign-chart] svg")  # ECharts drew it
    notes = page.locator("[data-testid=evaluation-notes]").inner_text()
    assert "Intention to treat: all 30 treatment members count" in notes
    rows = page.locator("[data-testid=group-table] tbody tr").all_inner_texts()
    assert any(row.startswith("Members") and "30" in row and "10" in row for row in rows)


def test_create_a_win_back_programme_run_it_and_see_who_entered_and_why(
    shop: list[Customer], open_as: Any, live_server: Any
) -> None:
    base = live_server.url
    page = open_as("marketer-li")

    # given: the marketer fills in the win-back form
    page.goto(f"{base}/marketing/winback/")
    form = page.locator("[data-testid=winback-form]")
    form.locator("input[name=name]").fill("流失挽回")
    form.locator("[data-testid=winback-threshold]").fill("0.6")
    form.locator("input[name=holdout_percent]").fill("20")
    form.locator("select[name=offer_kind]").select_option("points")
    form.locator("input[name=points]").fill("300")
    form.locator("input[name=message_title]").fill("好久不见")
    form.locator("textarea[name=message_text]").fill("送您{points}积分，看看{top_category}")
    page.click("[data-testid=winback-save]")
    page.wait_for_selector("[data-testid=winback-status]:has-text('Active')")

    # when: they run it now
    page.click("[data-testid=run]")
    page.wait_for_selector("[data-testid=winback-runs] tbody tr td:has-text('20')")

    # then: the 20 customers at risk entered, each with the offer and the reason shown
    entries = WinbackEnrolment.objects.all()
    assert entries.count() == CUSTOMERS // 2
    assert set(entries.values_list("churn_probability", flat=True)) == {0.8}
    table = page.locator("[data-testid=winback-entries]").inner_text()
    assert "the programme has one offer for everyone → 300 points" in table
    treated = entries.filter(group="treatment")
    assert Message.objects.count() == treated.count() > 0
    assert set(treated.values_list("outcome", flat=True)) == {"messaged"}
    notes = page.locator("[data-testid=winback-notes]").inner_text()
    assert "20 entries are still within their 60-day window" in notes
    assert WinbackEnrolment.objects.filter(group="holdout", message__isnull=False).count() == 0
    assert Decimal(str(entries.first().basis["threshold"])) == Decimal("0.600")  # type: ignore[union-attr]
