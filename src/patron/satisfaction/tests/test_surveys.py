"""Surveys: created as drafts, scheduled, opened by the daily job with one invitation per
customer and run (consent checked by the outbox), answered once through the link, closed; a
quarterly survey comes back the next quarter; results per question."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from patron.account.roles import Role
from patron.conftest import make_customer, make_user
from patron.customer.models import Consent, Customer
from patron.errors import Conflict, PermissionDenied, ValidationFailed
from patron.outbox.models import Message
from patron.satisfaction import selectors, services, tokens
from patron.satisfaction.models import Survey, SurveyAnswer, SurveyInvitation, SurveyRun
from patron.scoring.models import CustomerScore, ScoreRun

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"kind": "rating", "text": "总体满意度", "is_required": True},
    {
        "kind": "choice",
        "text": "最常用的渠道",
        "choices": ["App", "微信", "电话"],
        "is_required": False,
    },
    {"kind": "text", "text": "还有什么建议？", "is_required": False},
]
#: Monday 5 October 2026, 10:00 in Shanghai: the first Monday of Q4.
MONDAY = datetime(2026, 10, 5, 2, 0, tzinfo=timezone.get_fixed_timezone(0))


@pytest.fixture
def manager() -> Any:
    return make_user(Role.OPERATIONS_MANAGER, username="manager-zhao")


@pytest.fixture
def customers() -> list[Customer]:
    return [make_customer(name=f"客户{i}", email=f"c{i}@example.com") for i in range(3)]


def _survey(manager: Any, **fields: Any) -> Survey:
    values: dict[str, Any] = {
        "title": "2026 年第四季度满意度调查",
        "opens_on": date(2026, 10, 5),
        "questions": QUESTIONS,
    }
    values.update(fields)
    return services.survey_create(user=manager, data=services.SurveyData(**values))


def _scheduled(manager: Any, **fields: Any) -> Survey:
    survey = _survey(manager, **fields)
    return services.survey_schedule(user=manager, survey_id=survey.pk, today=date(2026, 10, 1))


def test_a_survey_is_created_as_a_draft_with_its_questions(manager: Any) -> None:
    # when
    survey = _survey(manager)
    # then
    row = selectors.survey_get(user=manager, survey_id=survey.pk)
    assert (row.status, row.schedule, row.audience, row.next_run_on) == (
        "draft",
        "once",
        "all",
        None,
    )
    assert [(q.position, q.kind, q.text, q.choices, q.is_required) for q in row.questions] == [
        (1, "rating", "总体满意度", (), True),
        (2, "choice", "最常用的渠道", ("App", "微信", "电话"), False),
        (3, "text", "还有什么建议？", (), False),
    ]


def test_a_bad_questionnaire_is_refused_naming_the_field_and_nothing_is_created(
    manager: Any,
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _survey(manager, questions=[{"kind": "choice", "text": "渠道", "choices": ["App"]}])
    assert (
        refused.value.message == "questions[0].choices: a choice question needs two options or more"
    )
    assert refused.value.details == {"field": "questions[0].choices"}
    with pytest.raises(ValidationFailed) as no_grade:
        _survey(manager, audience="grade", audience_grade="gold")
    assert no_grade.value.details == {"field": "audience_grade"}
    assert not Survey.objects.exists()


def test_only_managers_create_surveys() -> None:
    with pytest.raises(PermissionDenied):
        _survey(make_user(Role.SERVICE_AGENT))
    assert not Survey.objects.exists()


def test_the_daily_job_opens_a_due_survey_and_invites_each_customer_once(
    manager: Any, customers: list[Customer]
) -> None:
    # given
    survey = _scheduled(manager)
    assert survey.next_run_on == date(2026, 10, 5)
    # when: the job runs, and runs again (a retry, or by hand)
    first = services.surveys_send(now=MONDAY)
    second = services.surveys_send(now=MONDAY + timedelta(hours=1))
    # then
    run = SurveyRun.objects.get()
    assert (first.opened, first.invited, first.suppressed) == ([run.pk], 3, 0)
    assert (second.opened, second.invited) == ([], 0)
    assert (run.label, run.run_on, run.closes_at) == (
        "2026-10-05",
        date(2026, 10, 5),
        MONDAY + timedelta(days=14),
    )
    assert sorted(SurveyInvitation.objects.values_list("customer_id", flat=True)) == sorted(
        c.pk for c in customers
    )
    messages = Message.objects.filter(template="survey.invitation")
    assert messages.count() == 3
    assert {m.key for m in messages} == {f"satisfaction.survey:{run.pk}:{c.pk}" for c in customers}
    invitation = SurveyInvitation.objects.get(customer=customers[0])
    assert f"/survey/{invitation.token}/" in messages.get(customer=customers[0]).body
    survey.refresh_from_db()
    assert (survey.status, survey.next_run_on) == ("open", None)


def test_a_survey_not_yet_due_is_left_alone(manager: Any, customers: list[Customer]) -> None:
    _scheduled(manager, opens_on=date(2026, 10, 6))
    assert services.surveys_send(now=MONDAY).opened == []
    assert not SurveyInvitation.objects.exists()


def test_consent_is_respected_by_the_outbox(manager: Any, customers: list[Customer]) -> None:
    # given: one customer refused service messages by e-mail, their only address
    Consent.objects.create(
        source="patron",
        external_id="refusal",
        customer=customers[1],
        purpose="service",
        channel="email",
        is_granted=False,
        recorded_at=MONDAY - timedelta(days=30),
    )
    survey = _scheduled(manager)
    # when
    result = services.surveys_send(now=MONDAY)
    # then: invited, but not written to, and not counted in the response rate
    assert (result.invited, result.suppressed) == (3, 1)
    refused = SurveyInvitation.objects.get(customer=customers[1])
    assert refused.is_suppressed is True and refused.message is not None
    assert refused.message.status == "suppressed"
    run = selectors.survey_get(user=manager, survey_id=survey.pk).runs[0]
    assert (run.invited, run.delivered, run.answered) == (3, 2, 0)


def test_the_audience_can_be_a_grade(manager: Any, customers: list[Customer]) -> None:
    # given
    score_run = ScoreRun.objects.create(as_of=date(2026, 9, 30), started_at=MONDAY)
    CustomerScore.objects.create(
        customer=customers[2], run=score_run, as_of=date(2026, 9, 30), grade="core"
    )
    CustomerScore.objects.create(
        customer=customers[0], run=score_run, as_of=date(2026, 9, 30), grade="ordinary"
    )
    _scheduled(manager, audience="grade", audience_grade="core")
    # when
    services.surveys_send(now=MONDAY)
    # then
    assert list(SurveyInvitation.objects.values_list("customer_id", flat=True)) == [customers[2].pk]


def _invitation(manager: Any, customers: list[Customer]) -> SurveyInvitation:
    _scheduled(manager)
    services.surveys_send(now=MONDAY)
    return SurveyInvitation.objects.get(customer=customers[0])


def _keys(survey_id: int) -> list[str]:
    return [
        f"q{q.id}"
        for q in selectors.survey_get(user=make_user(Role.ANALYST), survey_id=survey_id).questions
    ]


def test_answers_are_stored_per_question_once(manager: Any, customers: list[Customer]) -> None:
    # given
    invitation = _invitation(manager, customers)
    rating, channel, text = _keys(invitation.run.survey_id)
    # when
    services.survey_answer(
        token=invitation.token,
        answers={rating: "4", channel: "微信", text: "发货快一点"},
        now=MONDAY,
    )
    # then
    assert list(
        SurveyAnswer.objects.order_by("question__position").values_list("rating", "choice", "text")
    ) == [
        (4, "", ""),
        (None, "微信", ""),
        (None, "", "发货快一点"),
    ]
    invitation.refresh_from_db()
    assert invitation.answered_at == MONDAY
    with pytest.raises(Conflict):
        services.survey_answer(token=invitation.token, answers={rating: "5"}, now=MONDAY)
    assert SurveyAnswer.objects.count() == 3


def test_a_missing_required_answer_is_refused_naming_the_question(
    manager: Any, customers: list[Customer]
) -> None:
    invitation = _invitation(manager, customers)
    rating, channel, _text = _keys(invitation.run.survey_id)
    with pytest.raises(ValidationFailed) as refused:
        services.survey_answer(token=invitation.token, answers={channel: "App"}, now=MONDAY)
    assert refused.value.message == f"{rating}: this question needs an answer"
    assert refused.value.details == {"field": rating}
    assert not SurveyAnswer.objects.exists()


def test_a_closed_run_takes_no_more_answers(manager: Any, customers: list[Customer]) -> None:
    invitation = _invitation(manager, customers)
    rating = _keys(invitation.run.survey_id)[0]
    with pytest.raises(Conflict) as refused:
        services.survey_answer(
            token=invitation.token, answers={rating: "5"}, now=MONDAY + timedelta(days=15)
        )
    assert refused.value.message == "this survey closed on 2026-10-19"


def test_a_quarterly_survey_ends_its_run_and_comes_back_next_quarter(
    manager: Any, customers: list[Customer]
) -> None:
    # given
    survey = _scheduled(manager, schedule="quarterly", opens_on=date(2026, 9, 1))
    assert survey.next_run_on == date(2026, 10, 5)
    services.surveys_send(now=MONDAY)
    # when: two weeks later the job ends the run
    ended = services.surveys_send(now=MONDAY + timedelta(days=14))
    # then
    survey.refresh_from_db()
    assert ended.closed_runs == 1
    assert (survey.status, survey.next_run_on) == ("scheduled", date(2027, 1, 4))
    # and on 4 January 2027 it opens again with new invitations
    january = datetime(2027, 1, 4, 2, 0, tzinfo=timezone.get_fixed_timezone(0))
    again = services.surveys_send(now=january)
    assert again.invited == 3
    assert list(SurveyRun.objects.order_by("run_on").values_list("label", flat=True)) == [
        "2026 Q4",
        "2027 Q1",
    ]


def test_a_one_off_survey_closes_when_its_run_ends(manager: Any, customers: list[Customer]) -> None:
    survey = _scheduled(manager)
    services.surveys_send(now=MONDAY)
    services.surveys_send(now=MONDAY + timedelta(days=14))
    survey.refresh_from_db()
    assert (survey.status, survey.next_run_on) == ("closed", None)


def test_only_a_draft_that_never_ran_is_edited(manager: Any, customers: list[Customer]) -> None:
    # given
    survey = _scheduled(manager, schedule="quarterly", opens_on=date(2026, 9, 1))
    data = services.SurveyData(title="新标题", opens_on=date(2026, 9, 1), questions=QUESTIONS[:1])
    # then: a scheduled survey is not edited
    with pytest.raises(Conflict) as scheduled:
        services.survey_update(user=manager, survey_id=survey.pk, data=data)
    assert scheduled.value.message == (
        f"survey {survey.pk} is scheduled: only a draft is edited (unschedule it first)"
    )
    # and once it has run, even back to a draft, its questions are frozen
    services.surveys_send(now=MONDAY)
    services.surveys_send(now=MONDAY + timedelta(days=14))
    services.survey_unschedule(user=manager, survey_id=survey.pk)
    with pytest.raises(Conflict) as frozen:
        services.survey_update(user=manager, survey_id=survey.pk, data=data)
    assert frozen.value.message == f"survey {survey.pk} has already run: its questions are frozen"
    survey.refresh_from_db()
    assert (survey.title, survey.questions.count()) == ("2026 年第四季度满意度调查", 3)


def test_closing_a_survey_stops_its_open_run(manager: Any, customers: list[Customer]) -> None:
    survey = _scheduled(manager)
    services.surveys_send(now=MONDAY)
    services.survey_close(user=manager, survey_id=survey.pk)
    survey.refresh_from_db()
    assert survey.status == "closed"
    assert SurveyRun.objects.get().closed_at is not None


def test_a_one_off_survey_in_the_past_cannot_be_scheduled(manager: Any) -> None:
    survey = _survey(manager, opens_on=date(2026, 9, 1))
    with pytest.raises(ValidationFailed) as refused:
        services.survey_schedule(user=manager, survey_id=survey.pk, today=date(2026, 10, 1))
    assert refused.value.details == {"field": "opens_on"}
    survey.refresh_from_db()
    assert survey.status == "draft"


def test_results_per_question_and_the_response_rate(
    manager: Any, customers: list[Customer]
) -> None:
    # given: two of three customers answer
    _scheduled(manager)
    services.surveys_send(now=MONDAY)
    survey_id = Survey.objects.get().pk
    rating, channel, text = _keys(survey_id)
    first, second = (SurveyInvitation.objects.get(customer=c) for c in customers[:2])
    services.survey_answer(
        token=first.token, answers={rating: "5", channel: "App", text: "很好"}, now=MONDAY
    )
    services.survey_answer(token=second.token, answers={rating: "3", channel: "App"}, now=MONDAY)
    # when
    results = selectors.survey_results(user=make_user(Role.SERVICE_AGENT), survey_id=survey_id)
    # then
    assert results.response_rate == pytest.approx(2 / 3)
    by_kind = {r.question.kind: r for r in results.questions}
    assert by_kind["rating"].answered == 2
    assert by_kind["rating"].rating is not None
    assert (by_kind["rating"].rating.mean, by_kind["rating"].rating.distribution) == (
        4.0,
        {1: 0, 2: 0, 3: 1, 4: 0, 5: 1},
    )
    assert by_kind["choice"].choices == (("App", 2), ("微信", 0), ("电话", 0))
    assert [t.text for t in by_kind["text"].texts] == ["很好"]


def test_the_link_of_a_survey_is_its_own(manager: Any, customers: list[Customer]) -> None:
    invitation = _invitation(manager, customers)
    assert tokens.survey_invitation_key(invitation.token) == (invitation.run_id, customers[0].pk)
