"""The care page under Marketing: who may open it, and what it shows (the policy, the care
calendar, the last runs), in Chinese and in English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from patron.account.roles import Role
from patron.care import services
from patron.care.tests import factories
from patron.conftest import ALL_ROLES, NO_ROLE, make_user

pytestmark = pytest.mark.django_db

URL = "/marketing/care/"
ALLOWED = {"administrator", "operations_manager", "marketer", "auditor", "analyst"}


def _client(role: str, language: str = "zh-hans") -> Client:
    client = Client(headers={"Accept-Language": language})
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("role", [*ALL_ROLES, NO_ROLE])
def test_who_may_open_the_page(role: str) -> None:
    response = _client(role).get(URL)
    assert response.status_code == (200 if role in ALLOWED else 403), role


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_page_shows_the_policy_the_calendar_and_the_runs() -> None:
    # given: a core customer whose birthday is in three days, and one whose birthday is today
    # and who was greeted by today's run (no longer in the calendar)
    today = timezone.localdate()
    in_three_days = today + timedelta(days=3)
    factories.customer("王小明", grade="core", birthday=in_three_days.replace(year=1990))
    if (in_three_days.month, in_three_days.day) == (2, 29):  # pragma: no cover - leap days
        pytest.skip("a 29 February birthday is greeted on another day in most years")
    factories.customer("过生日", grade="potential", birthday=today.replace(year=1991))
    services.care_run(day=today)

    # when
    response = _client(Role.MARKETER).get(URL + "?days=7")

    # then
    text = response.content.decode()
    assert response.status_code == 200
    assert '<h1 class="page-title">客户关怀</h1>' in text
    assert "分级权益" in text and "关怀日历" in text and "最近运行" in text
    assert 'data-testid="policy-core"' in text and "核心客户 Core" in text
    assert "每 90 天" in text  # core: a visit every 90 days
    calendar = response.context["calendar"]
    assert [(e.on, e.kind, e.grade, e.customers) for e in calendar if e.kind == "birthday"] == [
        (in_three_days, "birthday", "core", 1)
    ]
    runs = response.context["runs"]
    assert (runs[0].run_on, runs[0].birthday_greetings) == (today, 1)
    assert response.context["may_change"] is True
    assert "/admin/care/grademeasure/" in text


def test_the_page_in_english() -> None:
    response = _client(Role.AUDITOR, "en").get(URL)
    text = response.content.decode()
    assert "Customer care" in text and "Measures by grade" in text
    assert "every 90 days" in text
    assert response.context["may_change"] is False
    assert "/admin/care/grademeasure/" not in text


def test_an_unknown_number_of_days_falls_back_to_thirty() -> None:
    response = _client(Role.MARKETER).get(URL + "?days=1000")
    assert response.context["days"] == 30
