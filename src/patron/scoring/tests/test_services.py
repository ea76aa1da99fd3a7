"""`patron score`: every customer who bought gets explained scores, on the page and the API."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from django.test import Client

from patron.conftest import make_customer_file, make_user
from patron.customer.models import Customer
from patron.errors import ValidationFailed
from patron.ingest.adapters.cdnow import cdnow_parts
from patron.ingest.services import import_parts
from patron.ingest.tests.conftest import shared_data
from patron.intelligence.explain import render
from patron.intelligence.models.btyd import BetaGeo
from patron.scoring.models import CustomerScore, ScoreRun
from patron.scoring.selectors import stored_reasons
from patron.scoring.services import score_customers

# Scores are computed from data read through ADBC's own connection: it must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_cdnow_customers_are_scored_with_the_papers_model(lake: Path) -> None:
    # given
    path = shared_data("cdnow", "CDNOW_sample.txt")
    import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    # when
    run = score_customers(as_of=date(1997, 10, 1))
    # then
    assert (run.status, run.customers) == ("completed", 2357)
    assert run.parameters["bgnbd"]["r"] == pytest.approx(0.243, rel=5e-3)
    assert run.parameters["gamma_gamma"]["p"] == pytest.approx(6.25, rel=5e-3)
    score = CustomerScore.objects.get(customer__source="cdnow", customer__external_id="00004")
    model = BetaGeo()
    model.params_ = {k: run.parameters["bgnbd"][k] for k in ("r", "alpha", "a", "b")}
    # customer 00004 bought on 1997-01-01, 01-18 and 08-02 (x=2, t_x=30.43, T=38.86 weeks)
    expected = model.probability_alive(np.array([2.0]), np.array([213 / 7]), np.array([272 / 7]))
    assert score.p_alive == pytest.approx(float(expected[0]), rel=1e-9)
    assert score.purchase_days == 3
    assert score.days_since_last_purchase == 60
    reasons = stored_reasons(score)
    assert reasons is not None
    assert [render(r) for r in reasons["p_alive"]] == [
        "bought on 3 different days, about every 106 days; the last purchase was 60 days ago"
    ]
    assert render(reasons["clv_12m"][0]).endswith(
        "USD expected per order (from their own repeat orders)"
    )
    assert score.currency == "USD"
    # 3 purchase days beat the average (about 2) and 60 days beat the average recency: R and F high
    assert score.rfm_segment in {"important_value", "general_value"}
    assert render(reasons["rfm"][0]).startswith("last purchase 60 days ago (shop average ")
    segments = set(CustomerScore.objects.values_list("rfm_segment", flat=True))
    assert len(segments) == 8
    assert set(CustomerScore.objects.values_list("rfm_r", flat=True)) <= {1, 2, 3, 4, 5}


def test_scores_show_on_the_customer_page_and_in_the_api(lake: Path) -> None:
    # given
    path = shared_data("cdnow", "CDNOW_sample.txt")
    import_parts(label="cdnow", source="cdnow", path=str(path), parts=cdnow_parts(path))
    customer = Customer.objects.get(source="cdnow", external_id="00004")
    score_customers(as_of=date(1997, 10, 1))
    client = Client(headers={"accept-language": "en"})
    client.force_login(make_user("service_agent"))
    # when
    page = client.get(f"/customers/{customer.pk}/")
    api = client.get(f"/api/customers/{customer.pk}")
    # then
    score = CustomerScore.objects.get(customer=customer)
    reasons = stored_reasons(score)
    assert reasons is not None
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-testid="scores"' in text
    assert render(reasons["p_alive"][0]) in text
    body = api.json()["score"]
    assert body["p_alive"] == pytest.approx(score.p_alive)
    assert (body["rfm_segment"], body["rfm_r"]) == (score.rfm_segment, score.rfm_r)
    assert f"R{score.rfm_r} F{score.rfm_f} M{score.rfm_m}" in text
    assert body["reasons"]["p_alive"] == [render(reasons["p_alive"][0])]
    assert body["reasons_available"] is True
    assert body["grade"] == score.grade
    assert body["credit_score"] == score.credit_score
    assert api.json()["grade_history"][0]["grade"] == score.grade


def test_too_few_buyers_are_refused_rather_than_scored_badly() -> None:
    make_customer_file()
    with pytest.raises(ValidationFailed, match="only 2 customers bought before 2024-07-01"):
        score_customers(as_of=date(2024, 7, 1))
    assert ScoreRun.objects.get().status == "failed"


def test_a_run_without_purchases_fails_and_says_why() -> None:
    with pytest.raises(ValidationFailed, match="no purchases before 2024-01-01"):
        score_customers(as_of=date(2024, 1, 1))
    assert ScoreRun.objects.get().status == "failed"
    assert CustomerScore.objects.count() == 0
