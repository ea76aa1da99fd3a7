"""REST endpoints of satisfaction under ``/api/satisfaction``: CSAT answers (the list, the
summary, and the customer's answer through their link), surveys (create, edit, schedule,
close, results), the suggestion box, improvement plans with their links, and the service KPIs.

Thin: each endpoint calls one selector or one service, which check permissions. 403 permission,
404 unknown record or link, 409 a step the record's state does not allow (a second answer, a
survey that is not a draft), 422 invalid input naming the field, 403 an expired link.
``POST /csat/{token}`` needs no login: the signed token is the credential.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool

from patron.apitext import MAX_ID, NO_NUL, TEXT, DateText, WholeNumber, json_number
from patron.customer.api import ErrorOut
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE
from patron.satisfaction import rules, selectors, services
from patron.satisfaction.models import CsatRequest

router = Router(tags=["satisfaction"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
BODY = ConfigDict(extra="forbid")
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


#: In a query string (text by nature).
Day = Annotated[date, Field(ge=EARLIEST, le=LATEST)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
#: In a JSON body: the JSON type the spec names, nothing coerced from another.
#: (Bounds come before the validator, or the spec would not show them; a date's bounds it
#: cannot show at all, so the services check those that matter.)
BodyDay = DateText
BodyId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(json_number)]


# ---------------------------------------------------------------------- CSAT


class CsatRequestOut(Schema):
    id: int
    ticket_id: int
    ticket_subject: str
    customer_id: int
    customer_name: str
    agent: str = Field(description="The ticket's assignee, empty when none")
    team: str
    sent_at: datetime
    answered_at: datetime | None
    score: int | None = Field(description="1–5 once answered")
    comment: str
    is_suppressed: bool = Field(description="The outbox did not send it (consent or address)")
    is_expired: bool = Field(description="Unanswered and its link has expired")
    needs_follow_up: bool = Field(description="A score of 2 or less that no plan answers yet")
    plan_ids: list[int]


class CsatPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[CsatRequestOut]


class CsatListParams(Schema):
    status: Literal["all", "answered", "unanswered", "follow_up"] = "all"
    score: int | None = Field(None, ge=1, le=5)
    start: Day | None = Field(None, description="Sent on or after this day")
    end: Day | None = Field(None, description="Sent on or before this day")
    agent_id: Id | None = None
    team_id: Id | None = None
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


class CsatPeriodParams(Schema):
    start: Day | None = Field(None, description="First day (default: 29 days before end)")
    end: Day | None = Field(None, description="Last day, included (default: today)")


class CsatSummaryOut(Schema):
    start: date
    end: date
    sent: int
    delivered: int
    answered: int
    response_rate: float | None = Field(description="Answered / delivered; null when none")
    average: float | None
    distribution: dict[str, int] = Field(description="Score '1'…'5' -> answers")
    low: int = Field(description="Answers of 2 or less")
    needs_follow_up: int = Field(description="Low answers no improvement plan answers yet")


class CsatAnswerIn(Schema):
    model_config = BODY

    score: WholeNumber = Field(ge=1, le=5, description="1 (very unhappy) … 5 (very happy)")
    comment: str = Field("", max_length=services.MAX_COMMENT, pattern=NO_NUL)


class CsatAnswerOut(Schema):
    score: int
    answered_at: datetime
    needs_follow_up: bool


@router.get(
    "/csat",
    response={200: CsatPageOut, **ERRORS},
    summary="CSAT questions and answers, newest first (filters: status, score, period, agent)",
)
def list_csat(request: HttpRequest, params: Query[CsatListParams]) -> dict[str, Any]:
    page = selectors.csat_list(user=request.user, **params.dict())
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": [vars(row) | {"plan_ids": list(row.plan_ids)} for row in page.items],
    }


@router.get(
    "/csat/summary",
    response={200: CsatSummaryOut, **ERRORS},
    summary="CSAT of a period: sent, answered, response rate, average, distribution",
)
def csat_summary(request: HttpRequest, params: Query[CsatPeriodParams]) -> dict[str, Any]:
    summary = selectors.csat_summary(user=request.user, start=params.start, end=params.end)
    return vars(summary) | {"distribution": {str(k): v for k, v in summary.distribution.items()}}


@router.post(
    "/csat/{token}",
    auth=None,
    response={200: CsatAnswerOut, **ERRORS},
    summary="The customer's answer through their link (no login: the token is the credential; "
    "once; 403 when the link expired)",
)
def answer_csat(request: HttpRequest, token: str, body: CsatAnswerIn) -> dict[str, Any]:
    answered = services.csat_answer(
        token=token, score=body.score, comment=body.comment, channel=CsatRequest.Channel.API
    )
    return {
        "score": answered.score,
        "answered_at": answered.answered_at,
        "needs_follow_up": rules.is_low_score(answered.score),
    }


# ---------------------------------------------------------------------- surveys


class SurveyQuestionIn(Schema):
    model_config = BODY

    kind: Literal["rating", "choice", "text"]
    text: str = Field(min_length=1, max_length=rules.MAX_QUESTION_TEXT, pattern=TEXT)
    choices: list[Annotated[str, Field(max_length=rules.MAX_CHOICE_TEXT, pattern=NO_NUL)]] = Field(
        default_factory=list, max_length=rules.MAX_CHOICES, description="Choice: options"
    )
    is_required: StrictBool = True


class SurveyIn(Schema):
    model_config = BODY

    title: str = Field(min_length=1, max_length=services.MAX_TITLE, pattern=TEXT)
    intro: str = Field("", max_length=services.MAX_TEXT, pattern=NO_NUL)
    audience: Literal["all", "grade", "segment"] = "all"
    audience_grade: Literal["", "core", "potential", "ordinary"] = Field(
        "", description="With audience 'grade': the customers' latest grade"
    )
    audience_segment_id: BodyId | None = Field(None, description="With audience 'segment'")
    schedule: Literal["once", "quarterly"] = Field(
        "once", description="Once on opens_on, or the first Monday of every quarter from it"
    )
    opens_on: BodyDay
    open_days: WholeNumber = Field(14, ge=1, le=90, description="How long each run takes answers")
    questions: list[SurveyQuestionIn] = Field(min_length=1, max_length=rules.MAX_QUESTIONS)

    def data(self) -> services.SurveyData:
        return services.SurveyData(
            title=self.title,
            intro=self.intro,
            audience=self.audience,
            audience_grade=self.audience_grade,
            audience_segment_id=self.audience_segment_id,
            schedule=self.schedule,
            opens_on=self.opens_on,
            open_days=self.open_days,
            questions=[q.model_dump() for q in self.questions],
        )


class SurveyQuestionOut(Schema):
    id: int
    position: int
    kind: str
    text: str
    choices: list[str]
    is_required: bool


class SurveyRunOut(Schema):
    id: int
    label: str
    run_on: date
    opened_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    invited: int
    delivered: int = Field(description="Invitations the outbox did not suppress")
    answered: int
    response_rate: float | None = Field(description="Answered / delivered")


class SurveyOut(Schema):
    id: int
    title: str
    intro: str
    status: Literal["draft", "scheduled", "open", "closed"]
    audience: str
    audience_grade: str
    audience_segment_id: int | None
    schedule: str
    opens_on: date
    open_days: int
    next_run_on: date | None
    created_by: str
    created_at: datetime
    questions: list[SurveyQuestionOut]
    runs: list[SurveyRunOut]


class SurveyListParams(Schema):
    status: Literal["", "draft", "scheduled", "open", "closed"] = ""


class SurveyRatingOut(Schema):
    count: int
    distribution: dict[str, int] = Field(description="Rating '1'…'5' -> answers")
    mean: float | None
    low: float | None = Field(description="95 % confidence interval (Student's t), low end")
    high: float | None


class SurveyChoiceCountOut(Schema):
    choice: str
    count: int


class SurveyTextAnswerOut(Schema):
    answer_id: int
    text: str
    answered_at: datetime | None


class SurveyQuestionResultOut(Schema):
    question: SurveyQuestionOut
    answered: int
    rating: SurveyRatingOut | None
    choices: list[SurveyChoiceCountOut]
    texts: list[SurveyTextAnswerOut]


class SurveyResultsOut(Schema):
    survey_id: int
    run: SurveyRunOut | None
    response_rate: float | None
    questions: list[SurveyQuestionResultOut]


class SurveyResultsParams(Schema):
    run_id: Id | None = Field(None, description="Default: the latest run")


def _question_out(q: selectors.QuestionRow) -> dict[str, Any]:
    return vars(q) | {"choices": list(q.choices)}


def _run_out(run: selectors.RunRow) -> dict[str, Any]:
    return vars(run) | {"response_rate": run.response_rate}


def _survey_out(survey: selectors.SurveyRow) -> dict[str, Any]:
    return vars(survey) | {
        "questions": [_question_out(q) for q in survey.questions],
        "runs": [_run_out(r) for r in survey.runs],
    }


def _survey(request: HttpRequest, survey_id: int) -> dict[str, Any]:
    return _survey_out(selectors.survey_get(user=request.user, survey_id=survey_id))


@router.get("/surveys", response={200: list[SurveyOut], **ERRORS}, summary="Surveys")
def list_surveys(request: HttpRequest, params: Query[SurveyListParams]) -> list[dict[str, Any]]:
    return [
        _survey_out(row) for row in selectors.survey_list(user=request.user, status=params.status)
    ]


@router.post(
    "/surveys",
    response={201: SurveyOut, **ERRORS},
    summary="Create a survey (a draft; 422 names the field, e.g. questions[1].choices)",
)
def create_survey(request: HttpRequest, body: SurveyIn) -> tuple[int, dict[str, Any]]:
    survey = services.survey_create(user=request.user, data=body.data())
    return 201, _survey(request, survey.pk)


@router.get("/surveys/{survey_id}", response={200: SurveyOut, **ERRORS}, summary="A survey")
def get_survey(request: HttpRequest, survey_id: int) -> dict[str, Any]:
    return _survey(request, survey_id)


@router.put(
    "/surveys/{survey_id}",
    response={200: SurveyOut, **ERRORS},
    summary="Edit a draft survey that has never opened (409 otherwise)",
)
def update_survey(request: HttpRequest, survey_id: int, body: SurveyIn) -> dict[str, Any]:
    services.survey_update(user=request.user, survey_id=survey_id, data=body.data())
    return _survey(request, survey_id)


@router.post(
    "/surveys/{survey_id}/schedule",
    response={200: SurveyOut, **ERRORS},
    summary="Schedule a draft: the daily job opens it on its day",
)
def schedule_survey(request: HttpRequest, survey_id: int) -> dict[str, Any]:
    services.survey_schedule(user=request.user, survey_id=survey_id)
    return _survey(request, survey_id)


@router.post(
    "/surveys/{survey_id}/unschedule",
    response={200: SurveyOut, **ERRORS},
    summary="Back to draft before it opens",
)
def unschedule_survey(request: HttpRequest, survey_id: int) -> dict[str, Any]:
    services.survey_unschedule(user=request.user, survey_id=survey_id)
    return _survey(request, survey_id)


@router.post(
    "/surveys/{survey_id}/close",
    response={200: SurveyOut, **ERRORS},
    summary="Close for good (the open run stops taking answers)",
)
def close_survey(request: HttpRequest, survey_id: int) -> dict[str, Any]:
    services.survey_close(user=request.user, survey_id=survey_id)
    return _survey(request, survey_id)


@router.get(
    "/surveys/{survey_id}/results",
    response={200: SurveyResultsOut, **ERRORS},
    summary="A run's results per question and its response rate",
)
def survey_results(
    request: HttpRequest, survey_id: int, params: Query[SurveyResultsParams]
) -> dict[str, Any]:
    results = selectors.survey_results(user=request.user, survey_id=survey_id, run_id=params.run_id)
    questions = []
    for result in results.questions:
        rating = None
        if result.rating is not None:
            rating = vars(result.rating) | {
                "distribution": {str(k): v for k, v in result.rating.distribution.items()}
            }
        questions.append(
            {
                "question": _question_out(result.question),
                "answered": result.answered,
                "rating": rating,
                "choices": [{"choice": c, "count": n} for c, n in result.choices],
                "texts": [vars(t) for t in result.texts],
            }
        )
    return {
        "survey_id": results.survey.id,
        "run": _run_out(results.run) if results.run else None,
        "response_rate": results.response_rate,
        "questions": questions,
    }


# ---------------------------------------------------------------------- suggestions

SuggestionChannel = Literal["web", "api", "phone", "wechat", "email", "store", "other"]
SuggestionStatus = Literal["new", "reviewed", "planned", "declined"]


class SatisfactionSuggestionIn(Schema):
    model_config = BODY

    text: str = Field(min_length=1, max_length=services.MAX_SUGGESTION, pattern=TEXT)
    channel: SuggestionChannel = "api"
    customer_id: BodyId | None = Field(None, description="Empty: anonymous")


class SatisfactionSuggestionUpdateIn(Schema):
    model_config = BODY

    action: Literal["review", "plan", "decline"] | None = Field(
        None, description="new -> reviewed -> planned / declined"
    )
    staff_note: str | None = Field(None, max_length=services.MAX_TEXT, pattern=NO_NUL)


class SatisfactionSuggestionOut(Schema):
    id: int
    customer_id: int | None
    customer_name: str
    channel: str
    text: str
    created_at: datetime
    status: SuggestionStatus
    staff_note: str
    recorded_by: str
    reviewed_by: str
    reviewed_at: datetime | None
    plan_ids: list[int]


class SatisfactionSuggestionPageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[SatisfactionSuggestionOut]


class SatisfactionSuggestionParams(Schema):
    status: Literal["", "new", "reviewed", "planned", "declined"] = ""
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


def _suggestion_out(row: selectors.SuggestionRow) -> dict[str, Any]:
    return vars(row) | {"plan_ids": list(row.plan_ids)}


@router.get(
    "/suggestions",
    response={200: SatisfactionSuggestionPageOut, **ERRORS},
    summary="The suggestion box, newest first",
)
def list_suggestions(
    request: HttpRequest, params: Query[SatisfactionSuggestionParams]
) -> dict[str, Any]:
    page = selectors.suggestion_list(user=request.user, **params.dict())
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": [_suggestion_out(row) for row in page.items],
    }


@router.post(
    "/suggestions",
    response={201: SatisfactionSuggestionOut, **ERRORS},
    summary="Record a suggestion received on any channel (anonymous allowed)",
)
def create_suggestion(
    request: HttpRequest, body: SatisfactionSuggestionIn
) -> tuple[int, dict[str, Any]]:
    created = services.suggestion_submit(
        user=request.user, text=body.text, channel=body.channel, customer_id=body.customer_id
    )
    return 201, _suggestion_out(
        selectors.suggestion_get(user=request.user, suggestion_id=created.pk)
    )


@router.patch(
    "/suggestions/{suggestion_id}",
    response={200: SatisfactionSuggestionOut, **ERRORS},
    summary="Review a suggestion: move it and/or write the staff note",
)
def update_suggestion(
    request: HttpRequest, suggestion_id: int, body: SatisfactionSuggestionUpdateIn
) -> dict[str, Any]:
    services.suggestion_update(
        user=request.user,
        suggestion_id=suggestion_id,
        action=body.action,
        note=body.staff_note,
    )
    return _suggestion_out(selectors.suggestion_get(user=request.user, suggestion_id=suggestion_id))


# ---------------------------------------------------------------------- improvement plans

LinkKind = Literal["ticket", "csat", "survey_answer", "suggestion"]


class SatisfactionPlanLinkIn(Schema):
    model_config = BODY

    kind: LinkKind
    target_id: BodyId = Field(
        description="The ticket's, CSAT request's, survey answer's or suggestion's id"
    )
    note: str = Field("", max_length=300, pattern=NO_NUL)


class SatisfactionPlanIn(Schema):
    model_config = BODY

    title: str = Field(min_length=1, max_length=services.MAX_PLAN_TITLE, pattern=TEXT)
    problem: str = Field(min_length=1, max_length=services.MAX_TEXT, pattern=TEXT)
    owner_id: BodyId
    deadline: BodyDay
    links: list[SatisfactionPlanLinkIn] = Field(default_factory=list, max_length=50)


class SatisfactionPlanUpdateIn(Schema):
    """Only the fields given change; title, problem, owner and deadline only while live."""

    model_config = BODY

    title: str | None = Field(None, min_length=1, max_length=services.MAX_PLAN_TITLE, pattern=TEXT)
    problem: str | None = Field(None, min_length=1, max_length=services.MAX_TEXT, pattern=TEXT)
    owner_id: BodyId | None = None
    deadline: BodyDay | None = None
    outcome: str | None = Field(None, max_length=services.MAX_TEXT, pattern=NO_NUL)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class SatisfactionPlanStatusIn(Schema):
    model_config = BODY

    action: Literal["start", "finish", "drop"]
    outcome: str = Field(
        "",
        max_length=services.MAX_TEXT,
        pattern=NO_NUL,
        description="Required to finish or drop: what came of it",
    )


class SatisfactionPlanLinkOut(Schema):
    id: int
    kind: str
    target_id: int
    label: str
    note: str
    created_at: datetime


class SatisfactionPlanOut(Schema):
    id: int
    title: str
    problem: str
    owner_id: int
    owner: str
    deadline: date
    status: Literal["proposed", "in_progress", "done", "dropped"]
    outcome: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    is_overdue: bool = Field(description="Still live after its deadline day")
    link_count: int
    links: list[SatisfactionPlanLinkOut]


class SatisfactionPlanParams(Schema):
    status: Literal["", "live", "overdue", "proposed", "in_progress", "done", "dropped"] = ""


def _plan_out(row: selectors.PlanRow) -> dict[str, Any]:
    return vars(row) | {"links": [vars(link) for link in row.links]}


def _plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    return _plan_out(selectors.plan_get(user=request.user, plan_id=plan_id))


@router.get(
    "/plans",
    response={200: list[SatisfactionPlanOut], **ERRORS},
    summary="Improvement plans by deadline (overdue ones flagged)",
)
def list_plans(request: HttpRequest, params: Query[SatisfactionPlanParams]) -> list[dict[str, Any]]:
    return [_plan_out(row) for row in selectors.plan_list(user=request.user, status=params.status)]


@router.post(
    "/plans",
    response={201: SatisfactionPlanOut, **ERRORS},
    summary="Propose an improvement plan with what prompted it",
)
def create_plan(request: HttpRequest, body: SatisfactionPlanIn) -> tuple[int, dict[str, Any]]:
    plan = services.plan_create(
        user=request.user,
        data=services.PlanData(
            title=body.title, problem=body.problem, owner_id=body.owner_id, deadline=body.deadline
        ),
        links=[services.LinkTarget(link.kind, link.target_id, link.note) for link in body.links],
    )
    return 201, _plan(request, plan.pk)


@router.get("/plans/{plan_id}", response={200: SatisfactionPlanOut, **ERRORS}, summary="A plan")
def get_plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    return _plan(request, plan_id)


@router.patch(
    "/plans/{plan_id}", response={200: SatisfactionPlanOut, **ERRORS}, summary="Edit a plan"
)
def update_plan(
    request: HttpRequest, plan_id: int, body: SatisfactionPlanUpdateIn
) -> dict[str, Any]:
    services.plan_update(user=request.user, plan_id=plan_id, changes=body.changes())
    return _plan(request, plan_id)


@router.post(
    "/plans/{plan_id}/status",
    response={200: SatisfactionPlanOut, **ERRORS},
    summary="Start, finish or drop a plan (finish and drop record the outcome)",
)
def move_plan(request: HttpRequest, plan_id: int, body: SatisfactionPlanStatusIn) -> dict[str, Any]:
    services.plan_transition(
        user=request.user, plan_id=plan_id, action=body.action, outcome=body.outcome
    )
    return _plan(request, plan_id)


@router.post(
    "/plans/{plan_id}/links",
    response={201: SatisfactionPlanOut, **ERRORS},
    summary="Link a ticket, CSAT answer, survey answer or suggestion to the plan",
)
def add_plan_link(
    request: HttpRequest, plan_id: int, body: SatisfactionPlanLinkIn
) -> tuple[int, dict[str, Any]]:
    services.plan_link_add(
        user=request.user,
        plan_id=plan_id,
        target=services.LinkTarget(body.kind, body.target_id, body.note),
    )
    return 201, _plan(request, plan_id)


@router.delete(
    "/plans/{plan_id}/links/{link_id}",
    response={200: SatisfactionPlanOut, **ERRORS},
    summary="Remove a link",
)
def remove_plan_link(request: HttpRequest, plan_id: int, link_id: int) -> dict[str, Any]:
    services.plan_link_remove(user=request.user, plan_id=plan_id, link_id=link_id)
    return _plan(request, plan_id)


# ---------------------------------------------------------------------- service KPIs


class SatisfactionKpiRowOut(Schema):
    key: int | None = Field(description="The agent's user id or the team's id; null: none")
    label: str
    opened: int
    handled: int
    first_response_count: int
    first_response_median_minutes: float | None
    first_response_mean_minutes: float | None
    resolution_median_hours: float | None
    resolution_mean_hours: float | None
    resolution_rate: float | None
    sla_with_targets: int
    sla_met: int
    sla_attainment: float | None
    csat_answers: int
    csat_average: float | None
    csat_delivered: int
    csat_response_rate: float | None
    backlog: int


class SatisfactionKpisOut(Schema):
    start: date
    end: date
    overall: SatisfactionKpiRowOut
    agents: list[SatisfactionKpiRowOut]
    teams: list[SatisfactionKpiRowOut]
    definitions: dict[str, str]


@router.get(
    "/service-kpis",
    response={200: SatisfactionKpisOut, **ERRORS},
    summary="Service KPIs per agent and team for a period (FRT, resolution, SLA, CSAT, backlog)",
)
def service_kpis(request: HttpRequest, params: Query[CsatPeriodParams]) -> dict[str, Any]:
    kpis = selectors.service_kpis(user=request.user, start=params.start, end=params.end)
    return {
        "start": kpis.start,
        "end": kpis.end,
        "overall": vars(kpis.overall),
        "agents": [vars(row) for row in kpis.agents],
        "teams": [vars(row) for row in kpis.teams],
        "definitions": kpis.definitions,
    }
