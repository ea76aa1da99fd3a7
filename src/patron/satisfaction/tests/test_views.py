"""The pages: every staff page renders for a manager (with data), a manager's forms act, an
agent may look but not act; the customers' pages work without a login, refuse a bad or expired
link, answer once, and the suggestion box is rate limited."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

import pytest
from django.core import signing
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from patron.account.roles import Role
from patron.conftest import at, make_customer, make_user
from patron.satisfaction import services
from patron.satisfaction.models import (
    CsatRequest,
    ImprovementPlan,
    Suggestion,
    Survey,
    SurveyInvitation,
)
from patron.satisfaction.tests.conftest import make_team, make_ticket
from patron.service.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager() -> Any:
    return make_user(Role.OPERATIONS_MANAGER, username="manager-zhao")


@pytest.fixture
def data(manager: Any) -> dict[str, Any]:
    """A solved ticket rated 1 (needs a follow-up), an open survey with one answer, a
    suggestion and an overdue plan."""
    customer = make_customer(name="王芳", email="wang@example.com")
    team = make_team("first-line", "一线客服")
    now = timezone.now()
    ticket = make_ticket(
        customer, assignee=manager, team=team, opened_at=now - timedelta(hours=5),
        first_response_at=now - timedelta(hours=4), solved_at=now - timedelta(hours=1),
    )  # fmt: skip
    request = services.csat_request_for_ticket(ticket_id=ticket.pk)
    assert request is not None
    services.csat_answer(token=request.token, score=1, comment="太慢了")
    today = timezone.localdate()
    survey = services.survey_create(
        user=manager,
        data=services.SurveyData(
            title="满意度调查",
            opens_on=today,
            questions=[
                {"kind": "rating", "text": "总体满意度"},
                {
                    "kind": "choice",
                    "text": "渠道",
                    "choices": ["App", "微信"],
                    "is_required": False,
                },
                {"kind": "text", "text": "建议", "is_required": False},
            ],
        ),
    )
    services.survey_schedule(user=manager, survey_id=survey.pk)
    services.surveys_send()
    invitation = SurveyInvitation.objects.get()
    keys = [f"q{q.pk}" for q in survey.questions.order_by("position")]
    services.survey_answer(
        token=invitation.token, answers={keys[0]: "4", keys[1]: "App", keys[2]: "多些优惠"}
    )
    suggestion = services.suggestion_submit(text="增加夜间客服", channel="phone", user=manager)
    plan = services.plan_create(
        user=manager,
        data=services.PlanData(
            title="提升响应速度",
            problem="首次响应慢",
            owner_id=manager.pk,
            deadline=today - timedelta(days=1),
        ),
    )
    return {
        "ticket": ticket,
        "request": request,
        "survey": survey,
        "suggestion": suggestion,
        "plan": plan,
    }


PAGES = [
    "/service/csat/",
    "/service/csat/?status=follow_up",
    "/service/surveys/",
    "/service/surveys/new/",
    "/service/suggestions/",
    "/service/plans/",
    "/service/kpis/",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_a_manager(manager: Any, data: dict[str, Any], url: str) -> None:
    client = Client()
    client.force_login(manager)
    response = client.get(url)
    assert response.status_code == 200
    assert b"satisfaction-tabs" in response.content


def test_the_pages_of_one_survey_and_one_plan(manager: Any, data: dict[str, Any]) -> None:
    # given
    client = Client()
    client.force_login(manager)
    survey, plan = data["survey"], data["plan"]
    # when
    edit = client.get(f"/service/surveys/{survey.pk}/")
    results = client.get(f"/service/surveys/{survey.pk}/results/")
    detail = client.get(f"/service/plans/{plan.pk}/")
    # then
    assert edit.status_code == results.status_code == detail.status_code == 200
    assert b'data-testid="read-only"' in edit.content  # it has opened: not editable
    assert results.context["results"].response_rate == 1.0
    assert (
        b'data-testid="chart-q0"' in results.content
        and b'data-testid="chart-q1"' in results.content
    )
    assert "多些优惠" in results.content.decode()


def test_the_csat_list_flags_the_low_answer(manager: Any, data: dict[str, Any]) -> None:
    client = Client()
    client.force_login(manager)
    page = client.get("/service/csat/").content.decode()
    assert 'data-testid="needs-follow-up-badge"' in page
    assert "太慢了" in page


def test_a_manager_links_a_low_answer_to_a_plan_from_the_list(
    manager: Any, data: dict[str, Any]
) -> None:
    client = Client()
    client.force_login(manager)
    response = client.post(
        "/service/csat/", {"request": data["request"].pk, "plan": data["plan"].pk}
    )
    assert response.status_code == 302
    assert list(data["plan"].links.values_list("kind", "csat_request_id")) == [
        ("csat", data["request"].pk)
    ]
    assert b"needs-follow-up-badge" not in client.get("/service/csat/").content


def test_overdue_plans_are_red(manager: Any, data: dict[str, Any]) -> None:
    client = Client()
    client.force_login(manager)
    page = client.get("/service/plans/").content.decode()
    assert f'data-testid="plan-{data["plan"].pk}" class="table-danger"' in page
    assert 'data-testid="overdue-badge"' in page


def test_the_kpi_page_draws_its_charts(manager: Any, data: dict[str, Any]) -> None:
    client = Client()
    client.force_login(manager)
    response = client.get("/service/kpis/")
    charts = response.context["charts"]
    assert charts["frt"]["xAxis"]["data"] == ["manager-zhao"]
    assert charts["frt"]["series"][0]["data"] == [60.0]
    assert charts["csat"]["series"][0]["data"] == [1.0]
    assert charts["backlog"]["xAxis"]["data"] == ["一线客服"]
    script = response.content.decode().split(
        '<script id="chart-frt-data" type="application/json">'
    )[1]
    assert json.loads(script.split("</script>")[0]) == charts["frt"]


def test_a_manager_creates_a_survey_on_the_page(manager: Any) -> None:
    client = Client()
    client.force_login(manager)
    response = client.post(
        "/service/surveys/new/",
        {
            "title": "售后调查", "audience": "all", "schedule": "quarterly", "opens_on": "2026-10-05",
            "open_days": "14", "rows": "2", "kind_0": "rating", "text_0": "满意度", "required_0": "on",
            "kind_1": "choice", "text_1": "渠道", "choices_1": "App\n微信\n",
        },
    )  # fmt: skip
    assert response.status_code == 302
    survey = Survey.objects.get()
    assert list(survey.questions.values_list("kind", "choices", "is_required")) == [
        ("rating", [], True),
        ("choice", ["App", "微信"], False),
    ]


def test_a_bad_survey_form_is_shown_again_with_the_mistake(manager: Any) -> None:
    client = Client()
    client.force_login(manager)
    response = client.post(
        "/service/surveys/new/",
        {"title": "售后调查", "audience": "all", "schedule": "once", "opens_on": "2026-10-05",
         "open_days": "14", "rows": "1", "kind_0": "choice", "text_0": "渠道", "choices_0": "App"},
    )  # fmt: skip
    assert response.status_code == 422
    assert (
        "questions[0].choices: a choice question needs two options or more"
        in response.content.decode()
    )
    assert not Survey.objects.exists()


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/service/surveys/new/", {"title": "x"}),
        ("/service/plans/", {"title": "x", "problem": "y", "owner": "1", "deadline": "2026-12-31"}),
        ("/service/surveys/", {"survey": "1", "action": "close"}),
    ],
)
def test_an_agent_may_look_but_not_act(
    data: dict[str, Any], url: str, form: dict[str, str]
) -> None:
    client = Client()
    client.force_login(make_user(Role.SERVICE_AGENT))
    assert client.get(url).status_code == 200
    assert client.post(url, form).status_code == 403
    assert Survey.objects.get().status == "open"
    assert ImprovementPlan.objects.count() == 1


def test_a_role_without_the_permission_gets_403(data: dict[str, Any]) -> None:
    client = Client()
    client.force_login(make_user(Role.MARKETER))
    assert client.get("/service/kpis/").status_code == 403


# ---------------------------------------------------------------------- the customers' pages


def test_the_csat_page_works_without_a_login_and_answers_once(customer_ticket: Ticket) -> None:
    # given
    request = services.csat_request_for_ticket(ticket_id=customer_ticket.pk)
    assert request is not None
    client = Client()
    url = f"/csat/{request.token}/"
    # when
    page = client.get(url)
    answered = client.post(url, {"score": "5", "comment": "很满意"})
    again = client.get(url)
    # then
    assert page.status_code == 200 and b'data-testid="csat-form"' in page.content
    assert page["X-Robots-Tag"] == "noindex"
    assert answered.status_code == 302
    customer_ticket.refresh_from_db()
    assert customer_ticket.satisfaction == 5
    assert b'data-testid="thanks"' in again.content and b"csat-form" not in again.content


def test_the_csat_page_names_a_bad_score(customer_ticket: Ticket) -> None:
    request = services.csat_request_for_ticket(ticket_id=customer_ticket.pk)
    assert request is not None
    response = Client().post(f"/csat/{request.token}/", {"score": "9"})
    assert response.status_code == 422
    assert "score: a whole number 1–5, got 9" in response.content.decode()


def test_a_bad_link_is_a_404_page_and_an_expired_one_a_403_page(
    customer_ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    eight_days_ago = int(time.time()) - 8 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(
            signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(eight_days_ago)
        )
        request = services.csat_request_for_ticket(ticket_id=customer_ticket.pk)
    assert request is not None
    client = Client()
    # when / then
    for url in ("/csat/forged/", "/survey/forged/"):
        bad = client.get(url)
        assert bad.status_code == 404 and b'data-testid="link-error"' in bad.content
    expired = Client(headers={"Accept-Language": "en"}).post(
        f"/csat/{request.token}/", {"score": "5"}
    )
    assert expired.status_code == 403
    assert b"This link has expired" in expired.content
    assert CsatRequest.objects.get().answered_at is None


def test_the_survey_page_works_without_a_login(manager: Any, data: dict[str, Any]) -> None:
    # given: a second customer invited to the same run
    survey = data["survey"]
    other = make_customer(name="张伟", email="zhang@example.com")
    run = survey.runs.get()
    from patron.satisfaction import tokens

    invitation = SurveyInvitation.objects.create(
        run=run,
        customer=other,
        token=tokens.survey_token(run.pk, other.pk),
        created_at=timezone.now(),
    )
    keys = [f"q{q.pk}" for q in survey.questions.order_by("position")]
    client = Client()
    url = f"/survey/{invitation.token}/"
    # when
    page = client.get(url)
    missing = client.post(url, {keys[1]: "微信"})
    answered = client.post(url, {keys[0]: "5", keys[1]: "微信"})
    # then
    assert page.status_code == 200 and b'data-testid="survey-form"' in page.content
    assert missing.status_code == 422
    assert f"{keys[0]}: this question needs an answer" in missing.content.decode()
    assert answered.status_code == 302
    invitation.refresh_from_db()
    assert invitation.answered_at is not None
    assert b'data-testid="thanks"' in client.get(url).content


def test_the_suggestion_box_is_anonymous_and_rate_limited(settings: Any) -> None:
    # given
    settings.PATRON_SUGGESTIONS_PER_HOUR = 2
    cache.clear()
    client = Client(REMOTE_ADDR="203.0.113.9")
    # when
    form = client.get("/suggest/")
    first = client.post("/suggest/", {"text": "希望增加自提点"})
    second = client.post("/suggest/", {"text": "包装可以更环保"})
    third = client.post("/suggest/", {"text": "第三条"})
    blank = Client(REMOTE_ADDR="203.0.113.10").post("/suggest/", {"text": "   "})
    # then
    assert form.status_code == 200
    assert (first.status_code, second.status_code) == (302, 302)
    assert third.status_code == 429
    assert b"too many suggestions" in third.content
    assert blank.status_code == 422
    assert list(
        Suggestion.objects.order_by("id").values_list("text", "channel", "customer_id")
    ) == [
        ("希望增加自提点", "web", None),
        ("包装可以更环保", "web", None),
    ]


@pytest.fixture
def customer_ticket() -> Ticket:
    customer = make_customer(name="赵敏", email="zhao@example.com")
    return make_ticket(customer, opened_at=at("2026-11-18 02:00"), solved_at=at("2026-11-18 03:00"))


def test_the_pages_of_a_survey_that_has_not_run_have_no_results(manager: Any) -> None:
    survey = services.survey_create(
        user=manager,
        data=services.SurveyData(
            title="草稿", opens_on=date(2026, 12, 1), questions=[{"kind": "text", "text": "建议"}]
        ),
    )
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(manager)
    response = client.get(f"/service/surveys/{survey.pk}/results/")
    chinese = Client()
    chinese.force_login(manager)
    # then: in the page's language
    assert response.status_code == 200
    assert b"This survey has not opened yet." in response.content
    assert (
        "本问卷尚未开始。" in chinese.get(f"/service/surveys/{survey.pk}/results/").content.decode()
    )
