"""The demo's satisfaction data, on a small hand-made merchant: CSAT asked and answered on
solved tickets, a quarterly survey that ran with answers, suggestions and plans."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from patron.conftest import at, make_customer
from patron.demo.satisfaction import _last_quarterly_run, demo_satisfaction
from patron.satisfaction.models import CsatRequest, ImprovementPlan, Suggestion, Survey, SurveyRun
from patron.satisfaction.tests.conftest import make_ticket
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db


def test_the_last_quarterly_run_has_ended() -> None:
    assert _last_quarterly_run(date(2026, 11, 23)).date() == date(2026, 10, 5)
    assert _last_quarterly_run(date(2026, 10, 10)).date() == date(2026, 7, 6)
    assert _last_quarterly_run(date(2027, 1, 10)).date() == date(2026, 10, 5)


def test_the_demo_fills_every_page() -> None:
    # given
    now = timezone.make_aware(datetime(2026, 11, 23, 10, 0))
    run = ScoreRun.objects.create(as_of=date(2026, 10, 31), started_at=now)
    for number in range(12):
        customer = make_customer(email=f"demo{number}@example.com")
        CustomerScore.objects.create(
            customer=customer, run=run, as_of=date(2026, 10, 31), grade="core"
        )
        make_ticket(customer, opened_at=at("2026-10-20 02:00") + timedelta(hours=number),
                    resolved_at=at("2026-10-21 02:00"))  # fmt: skip
    # when
    made = demo_satisfaction(seed=3, answer_share=1.0, now=now)
    # then
    assert (made.asked, made.answered, made.invited, made.suggestions, made.plans) == (
        12,
        12,
        12,
        6,
        3,
    )
    assert made.survey_answers > 0
    assert CsatRequest.objects.filter(answered_at__isnull=False).count() == 12
    survey = Survey.objects.get()
    assert (survey.status, survey.next_run_on) == ("scheduled", date(2027, 1, 4))
    assert SurveyRun.objects.get().label == "2026 Q4"
    assert Suggestion.objects.filter(status="planned").count() == 3
    assert sorted(ImprovementPlan.objects.values_list("status", flat=True)) == [
        "done",
        "in_progress",
        "proposed",
    ]
