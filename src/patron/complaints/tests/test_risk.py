"""The complaint-risk early warning on the database: the features of a ticket from its
customer's history and words, the refresh that stores the scores of open tickets and customers
(safe to run twice), the report, and what the at-risk selector shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.account.models import User
from patron.complaints import risk, selectors
from patron.complaints.models import ComplaintRiskRun, ComplaintRiskScore
from patron.complaints.tests.conftest import START, make_ticket
from patron.conftest import make_customer
from patron.customer.models import Customer
from patron.service.models import Ticket, TicketEvent, TicketMessage

pytestmark = pytest.mark.django_db

AS_OF = START + timedelta(days=40)


def _history(customer: Customer) -> Ticket:
    """Three earlier contacts (one a complaint, one that breached its first reply), then an
    open ticket with an angry message that was reopened once."""
    make_ticket(
        customer,
        is_complaint=False,
        status="solved",
        opened_at=AS_OF - timedelta(days=20),
        first_response_at=AS_OF - timedelta(days=20) + timedelta(minutes=5),
    )
    make_ticket(customer, is_complaint=True, status="solved", opened_at=AS_OF - timedelta(days=10))
    make_ticket(
        customer,
        is_complaint=False,
        status="closed",
        opened_at=AS_OF - timedelta(days=3),
    )
    current = make_ticket(
        customer,
        is_complaint=False,
        status="open",
        priority="urgent",
        opened_at=AS_OF - timedelta(days=1),
        first_reply_breached_at=AS_OF - timedelta(hours=20),
    )
    TicketMessage.objects.create(
        ticket=current,
        direction="in",
        channel="phone",
        body="太差了，非常失望，再不处理我就投诉！",
        created_at=current.opened_at,
    )
    TicketEvent.objects.create(ticket=current, action="reopen", at=current.opened_at)
    return current


def test_a_tickets_features_come_from_its_customers_history_and_words(
    customer: Customer,
) -> None:
    # given
    current = _history(customer)
    # when
    data = risk.dataset(as_of=AS_OF)
    # then
    assert [row.id for row in data.open] == [current.pk]
    features = data.open[0].features
    assert features["negative_sentiment"] > 0.5
    assert {k: v for k, v in features.items() if k != "negative_sentiment"} == {
        "contacts_7d": 1.0,  # the one 3 days before
        "contacts_30d": 3.0,
        "inbound_messages_30d": 1.0,
        "sla_breaches": 1.0,
        "past_complaints": 1.0,
        "reopens": 1.0,
        "priority": 3.0,
        "grade": 0.0,
    }
    assert [(row.is_complaint, row.is_open) for row in data.labelled] == [
        (False, False),
        (True, False),
        (False, False),
    ]


def test_imported_history_without_clocks_counts_a_late_first_reply_as_a_breach(
    customer: Customer,
) -> None:
    # given
    opened = AS_OF - timedelta(days=2)
    make_ticket(
        customer,
        source="shop",
        status="solved",
        opened_at=opened,
        first_response_at=opened + timedelta(minutes=45),
    )
    # when
    data = risk.dataset(as_of=AS_OF)
    # then
    assert data.labelled[0].features["sla_breaches"] == 1.0


def test_the_refresh_stores_ranked_scores_with_reasons_and_is_safe_to_run_twice(
    customer: Customer,
) -> None:
    # given: a risky open ticket and a calm one of another customer
    risky = _history(customer)
    calm_customer = make_customer(name="平静")
    calm = make_ticket(
        calm_customer,
        is_complaint=False,
        status="new",
        priority="low",
        opened_at=AS_OF - timedelta(hours=2),
    )
    # when
    first = risk.complaint_risk_refresh(as_of=AS_OF)
    second = risk.complaint_risk_refresh(as_of=AS_OF)
    # then: too few labelled tickets for a fit, so the documented hand-weighted score
    assert (second.method, second.tickets_scored, second.customers_scored) == (
        "hand_weighted",
        2,
        2,
    )
    assert second.note.startswith("fewer than 20 complaints")
    assert ComplaintRiskRun.objects.count() == 2 and first.pk != second.pk
    tickets = list(
        ComplaintRiskScore.objects.filter(kind="ticket").values_list("ticket_id", "rank", "run_id")
    )
    assert tickets == [(risky.pk, 1, second.pk), (calm.pk, 2, second.pk)]
    top = ComplaintRiskScore.objects.get(kind="ticket", rank=1)
    assert [r["feature"] for r in top.reasons] == [
        "negative_sentiment",
        "priority",
        "past_complaints",
    ]
    assert top.probability > ComplaintRiskScore.objects.get(kind="ticket", rank=2).probability
    customers = list(
        ComplaintRiskScore.objects.filter(kind="customer").values_list("customer_id", "rank")
    )
    assert customers == [(customer.pk, 1), (calm_customer.pk, 2)]


def test_the_report_measures_the_model_on_the_later_tickets(customer: Customer) -> None:
    # given
    _history(customer)
    # when
    report = risk.complaint_risk_report(as_of=AS_OF).to_json()
    # then
    assert (report["labelled_tickets"], report["complaints"], report["open_tickets"]) == (3, 1, 1)
    assert (report["method"], report["train_size"], report["test_size"]) == ("hand_weighted", 2, 1)
    assert set(report) >= {"auc", "precision_at_k", "base_rate", "feature_auc", "holdout_from"}


def test_the_at_risk_view_shows_reasons_in_words(agent: User, customer: Customer) -> None:
    # given
    _history(customer)
    risk.complaint_risk_refresh(as_of=AS_OF)
    # when
    view = selectors.at_risk(user=agent, language="en")
    chinese = selectors.at_risk(user=agent, language="zh-hans")
    # then
    assert view.method == "hand_weighted"
    assert [row.customer_id for row in view.customers] == [customer.pk]
    assert view.tickets[0].reasons[1:] == ["priority urgent", "1 earlier complaint(s)"]
    assert view.tickets[0].reasons[0].startswith("negative tone in the customer's words (")
    assert chinese.tickets[0].reasons[1:] == ["优先级：紧急", "以往投诉过1次"]
    assert view.customers[0].open_tickets == 1


def test_before_any_refresh_the_at_risk_view_is_empty(agent: User) -> None:
    # when
    view = selectors.at_risk(user=agent)
    # then
    assert (view.scored_at, view.tickets, view.customers) == (None, [], [])
