"""The risk pages: who may open them, what each form does, and how refusals are shown."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.commerce.models import ReturnRequest, Review
from patron.conftest import NO_ROLE, CustomerFile, make_user
from patron.customer.models import Customer
from patron.risk import detect, services
from patron.risk.models import (
    Alert,
    Appeal,
    BlacklistEntry,
    CreditOverride,
    Restriction,
    RiskPolicy,
    RiskRule,
)
from patron.risk.services import RestrictionRequest

pytestmark = pytest.mark.django_db

ADMINISTRATOR = Role.ADMINISTRATOR.value
OPERATIONS_MANAGER = Role.OPERATIONS_MANAGER.value
SERVICE_AGENT = Role.SERVICE_AGENT.value
RISK_ANALYST = Role.RISK_ANALYST.value
AUDITOR = Role.AUDITOR.value
ROLES = [role.value for role in Role] + [NO_ROLE]

#: Written out, not derived from the roles: a change of rights must fail a line here.
MAY_VIEW_RISK = {ADMINISTRATOR, OPERATIONS_MANAGER, RISK_ANALYST, AUDITOR}
MAY_VIEW_APPEALS = MAY_VIEW_RISK | {SERVICE_AGENT}

Ids = dict[str, int]
PAGES: dict[str, tuple[Callable[[Ids], str], set[str]]] = {
    "alert queue": (lambda ids: "/risk/", MAY_VIEW_RISK),
    "alert queue, all": (lambda ids: "/risk/?status=all&severity=high&source=rule", MAY_VIEW_RISK),
    "one alert": (lambda ids: f"/risk/alerts/{ids['alert']}/", MAY_VIEW_RISK),
    "blacklist": (lambda ids: "/risk/blacklist/", MAY_VIEW_RISK),
    "appeals": (lambda ids: "/risk/appeals/", MAY_VIEW_APPEALS),
    "one appeal": (lambda ids: f"/risk/appeals/{ids['appeal']}/", MAY_VIEW_APPEALS),
    "rules": (lambda ids: "/risk/rules/", MAY_VIEW_RISK),
}


def _alert(customer: Customer, code: str = "RET-RATE", **fields: Any) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        customer=customer,
        source=fields.pop("source", "rule"),
        rule_code=code,
        severity=fields.pop("severity", "high"),
        value=fields.pop("value", 0.6),
        threshold=fields.pop("threshold", 0.5),
        volume=5,
        evidence=fields.pop("evidence", []),
        suggested_action=fields.pop("suggested_action", "order_review"),
        created_at=now,
        updated_at=now,
        **fields,
    )


def client_for(user: User) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(user)
    return client


def text_of(html: str) -> str:
    without_tags = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", without_tags).strip()


@pytest.fixture
def analyst() -> User:
    return make_user(Role.RISK_ANALYST, username="analyst-li")


@pytest.fixture
def second() -> User:
    return make_user(Role.RISK_ANALYST, username="analyst-wang")


@pytest.fixture
def agent() -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-zhang")


@pytest.fixture
def customer(customer_file: CustomerFile, lake: Path) -> Customer:
    detect.rules_seed()
    return customer_file.customer


def _restrict(user: User, customer: Customer, kind: str = "order_review", **kw: Any) -> Restriction:
    return services.restriction_apply(
        user=user,
        customer_id=customer.pk,
        request=RestrictionRequest(
            kind=kind, reason="退货率 60%，远高于店铺中位数", scope=kw.pop("scope", {})
        ),
        **kw,
    )


# --- who may open what --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(PAGES))
def test_pages(customer: Customer, analyst: User, role: str, action: str) -> None:
    # given
    alert = _alert(customer)
    restriction = _restrict(analyst, customer)
    appeal = services.appeal_file(
        user=analyst,
        customer_id=customer.pk,
        statement="我没有恶意退货",
        restriction_id=restriction.pk,
    )
    url, allowed = PAGES[action]

    # when
    response = client_for(make_user(role)).get(url({"alert": alert.pk, "appeal": appeal.pk}))

    # then
    assert response.status_code == (200 if role in allowed else 403)
    if response.status_code == 403:
        assert "You do not have permission to see this page" in response.content.decode()


@pytest.mark.parametrize("action", list(PAGES))
def test_pages_send_anonymous_users_to_login(action: str, db: None) -> None:
    # when
    response = Client().get(PAGES[action][0]({"alert": 1, "appeal": 1}))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_the_nav_shows_risk_to_analysts_only(analyst: User, agent: User) -> None:
    # when
    analyst_page = client_for(analyst).get("/customers/").content.decode()
    agent_page = client_for(agent).get("/customers/").content.decode()

    # then
    assert 'href="/risk/"' in analyst_page
    assert 'href="/risk/"' not in agent_page


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_puts_the_most_severe_first_and_summarises(
    customer: Customer, customer_file: CustomerFile, analyst: User
) -> None:
    # given
    low = _alert(customer, code="CXL-RATE", severity="low", suggested_action="watch")
    high = _alert(customer_file.others[0], severity="high", value=0.75)
    _alert(customer_file.others[1], code="REV-BURST", severity="medium", status="dismissed")
    _restrict(analyst, customer)

    # when
    response = client_for(analyst).get("/risk/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    rows = re.findall(r'data-testid="alert-(\d+)"', html)
    assert rows == [str(high.pk), str(low.pk)]
    text = text_of(html)
    assert "Live alerts · High 1 Live alerts · Medium 0 Live alerts · Low 1" in text
    assert "Restrictions in force 1" in text
    assert f"{high.pk} High {customer_file.others[0].name} Frequent returns RET-RATE" in text
    assert "return rate 75% ≥ 50% 5 Review orders Open" in text


def test_the_queue_filters_by_status_and_partial_for_htmx(
    customer: Customer, analyst: User
) -> None:
    # given
    _alert(customer)
    dismissed = _alert(customer, code="REV-BURST", status="dismissed", severity="medium")

    # when
    response = client_for(analyst).get(
        "/risk/", {"status": "dismissed"}, headers={"HX-Request": "true"}
    )

    # then
    html = response.content.decode()
    assert re.findall(r'data-testid="alert-(\d+)"', html) == [str(dismissed.pk)]
    assert "<html" not in html  # only the results


def test_an_unknown_status_is_a_422_page(analyst: User) -> None:
    # when
    response = client_for(analyst).get("/risk/", {"status": "maybe"})

    # then
    assert response.status_code == 422
    assert "status: one of live, all" in response.content.decode()


# --- one alert ----------------------------------------------------------------------------------


def test_the_alert_page_links_its_evidence(
    customer: Customer, customer_file: CustomerFile, analyst: User
) -> None:
    # given
    returned = ReturnRequest.objects.get(order__customer=customer)
    review = Review.objects.filter(customer=customer).first()
    assert review is not None
    order = customer_file.orders[0]
    alert = _alert(
        customer,
        evidence=[
            {"type": "return", "id": returned.pk},
            {"type": "review", "id": review.pk},
            {"type": "order", "id": order.pk},
            {"type": "customer", "id": customer_file.others[0].pk},
        ],
    )

    # when
    html = client_for(analyst).get(f"/risk/alerts/{alert.pk}/").content.decode()

    # then
    assert f'href="/customers/{customer.pk}/#return-{returned.pk}"' in html
    assert f'href="/customers/{customer.pk}/#review-{review.pk}"' in html
    assert f'href="/customers/{customer.pk}/orders/?page=1#order-{order.pk}-details"' in html
    assert f'href="/customers/{customer_file.others[0].pk}/"' in html
    assert "SO-0002 · Return" in text_of(html)
    assert 'value="order_review" selected' in html  # the suggested action is prefilled


def test_a_model_alert_shows_the_unusual_features(customer: Customer, analyst: User) -> None:
    # given
    alert = _alert(
        customer,
        code="model:isolation_forest",
        source="model",
        threshold=None,
        value=0.71,
        suggested_action="watch",
        reasons=[{"feature": "return_rate", "value": 0.8, "median": 0.05, "z": 6.2}],
    )

    # when
    html = client_for(analyst).get(f"/risk/alerts/{alert.pk}/").content.decode()

    # then
    assert "Unusual customer (isolation forest)" in html
    table = text_of(html.split('data-testid="model-reasons"')[1].split("</table>")[0])
    assert "+6.2" in table
    assert "Feature This customer Median customer z" in table


def test_dismissing_an_alert(customer: Customer, analyst: User) -> None:
    # given
    alert = _alert(customer)

    # when
    response = client_for(analyst).post(
        f"/risk/alerts/{alert.pk}/", {"action": "dismiss", "reason": "误报：已核实"}, follow=True
    )

    # then
    assert response.status_code == 200
    alert.refresh_from_db()
    assert (alert.status, alert.decided_by, alert.decision_reason) == (
        "dismissed",
        analyst,
        "误报：已核实",
    )
    assert f"Alert #{alert.pk} dismissed." in response.content.decode()


def test_restricting_from_an_alert(customer: Customer, analyst: User) -> None:
    # given
    alert = _alert(customer, suggested_action="credit_limit")

    # when
    response = client_for(analyst).post(
        f"/risk/alerts/{alert.pk}/",
        {
            "action": "restrict",
            "kind": "credit_limit",
            "limit": "300",
            "methods": ["cod"],
            "expires_at": "2099-01-01T00:00",
            "reason": "退货率 60%",
        },
    )

    # then
    assert response.status_code == 302
    restriction = Restriction.objects.get()
    assert (restriction.kind, restriction.scope, restriction.alert_id) == (
        "credit_limit",
        {"limit": "300.00"},
        alert.pk,
    )
    assert restriction.expires_at is not None
    assert timezone.localtime(restriction.expires_at).isoformat() == "2099-01-01T00:00:00+08:00"
    alert.refresh_from_db()
    assert alert.status == "restricted"


def test_an_invalid_restriction_is_shown_with_the_field(customer: Customer, analyst: User) -> None:
    # given
    alert = _alert(customer)

    # when
    response = client_for(analyst).post(
        f"/risk/alerts/{alert.pk}/",
        {"action": "restrict", "kind": "credit_limit", "limit": "lots", "reason": "太多退货"},
    )

    # then
    assert response.status_code == 422
    html = response.content.decode()
    assert "restriction.scope.limit: expected an amount" in html
    assert 'name="limit" value="lots"' in html
    assert re.search(r'id="id_limit"[^>]*is-invalid', html)
    assert "太多退货</textarea>" in html
    assert not Restriction.objects.exists()
    alert.refresh_from_db()
    assert alert.status == "open"


def test_a_missing_reason_is_a_422_next_to_the_form(customer: Customer, analyst: User) -> None:
    # given
    alert = _alert(customer)

    # when
    response = client_for(analyst).post(
        f"/risk/alerts/{alert.pk}/", {"action": "watch", "reason": " "}
    )

    # then
    assert response.status_code == 422
    assert "watch alert: a reason is required" in response.content.decode()
    alert.refresh_from_db()
    assert alert.status == "open"


def test_deciding_a_decided_alert_is_a_409_with_the_message(
    customer: Customer, analyst: User
) -> None:
    # given
    alert = _alert(customer, status="dismissed")

    # when
    response = client_for(analyst).post(
        f"/risk/alerts/{alert.pk}/", {"action": "restrict", "kind": "coupon_ban", "reason": "x"}
    )

    # then
    assert response.status_code == 409
    assert "alert is dismissed: cannot restrict" in response.content.decode()
    assert not Restriction.objects.exists()


@pytest.mark.parametrize("role", [SERVICE_AGENT, AUDITOR, OPERATIONS_MANAGER])
def test_only_analysts_see_and_post_the_decision_forms(customer: Customer, role: str) -> None:
    # given
    alert = _alert(customer)
    client = client_for(make_user(role))

    # when
    page = client.get(f"/risk/alerts/{alert.pk}/")
    post = client.post(f"/risk/alerts/{alert.pk}/", {"action": "dismiss", "reason": "x"})

    # then
    if page.status_code == 200:
        assert 'data-testid="restrict-form"' not in page.content.decode()
    assert post.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"


# --- blacklist ----------------------------------------------------------------------------------


def test_blacklisting_is_proposed_then_approved_by_a_second_analyst(
    customer: Customer, analyst: User, second: User
) -> None:
    # given
    alert = _alert(customer, suggested_action="blacklist")

    # when
    proposed = client_for(analyst).post(
        f"/risk/alerts/{alert.pk}/", {"action": "blacklist", "reason": "团伙薅券"}
    )
    entry = BlacklistEntry.objects.get()
    own = client_for(analyst).post(
        "/risk/blacklist/", {"action": "approve", "entry": entry.pk, "reason": "同意"}
    )
    approved = client_for(second).post(
        "/risk/blacklist/", {"action": "approve", "entry": entry.pk, "reason": "证据充分"}
    )

    # then
    assert proposed.status_code == 302
    assert own.status_code == 403
    assert "you proposed this blacklisting: another analyst must approve it" in (
        own.content.decode()
    )
    assert approved.status_code == 302
    entry.refresh_from_db()
    assert entry.status == "active"
    assert [a["username"] for a in entry.approvals] == ["analyst-li", "analyst-wang"]
    alert.refresh_from_db()
    assert alert.status == "escalated"
    page = text_of(client_for(second).get("/risk/blacklist/?status=active").content.decode())
    assert "Proposed by analyst-li" in page
    assert "Approvals 2 of 2 analyst-li" in page
    assert "analyst-wang" in page


def test_rejecting_and_lifting_on_the_blacklist_page(
    customer: Customer, customer_file: CustomerFile, analyst: User, second: User
) -> None:
    # given
    proposal = services.blacklist_propose(user=analyst, customer_id=customer.pk, reason="可疑")
    other = services.blacklist_propose(
        user=analyst, customer_id=customer_file.others[0].pk, reason="拒付三次"
    )
    services.blacklist_approve(user=second, entry_id=other.pk, reason="同意")

    # when
    rejected = client_for(second).post(
        "/risk/blacklist/", {"action": "reject", "entry": proposal.pk, "reason": "证据不足"}
    )
    lifted = client_for(second).post(
        "/risk/blacklist/", {"action": "lift", "entry": other.pk, "reason": "客户已还款"}
    )

    # then
    assert (rejected.status_code, lifted.status_code) == (302, 302)
    proposal.refresh_from_db()
    other.refresh_from_db()
    assert (proposal.status, other.status) == ("rejected", "lifted")


# --- appeals ------------------------------------------------------------------------------------


def test_an_agent_files_an_appeal_and_another_analyst_overturns_it(
    customer: Customer, analyst: User, second: User, agent: User
) -> None:
    # given
    restriction = _restrict(analyst, customer, alert_id=_alert(customer).pk)

    # when: the agent files from the customer page
    filed = client_for(agent).post(
        f"/risk/customers/{customer.pk}/appeals/",
        {"restriction": restriction.pk, "statement": "我是正常退货，商品有质量问题"},
    )
    appeal = Appeal.objects.get()
    refused = client_for(analyst).post(
        f"/risk/appeals/{appeal.pk}/", {"action": "overturn", "reason": "同意"}
    )
    overturned = client_for(second).post(
        f"/risk/appeals/{appeal.pk}/", {"action": "overturn", "reason": "质检报告证实质量问题"}
    )

    # then
    assert filed.status_code == 302
    assert filed["Location"] == f"/customers/{customer.pk}/#risk"
    assert (appeal.filed_by, appeal.channel, appeal.restriction_id) == (
        agent,
        "staff",
        restriction.pk,
    )
    assert refused.status_code == 403
    refusal = text_of(refused.content.decode())
    assert "You cannot decide this appeal." in refusal
    assert "you took part in the decision under appeal: another analyst must review it" in refusal
    assert "我是正常退货，商品有质量问题" in refusal  # the page, not a bare 403
    assert overturned.status_code == 302
    appeal.refresh_from_db()
    restriction.refresh_from_db()
    assert (appeal.status, appeal.reviewer) == ("overturned", second)
    assert restriction.lifted_at is not None and restriction.lifted_by == second


def test_the_appeal_list_puts_the_due_first_and_marks_the_overdue(
    customer: Customer, customer_file: CustomerFile, analyst: User
) -> None:
    # given
    later = services.appeal_file(
        user=analyst,
        customer_id=customer.pk,
        statement="a",
        restriction_id=_restrict(analyst, customer).pk,
    )
    overdue = services.appeal_file(
        user=analyst,
        customer_id=customer_file.others[0].pk,
        statement="b",
        restriction_id=_restrict(analyst, customer_file.others[0], kind="coupon_ban").pk,
    )
    Appeal.objects.filter(pk=overdue.pk).update(due_at=timezone.now() - timedelta(hours=1))

    # when
    html = client_for(analyst).get("/risk/appeals/").content.decode()

    # then
    assert re.findall(r'data-testid="appeal-(\d+)"', html) == [str(overdue.pk), str(later.pk)]
    assert html.count('data-testid="overdue"') == 1
    assert "No coupons" in text_of(html)


def test_starting_a_review_and_an_empty_reason(
    customer: Customer, analyst: User, second: User
) -> None:
    # given
    restriction = _restrict(analyst, customer)
    appeal = services.appeal_file(
        user=analyst, customer_id=customer.pk, statement="x", restriction_id=restriction.pk
    )
    client = client_for(second)

    # when
    started = client.post(f"/risk/appeals/{appeal.pk}/", {"action": "start_review"})
    empty = client.post(f"/risk/appeals/{appeal.pk}/", {"action": "uphold", "reason": ""})

    # then
    assert started.status_code == 302
    assert empty.status_code == 422
    assert "appeal decision: a reason is required" in empty.content.decode()
    appeal.refresh_from_db()
    assert (appeal.status, appeal.reviewer) == ("in_review", second)


# --- the customer page --------------------------------------------------------------------------


def test_an_agent_sees_restrictions_and_reasons_but_cannot_lift(
    customer: Customer, analyst: User, agent: User
) -> None:
    # given
    restriction = _restrict(
        analyst, customer, kind="payment_method", scope={"methods": ["cod", "pay_later"]}
    )
    client = client_for(agent)

    # when
    html = client.get(f"/customers/{customer.pk}/").content.decode()
    lift = client.post(f"/risk/restrictions/{restriction.pk}/lift/", {"reason": "客户投诉"})

    # then
    section = text_of(html.split('data-testid="risk"')[1].split("</section>")[0])
    assert "Payment methods limited" in section
    assert "Not offered: Cash on delivery, Pay later" in section
    assert "Reason: 退货率 60%，远高于店铺中位数" in section
    assert (
        "Payment methods cash on delivery, pay later are not offered: 退货率 60%，远高于店铺中位数"
        in section
    )
    assert "File an appeal for the customer" in section
    assert "Lift the restriction" not in html
    assert "Approve" not in section
    assert "Live alerts" not in section  # agents do not see the alert queue
    assert lift.status_code == 403
    restriction.refresh_from_db()
    assert restriction.lifted_at is None


def test_an_analyst_lifts_a_restriction_on_the_customer_page(
    customer: Customer, analyst: User
) -> None:
    # given
    restriction = _restrict(analyst, customer)
    _alert(customer, code="REV-BURST")
    client = client_for(analyst)

    # when
    page = text_of(client.get(f"/customers/{customer.pk}/").content.decode())
    empty = client.post(f"/risk/restrictions/{restriction.pk}/lift/", {"reason": ""})
    lifted = client.post(f"/risk/restrictions/{restriction.pk}/lift/", {"reason": "已复核"})

    # then
    assert "Live alerts High" in page
    assert empty.status_code == 422
    assert "lifting a restriction: a reason is required" in empty.content.decode()
    assert lifted.status_code == 302
    restriction.refresh_from_db()
    assert restriction.lift_reason == "已复核"
    after = text_of(client.get(f"/customers/{customer.pk}/").content.decode())
    assert "No restriction in force." in after
    assert "1 past restriction" in after


def test_an_appeal_without_a_statement_rerenders_the_customer_page(
    customer: Customer, analyst: User, agent: User
) -> None:
    # given
    restriction = _restrict(analyst, customer)

    # when
    response = client_for(agent).post(
        f"/risk/customers/{customer.pk}/appeals/", {"restriction": restriction.pk, "statement": ""}
    )

    # then
    assert response.status_code == 422
    html = response.content.decode()
    assert "appeal statement: a reason is required" in html
    assert 'data-testid="customer-name">王小明<' in html
    assert not Appeal.objects.exists()


@pytest.mark.parametrize("role", [ADMINISTRATOR, OPERATIONS_MANAGER, SERVICE_AGENT, RISK_ANALYST])
def test_the_risk_section_follows_the_permissions(customer: Customer, role: str) -> None:
    # when
    html = client_for(make_user(role)).get(f"/customers/{customer.pk}/").content.decode()

    # then
    assert 'data-testid="risk"' in html
    assert 'data-testid="checkout-policy"' in html
    assert ('data-testid="customer-alerts"' in html) is (role != SERVICE_AGENT)


@pytest.mark.parametrize("role", [Role.MARKETER.value, Role.ANALYST.value])
def test_no_risk_section_without_the_permission(customer: Customer, role: str) -> None:
    # when
    html = client_for(make_user(role)).get(f"/customers/{customer.pk}/").content.decode()

    # then
    assert 'data-testid="risk"' not in html


# --- rules, detection and the policy -----------------------------------------------------------


def test_the_rules_page_lists_the_rules_and_the_policy(analyst: User, db: None) -> None:
    # when
    html = client_for(analyst).get("/risk/rules/").content.decode()

    # then
    rule = RiskRule.objects.get(code="RET-RATE")
    text = text_of(html)
    assert (
        f"RET-RATE {rule.name} return rate {rule.window_days} {100 * rule.threshold:g}% "
        f"{rule.min_volume} Medium Review orders on v1"
    ) in text
    assert 'data-testid="edit-RET-RATE"' in html
    assert "Risk policy v1" in text


def test_an_auditor_sees_the_rules_without_forms(db: None) -> None:
    # when
    html = client_for(make_user(AUDITOR)).get("/risk/rules/").content.decode()

    # then
    assert 'data-testid="rule-RET-RATE"' in html
    assert 'data-testid="edit-RET-RATE"' not in html
    assert 'data-testid="policy-json"' in html
    assert 'data-testid="run-detection"' not in html


def test_editing_a_rule(analyst: User, db: None) -> None:
    # given
    client = client_for(analyst)
    client.get("/risk/rules/")
    form = {
        "action": "update",
        "code": "RET-RATE",
        "name": "Frequent returns",
        "window_days": "90",
        "threshold": "0.4",
        "min_volume": "3",
        "severity": "high",
        "action_suggested": "order_review",
        "is_enabled": "on",
        "params": "{}",
    }

    # when
    saved = client.post("/risk/rules/", form)
    invalid = client.post("/risk/rules/", {**form, "threshold": "much"})

    renamed = client.post("/risk/rules/", {**form, "name_zh": " 退货过多 "})
    too_long = client.post("/risk/rules/", {**form, "name_zh": "退" * 121})

    # then
    assert saved.status_code == 302 and renamed.status_code == 302
    rule = RiskRule.objects.get(code="RET-RATE")
    assert (rule.window_days, rule.threshold, rule.severity, rule.version) == (90, 0.4, "high", 3)
    assert (rule.name, rule.name_zh) == ("Frequent returns", "退货过多")
    assert too_long.status_code == 422
    assert "rule RET-RATE.name_zh: at most 120 characters" in too_long.content.decode()
    assert re.search(r'id="id_name_zh_RET-RATE"[^>]*is-invalid', too_long.content.decode())
    assert invalid.status_code == 422
    html = invalid.content.decode()
    assert "rule RET-RATE.threshold: expected a number, got &#x27;much&#x27;" in html
    assert re.search(r'id="id_threshold_RET-RATE"[^>]*value="much"[^>]*is-invalid', html)


def test_only_rule_editors_may_post(db: None) -> None:
    # when
    response = client_for(make_user(AUDITOR)).post("/risk/rules/", {"action": "run"})

    # then
    assert response.status_code == 403


def test_backtesting_a_rule_shows_both_sides(customer: Customer, analyst: User) -> None:
    # given
    client = client_for(analyst)
    client.get("/risk/rules/")

    # when
    response = client.post(
        "/risk/rules/",
        {
            "action": "backtest",
            "code": "RET-RATE",
            "window_days": "180",
            "threshold": "0.2",
            "min_volume": "1",
            "days": "30",
        },
        headers={"HX-Request": "true"},
    )
    invalid = client.post(
        "/risk/rules/",
        {
            "action": "backtest",
            "code": "RET-RATE",
            "window_days": "180",
            "threshold": "0.2",
            "min_volume": "1",
            "days": "3",
        },
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="backtest-result"' in html
    assert "<html" not in html
    assert 'id="backtest-chart-RET-RATE"' in html
    assert "threshold = 0.2" in html
    assert invalid.status_code == 422
    assert "backtest.days: a whole number of days, 7 to 730" in invalid.content.decode()


def test_running_detection_from_the_page(customer: Customer, analyst: User) -> None:
    # when
    response = client_for(analyst).post("/risk/rules/", {"action": "run"}, follow=True)

    # then
    assert response.status_code == 200
    assert "Detection run #" in response.content.decode()
    assert 'data-testid="run-table"' in response.content.decode()


def test_saving_the_risk_policy(analyst: User, db: None) -> None:
    # given
    client = client_for(analyst)

    # when
    invalid = client.post(
        "/risk/rules/", {"action": "policy", "rules": '{"appeal_sla_hours": 0}', "note": ""}
    )
    broken = client.post("/risk/rules/", {"action": "policy", "rules": "{", "note": ""})
    saved = client.post(
        "/risk/rules/", {"action": "policy", "rules": '{"appeal_sla_hours": 48}', "note": "SLA"}
    )

    # then
    assert invalid.status_code == 422
    assert "appeal_sla_hours: a whole number of hours from 1 to 720" in invalid.content.decode()
    assert broken.status_code == 422
    assert "risk policy: not valid JSON" in broken.content.decode()
    assert saved.status_code == 302
    active = RiskPolicy.objects.get(is_active=True)
    assert (active.version, active.rules["appeal_sla_hours"], active.note) == (2, 48, "SLA")


# --- language -----------------------------------------------------------------------------------


def test_the_queue_in_chinese(customer: Customer, analyst: User) -> None:
    # given
    detect.rules_seed()
    alert = _alert(customer)
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(analyst)

    # when
    text = text_of(client.get("/risk/").content.decode())
    detail = text_of(client.get(f"/risk/alerts/{alert.pk}/").content.decode())
    rules = text_of(client.get("/risk/rules/").content.decode())

    # then
    assert "风险预警" in text
    assert "退换货率" in text
    assert "订单人工审核" in text
    assert "频繁退货" in text and "Frequent returns" not in text
    assert "频繁退货" in detail
    assert "频繁退货" in rules and "多个账户共用同一身份信息" in rules


def test_a_rule_without_a_chinese_name_shows_its_english_one(
    customer: Customer, analyst: User
) -> None:
    # given
    detect.rules_seed()
    RiskRule.objects.filter(code="RET-RATE").update(name_zh="")
    _alert(customer)
    client = Client(headers={"accept-language": "zh-hans"})
    client.force_login(analyst)
    # when
    text = text_of(client.get("/risk/").content.decode())
    # then
    assert "Frequent returns" in text


def test_an_agent_contests_the_score_set_terms_and_an_analyst_grants_terms(
    customer: Customer, analyst: User, agent: User
) -> None:
    # given: the customer page offers agents a way to contest what the score decided
    page = client_for(agent).get(f"/customers/{customer.pk}/")
    assert 'data-testid="automated-appeal-form"' in page.content.decode()
    # when
    filed = client_for(agent).post(
        f"/risk/customers/{customer.pk}/appeals/",
        {"automated": "1", "statement": "我从未拖欠，为何不能货到付款"},
    )
    appeal = Appeal.objects.get()
    shown = client_for(analyst).get(f"/risk/appeals/{appeal.pk}/").content.decode()
    bad = client_for(analyst).post(
        f"/risk/appeals/{appeal.pk}/",
        {"action": "overturn", "reason": "记录良好", "credit_limit": "很多"},
    )
    granted = client_for(analyst).post(
        f"/risk/appeals/{appeal.pk}/",
        {"action": "overturn", "reason": "记录良好", "credit_limit": "600"},
    )
    # then
    assert filed.status_code == 302 and appeal.subject == "automated"
    assert (
        "Checkout terms set by the credit score" in shown and 'data-testid="credit-limit"' in shown
    )
    assert bad.status_code == 422 and "credit_limit: expected an amount" in bad.content.decode()
    assert granted.status_code == 302
    override = CreditOverride.objects.get(customer=customer)
    assert override.credit_limit == Decimal("600.00") and override.granted_by == analyst
    after = text_of(client_for(agent).get(f"/customers/{customer.pk}/").content.decode())
    assert "A person reviewed what the credit score decided" in after
