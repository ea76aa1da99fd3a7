"""Reads of satisfaction: the CSAT answers and their summary, surveys and their results, the
suggestion box, improvement plans, the customer's pages behind a signed link, and the service
KPIs per agent and per team (R-E7).

Each staff read checks ``VIEW_SATISFACTION``. The KPIs are a few aggregate queries over the
tickets (conditional counts and averages per group; medians from the one or two middle rows a
window query returns), never a loop over tickets. Their definitions are in docs/satisfaction.md
and on ``KpiRow``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from patron.account.models import User
from patron.account.roles import VIEW_SATISFACTION
from patron.account.services import require_permission
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE, Page
from patron.errors import NotFound, ValidationFailed
from patron.satisfaction import rules, tokens
from patron.satisfaction.models import (
    CsatRequest,
    ImprovementPlan,
    PlanLink,
    Suggestion,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    SurveyRun,
)
from patron.service.models import Team, Ticket

#: The ticket statuses that are still to be worked on (the backlog).
OPEN_STATUSES = (
    Ticket.Status.NEW,
    Ticket.Status.OPEN,
    Ticket.Status.PENDING,
    Ticket.Status.ON_HOLD,
)
MAX_PERIOD_DAYS = 366 * 3
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
TEXT_ANSWERS_SHOWN = 200


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the merchant's time zone: both days count."""
    for name, day in (("start", start), ("end", end)):
        if not EARLIEST <= day <= LATEST:
            raise ValidationFailed(
                f"{name}: a day between {EARLIEST} and {LATEST}, got {day}",
                details={"field": name},
            )
    if end < start:
        raise ValidationFailed(f"end: {end} is before start {start}", details={"field": "end"})
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ValidationFailed(
            f"end: a period is at most {MAX_PERIOD_DAYS} days", details={"field": "end"}
        )
    zone = _zone()
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last 30 days, today included."""
    today = today or timezone.localdate()
    return today - timedelta(days=29), today


def _page_bounds(page: int, page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            f"page_size: between 1 and {MAX_PAGE_SIZE}, got {page_size}",
            details={"field": "page_size"},
        )
    if not 1 <= page <= MAX_PAGE:
        raise ValidationFailed(
            f"page: between 1 and {MAX_PAGE}, got {page}", details={"field": "page"}
        )


def _username(user: Any) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


# ---------------------------------------------------------------------- CSAT


@dataclass(frozen=True)
class CsatRow:
    id: int
    ticket_id: int
    ticket_subject: str
    customer_id: int
    customer_name: str
    agent: str
    team: str
    sent_at: datetime
    answered_at: datetime | None
    score: int | None
    comment: str
    is_suppressed: bool
    is_expired: bool
    needs_follow_up: bool
    plan_ids: tuple[int, ...]


CSAT_STATUSES = ("all", "answered", "unanswered", "follow_up")


def csat_list(
    *,
    user: Any,
    status: str = "all",
    score: int | None = None,
    start: date | None = None,
    end: date | None = None,
    agent_id: int | None = None,
    team_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[CsatRow]:
    """CSAT requests, newest first. ``status``: answered, unanswered (still open or expired),
    follow_up (a score of 2 or less no improvement plan answers yet), or all; ``start``/``end``
    (dates, both included) filter on when the question was sent."""
    require_permission(user, VIEW_SATISFACTION)
    _page_bounds(page, page_size)
    if status not in CSAT_STATUSES:
        raise ValidationFailed(
            f"status: one of {', '.join(CSAT_STATUSES)}; got {status!r}",
            details={"field": "status"},
        )
    rows = CsatRequest.objects.annotate(links=Count("plan_links"))
    if status == "answered":
        rows = rows.filter(answered_at__isnull=False)
    elif status == "unanswered":
        rows = rows.filter(answered_at__isnull=True)
    elif status == "follow_up":
        rows = rows.filter(score__lte=rules.LOW_SCORE, links=0)
    if score is not None:
        rows = rows.filter(score=score)
    if start is not None or end is not None:
        low, high = period_bounds(start or date(2000, 1, 1), end or timezone.localdate())
        rows = rows.filter(sent_at__gte=low, sent_at__lt=high)
    if agent_id is not None:
        rows = rows.filter(ticket__assignee_id=agent_id)
    if team_id is not None:
        rows = rows.filter(ticket__team_id=team_id)
    total = rows.count()
    first = (page - 1) * page_size
    found = list(
        rows.select_related("ticket", "ticket__assignee", "ticket__team", "customer").order_by(
            "-sent_at", "-id"
        )[first : first + page_size]
    )
    plans: dict[int, list[int]] = defaultdict(list)
    for request_id, plan_id in PlanLink.objects.filter(
        csat_request_id__in=[r.pk for r in found]
    ).values_list("csat_request_id", "plan_id"):
        plans[request_id].append(plan_id)
    expiry = timedelta(days=tokens.csat_link_days())
    now = timezone.now()
    items = tuple(
        CsatRow(
            id=r.pk,
            ticket_id=r.ticket_id,
            ticket_subject=r.ticket.subject,
            customer_id=r.customer_id,
            customer_name=r.customer.name,
            agent=_username(r.ticket.assignee),
            team=r.ticket.team.name if r.ticket.team else "",
            sent_at=r.sent_at,
            answered_at=r.answered_at,
            score=r.score,
            comment=r.comment,
            is_suppressed=r.is_suppressed,
            is_expired=r.answered_at is None and r.sent_at + expiry < now,
            needs_follow_up=rules.needs_follow_up(r.score, linked_plans=len(plans[r.pk])),
            plan_ids=tuple(sorted(plans[r.pk])),
        )
        for r in found
    )
    return Page(items=items, count=total, page=page, page_size=page_size)


@dataclass(frozen=True)
class CsatSummary:
    start: date
    end: date
    sent: int
    delivered: int
    answered: int
    response_rate: float | None
    average: float | None
    distribution: dict[int, int]
    low: int
    needs_follow_up: int


def csat_summary(*, user: Any, start: date | None = None, end: date | None = None) -> CsatSummary:
    """The CSAT questions sent in the period (dates, both included; the last 30 days by
    default): how many went out, were answered, the response rate (answered / delivered, a
    suppressed question was never seen), the average score and the distribution of scores."""
    require_permission(user, VIEW_SATISFACTION)
    default_start, default_end = default_period()
    start, end = start or default_start, end or default_end
    low, high = period_bounds(start, end)
    sent = CsatRequest.objects.filter(sent_at__gte=low, sent_at__lt=high).annotate(
        links=Count("plan_links")
    )
    totals = sent.aggregate(
        sent=Count("pk"),
        delivered=Count("pk", filter=Q(is_suppressed=False)),
        answered=Count("pk", filter=Q(answered_at__isnull=False)),
        answered_delivered=Count("pk", filter=Q(answered_at__isnull=False, is_suppressed=False)),
        average=Avg("score"),
        low=Count("pk", filter=Q(score__lte=rules.LOW_SCORE)),
    )
    follow_up = sent.filter(score__lte=rules.LOW_SCORE, links=0).count()
    distribution = {value: 0 for value in rules.RATING_VALUES}
    for score, count in (
        CsatRequest.objects.filter(sent_at__gte=low, sent_at__lt=high, score__isnull=False)
        .values_list("score")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        distribution[int(score)] = count
    return CsatSummary(
        start=start,
        end=end,
        sent=totals["sent"],
        delivered=totals["delivered"],
        answered=totals["answered"],
        response_rate=rules.share(totals["answered_delivered"], totals["delivered"]),
        average=float(totals["average"]) if totals["average"] is not None else None,
        distribution=distribution,
        low=totals["low"],
        needs_follow_up=follow_up,
    )


@dataclass(frozen=True)
class CsatPublic:
    """What the customer's CSAT page shows."""

    token: str
    ticket_subject: str
    customer_name: str
    answered_at: datetime | None
    score: int | None
    comment: str


def csat_public(*, token: str) -> CsatPublic:
    """The page behind a CSAT link (no login: the link is the credential). A forged link is
    404, an expired one 403 (``tokens.csat_ticket``)."""
    ticket_id = tokens.csat_ticket(token)
    request = (
        CsatRequest.objects.select_related("ticket", "customer")
        .filter(ticket_id=ticket_id, token=token)
        .first()
    )
    if request is None:
        raise NotFound("this link is not valid: check that it was copied whole")
    return CsatPublic(
        token=token,
        ticket_subject=request.ticket.subject,
        customer_name=request.customer.name,
        answered_at=request.answered_at,
        score=request.score,
        comment=request.comment,
    )


# ---------------------------------------------------------------------- surveys


@dataclass(frozen=True)
class QuestionRow:
    id: int
    position: int
    kind: str
    text: str
    choices: tuple[str, ...]
    is_required: bool


@dataclass(frozen=True)
class RunRow:
    id: int
    label: str
    run_on: date
    opened_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    invited: int
    delivered: int
    answered: int

    @property
    def response_rate(self) -> float | None:
        return rules.share(self.answered, self.delivered)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class SurveyRow:
    id: int
    title: str
    intro: str
    status: str
    audience: str
    audience_grade: str
    audience_segment_id: int | None
    audience_segment_name: str
    schedule: str
    opens_on: date
    open_days: int
    next_run_on: date | None
    created_by: str
    created_at: datetime
    questions: tuple[QuestionRow, ...] = ()
    runs: tuple[RunRow, ...] = ()

    @property
    def latest_run(self) -> RunRow | None:
        return self.runs[0] if self.runs else None

    @property
    def is_editable(self) -> bool:
        return self.status == Survey.Status.DRAFT and not self.runs


def _runs(survey_ids: Iterable[int]) -> dict[int, list[RunRow]]:
    found: dict[int, list[RunRow]] = defaultdict(list)
    rows = (
        SurveyRun.objects.filter(survey_id__in=list(survey_ids))
        .annotate(
            invited=Count("invitations"),
            delivered=Count("invitations", filter=Q(invitations__is_suppressed=False)),
            answered=Count(
                "invitations",
                filter=Q(invitations__answered_at__isnull=False, invitations__is_suppressed=False),
            ),
        )
        .order_by("survey_id", "-run_on")
    )
    for run in rows:
        found[run.survey_id].append(
            RunRow(
                id=run.pk,
                label=run.label,
                run_on=run.run_on,
                opened_at=run.opened_at,
                closes_at=run.closes_at,
                closed_at=run.closed_at,
                invited=run.invited,
                delivered=run.delivered,
                answered=run.answered,
            )
        )
    return found


def _survey_row(
    survey: Survey, runs: list[RunRow], questions: tuple[QuestionRow, ...] = ()
) -> SurveyRow:
    return SurveyRow(
        id=survey.pk,
        title=survey.title,
        intro=survey.intro,
        status=survey.status,
        audience=survey.audience,
        audience_grade=survey.audience_grade,
        audience_segment_id=survey.audience_segment_id,
        audience_segment_name=survey.audience_segment.name if survey.audience_segment else "",
        schedule=survey.schedule,
        opens_on=survey.opens_on,
        open_days=survey.open_days,
        next_run_on=survey.next_run_on,
        created_by=_username(survey.created_by),
        created_at=survey.created_at,
        questions=questions,
        runs=tuple(runs),
    )


def survey_list(*, user: Any, status: str = "") -> list[SurveyRow]:
    require_permission(user, VIEW_SATISFACTION)
    surveys = Survey.objects.select_related("audience_segment", "created_by").order_by("-id")
    if status:
        if status not in Survey.Status.values:
            raise ValidationFailed(
                f"status: one of {', '.join(Survey.Status.values)}; got {status!r}",
                details={"field": "status"},
            )
        surveys = surveys.filter(status=status)
    found = list(surveys)
    runs = _runs(s.pk for s in found)
    questions: dict[int, list[QuestionRow]] = defaultdict(list)
    for q in SurveyQuestion.objects.filter(survey__in=found).order_by("survey_id", "position"):
        questions[q.survey_id].append(
            QuestionRow(q.pk, q.position, q.kind, q.text, tuple(q.choices or ()), q.is_required)
        )
    return [_survey_row(s, runs[s.pk], tuple(questions[s.pk])) for s in found]


def _questions(survey_id: int) -> tuple[QuestionRow, ...]:
    return tuple(
        QuestionRow(q.pk, q.position, q.kind, q.text, tuple(q.choices or ()), q.is_required)
        for q in SurveyQuestion.objects.filter(survey_id=survey_id).order_by("position")
    )


def survey_get(*, user: Any, survey_id: int) -> SurveyRow:
    require_permission(user, VIEW_SATISFACTION)
    survey = (
        Survey.objects.select_related("audience_segment", "created_by").filter(pk=survey_id).first()
    )
    if survey is None:
        raise NotFound(f"survey {survey_id} not found")
    return _survey_row(survey, _runs([survey.pk])[survey.pk], _questions(survey.pk))


@dataclass(frozen=True)
class TextAnswer:
    answer_id: int
    text: str
    answered_at: datetime | None


@dataclass(frozen=True)
class QuestionResult:
    question: QuestionRow
    answered: int
    rating: rules.RatingStats | None = None
    choices: tuple[tuple[str, int], ...] = ()
    texts: tuple[TextAnswer, ...] = ()


@dataclass(frozen=True)
class SurveyResults:
    survey: SurveyRow
    run: RunRow | None
    questions: tuple[QuestionResult, ...]

    @property
    def response_rate(self) -> float | None:
        return self.run.response_rate if self.run else None


def survey_results(*, user: Any, survey_id: int, run_id: int | None = None) -> SurveyResults:
    """One run's results (the latest by default): per question the answers counted, the
    rating distribution with the mean and its 95 % interval, the count of each option, the
    text answers (the latest 200); and the response rate (answered / delivered invitations)."""
    survey = survey_get(user=user, survey_id=survey_id)
    run = survey.latest_run
    if run_id is not None:
        run = next((r for r in survey.runs if r.id == run_id), None)
        if run is None:
            raise NotFound(f"run {run_id} of survey {survey_id} not found")
    if run is None:
        return SurveyResults(survey=survey, run=None, questions=())
    answers = SurveyAnswer.objects.filter(invitation__run_id=run.id)
    answered = dict(
        answers.values_list("question_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("question_id", "n")
    )
    ratings: dict[int, dict[int, int]] = defaultdict(dict)
    for question_id, rating, count in (
        answers.filter(rating__isnull=False)
        .values_list("question_id", "rating")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        ratings[question_id][int(rating)] = count
    choices: dict[int, dict[str, int]] = defaultdict(dict)
    for question_id, choice, count in (
        answers.exclude(choice="")
        .values_list("question_id", "choice")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        choices[question_id][choice] = count
    texts: dict[int, list[TextAnswer]] = defaultdict(list)
    text_ids = [q.id for q in survey.questions if q.kind == SurveyQuestion.Kind.TEXT]
    for question_id in text_ids:
        for answer_id, text, at in (
            answers.filter(question_id=question_id)
            .exclude(text="")
            .order_by("-invitation__answered_at", "-id")
            .values_list("pk", "text", "invitation__answered_at")[:TEXT_ANSWERS_SHOWN]
        ):
            texts[question_id].append(TextAnswer(answer_id, text, at))
    results = []
    for question in survey.questions:
        if question.kind == SurveyQuestion.Kind.RATING:
            results.append(
                QuestionResult(
                    question,
                    answered.get(question.id, 0),
                    rating=rules.rating_stats(ratings[question.id]),
                )
            )
        elif question.kind == SurveyQuestion.Kind.CHOICE:
            counted = choices[question.id]
            options = list(question.choices) + [c for c in counted if c not in question.choices]
            results.append(
                QuestionResult(
                    question,
                    answered.get(question.id, 0),
                    choices=tuple((option, counted.get(option, 0)) for option in options),
                )
            )
        else:
            results.append(
                QuestionResult(
                    question, answered.get(question.id, 0), texts=tuple(texts[question.id])
                )
            )
    return SurveyResults(survey=survey, run=run, questions=tuple(results))


@dataclass(frozen=True)
class SurveyPublic:
    """What the customer's survey page shows."""

    token: str
    title: str
    intro: str
    customer_name: str
    questions: tuple[QuestionRow, ...]
    answered_at: datetime | None
    closes_at: datetime
    is_closed: bool


def survey_public(*, token: str) -> SurveyPublic:
    """The page behind a survey link (no login). Forged: 404; expired: 403."""
    run_id, customer_id = tokens.survey_invitation_key(token)
    invitation = (
        SurveyInvitation.objects.select_related("run", "run__survey", "customer")
        .filter(run_id=run_id, customer_id=customer_id, token=token)
        .first()
    )
    if invitation is None:
        raise NotFound("this link is not valid: check that it was copied whole")
    run = invitation.run
    return SurveyPublic(
        token=token,
        title=run.survey.title,
        intro=run.survey.intro,
        customer_name=invitation.customer.name,
        questions=_questions(run.survey_id),
        answered_at=invitation.answered_at,
        closes_at=run.closed_at or run.closes_at,
        is_closed=run.closed_at is not None or run.closes_at <= timezone.now(),
    )


# ---------------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class SuggestionRow:
    id: int
    customer_id: int | None
    customer_name: str
    channel: str
    text: str
    created_at: datetime
    status: str
    staff_note: str
    recorded_by: str
    reviewed_by: str
    reviewed_at: datetime | None
    plan_ids: tuple[int, ...]


def _suggestion_row(s: Suggestion, plans: Iterable[int]) -> SuggestionRow:
    return SuggestionRow(
        id=s.pk,
        customer_id=s.customer_id,
        customer_name=s.customer.name if s.customer else "",
        channel=s.channel,
        text=s.text,
        created_at=s.created_at,
        status=s.status,
        staff_note=s.staff_note,
        recorded_by=_username(s.recorded_by),
        reviewed_by=_username(s.reviewed_by),
        reviewed_at=s.reviewed_at,
        plan_ids=tuple(sorted(plans)),
    )


def suggestion_list(
    *, user: Any, status: str = "", page: int = 1, page_size: int = 50
) -> Page[SuggestionRow]:
    """The suggestion box, newest first; ``status`` filters (new, reviewed, planned, declined)."""
    require_permission(user, VIEW_SATISFACTION)
    _page_bounds(page, page_size)
    rows = Suggestion.objects.select_related("customer", "recorded_by", "reviewed_by")
    if status:
        if status not in Suggestion.Status.values:
            raise ValidationFailed(
                f"status: one of {', '.join(Suggestion.Status.values)}; got {status!r}",
                details={"field": "status"},
            )
        rows = rows.filter(status=status)
    total = rows.count()
    first = (page - 1) * page_size
    found = list(rows.order_by("-created_at", "-id")[first : first + page_size])
    plans: dict[int, list[int]] = defaultdict(list)
    for suggestion_id, plan_id in PlanLink.objects.filter(
        suggestion_id__in=[s.pk for s in found]
    ).values_list("suggestion_id", "plan_id"):
        plans[suggestion_id].append(plan_id)
    return Page(
        items=tuple(_suggestion_row(s, plans[s.pk]) for s in found),
        count=total,
        page=page,
        page_size=page_size,
    )


def suggestion_get(*, user: Any, suggestion_id: int) -> SuggestionRow:
    require_permission(user, VIEW_SATISFACTION)
    found = (
        Suggestion.objects.select_related("customer", "recorded_by", "reviewed_by")
        .filter(pk=suggestion_id)
        .first()
    )
    if found is None:
        raise NotFound(f"suggestion {suggestion_id} not found")
    plans = PlanLink.objects.filter(suggestion=found).values_list("plan_id", flat=True)
    return _suggestion_row(found, plans)


# ---------------------------------------------------------------------- improvement plans


@dataclass(frozen=True)
class LinkRow:
    id: int
    kind: str
    target_id: int
    label: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class PlanRow:
    id: int
    title: str
    problem: str
    owner_id: int
    owner: str
    deadline: date
    status: str
    outcome: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    is_overdue: bool
    link_count: int
    links: tuple[LinkRow, ...] = ()


def _plan_row(plan: ImprovementPlan, today: date, links: tuple[LinkRow, ...] = ()) -> PlanRow:
    return PlanRow(
        id=plan.pk,
        title=plan.title,
        problem=plan.problem,
        owner_id=plan.owner_id,
        owner=_username(plan.owner),
        deadline=plan.deadline,
        status=plan.status,
        outcome=plan.outcome,
        created_by=_username(plan.created_by),
        created_at=plan.created_at,
        started_at=plan.started_at,
        finished_at=plan.finished_at,
        is_overdue=rules.is_overdue(status=plan.status, deadline=plan.deadline, today=today),
        link_count=getattr(plan, "link_count", len(links)),
        links=links,
    )


PLAN_FILTERS = ("", "live", "overdue", *ImprovementPlan.Status.values)


def plan_list(*, user: Any, status: str = "", today: date | None = None) -> list[PlanRow]:
    """Plans by deadline; ``status``: a status, ``live`` (proposed or in progress) or
    ``overdue`` (live and past the deadline day)."""
    require_permission(user, VIEW_SATISFACTION)
    today = today or timezone.localdate()
    if status not in PLAN_FILTERS:
        raise ValidationFailed(
            f"status: one of {', '.join(f for f in PLAN_FILTERS if f)}; got {status!r}",
            details={"field": "status"},
        )
    plans = ImprovementPlan.objects.select_related("owner", "created_by").annotate(
        link_count=Count("links")
    )
    if status == "live":
        plans = plans.filter(status__in=rules.LIVE_PLAN)
    elif status == "overdue":
        plans = plans.filter(status__in=rules.LIVE_PLAN, deadline__lt=today)
    elif status:
        plans = plans.filter(status=status)
    return [_plan_row(p, today) for p in plans.order_by("deadline", "id")]


def _link_label(link: PlanLink) -> str:
    if link.kind == PlanLink.Kind.TICKET and link.ticket is not None:
        return f"#{link.ticket_id} {link.ticket.subject}"
    if link.kind == PlanLink.Kind.CSAT and link.csat_request is not None:
        request = link.csat_request
        score = f"{request.score}/5" if request.score is not None else "—"
        return f"CSAT {score} · #{request.ticket_id} {request.comment[:60]}".strip()
    if link.kind == PlanLink.Kind.SURVEY_ANSWER and link.survey_answer is not None:
        answer = link.survey_answer
        value = answer.text or answer.choice or (str(answer.rating) if answer.rating else "")
        return f"{answer.question.text[:60]}: {value[:80]}"
    if link.kind == PlanLink.Kind.SUGGESTION and link.suggestion is not None:
        return link.suggestion.text[:100]
    return link.kind


def plan_get(*, user: Any, plan_id: int, today: date | None = None) -> PlanRow:
    require_permission(user, VIEW_SATISFACTION)
    plan = ImprovementPlan.objects.select_related("owner", "created_by").filter(pk=plan_id).first()
    if plan is None:
        raise NotFound(f"improvement plan {plan_id} not found")
    links = tuple(
        LinkRow(
            id=link.pk,
            kind=link.kind,
            target_id=int(link.target_id or 0),
            label=_link_label(link),
            note=link.note,
            created_at=link.created_at,
        )
        for link in PlanLink.objects.filter(plan=plan)
        .select_related("ticket", "csat_request", "survey_answer__question", "suggestion")
        .order_by("id")
    )
    return _plan_row(plan, today or timezone.localdate(), links)


@dataclass(frozen=True)
class OwnerChoice:
    id: int
    label: str


def plan_owner_choices(*, user: Any) -> list[OwnerChoice]:
    """Active staff who may own a plan (everyone active: an owner need not be a manager)."""
    require_permission(user, VIEW_SATISFACTION)
    return [
        OwnerChoice(u.pk, _username(u))
        for u in User.objects.filter(is_active=True).order_by("username")
    ]


# ---------------------------------------------------------------------- service KPIs


@dataclass(frozen=True)
class KpiRow:
    """One agent's, one team's or everyone's figures for a period P = [start, end].

    - ``opened``: tickets opened in P.
    - ``handled``: tickets resolved in P (resolved = ``solved_at``, else ``resolved_at`` for
      imported history).
    - ``first_response_*``: minutes from ``opened_at`` to ``first_response_at``, over the
      tickets whose first response was in P (``first_response_count`` of them).
    - ``resolution_*``: hours from ``opened_at`` to resolved, over the tickets handled in P.
    - ``resolution_rate``: of the tickets opened in P, the share resolved by the end of P.
    - ``sla_attainment``: of the tickets handled in P that have at least one target
      (``sla_with_targets``), the share that met all of theirs: no first-reply breach where a
      first-reply target is set, no resolution breach where a resolution target is set.
    - ``csat_average``: mean ``Ticket.satisfaction`` of the tickets handled in P that have one
      (``csat_answers``); ``csat_response_rate``: of the CSAT questions delivered about them,
      the share answered.
    - ``backlog``: tickets open now (new, open, pending, on hold), whatever the period.
    """

    key: int | None
    label: str
    opened: int = 0
    handled: int = 0
    first_response_count: int = 0
    first_response_median_minutes: float | None = None
    first_response_mean_minutes: float | None = None
    resolution_median_hours: float | None = None
    resolution_mean_hours: float | None = None
    resolution_rate: float | None = None
    sla_with_targets: int = 0
    sla_met: int = 0
    sla_attainment: float | None = None
    csat_answers: int = 0
    csat_average: float | None = None
    csat_delivered: int = 0
    csat_response_rate: float | None = None
    backlog: int = 0


@dataclass(frozen=True)
class ServiceKpis:
    start: date
    end: date
    overall: KpiRow
    agents: tuple[KpiRow, ...] = ()
    teams: tuple[KpiRow, ...] = ()
    definitions: dict[str, str] = field(default_factory=dict)


KPI_DEFINITIONS = {
    "opened": "Tickets opened in the period.",
    "handled": "Tickets resolved (solved) in the period.",
    "first_response": "Minutes from opening to the first response, for tickets first "
    "answered in the period: median and mean.",
    "resolution_time": "Hours from opening to resolution, for tickets resolved in the "
    "period: median and mean.",
    "resolution_rate": "Of the tickets opened in the period, the share resolved by its end.",
    "sla_attainment": "Of the tickets resolved in the period that have SLA targets, the share "
    "with no breach of any target they have.",
    "csat_average": "Mean satisfaction (1–5) of the tickets resolved in the period.",
    "csat_response_rate": "Of the CSAT questions delivered about those tickets, the share "
    "answered.",
    "backlog": "Tickets open now (new, open, pending, on hold).",
}

#: The grouping columns: everyone (a constant), per agent, per team.
_GROUPS = {"overall": None, "agent": "assignee_id", "team": "team_id"}


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # a backend that hands durations over as microseconds


def _ticket_base() -> QuerySet[Ticket]:
    return Ticket.objects.annotate(kpi_resolved=Coalesce("solved_at", "resolved_at"))


def _grouped(queryset: QuerySet[Ticket], group: str) -> QuerySet[Any]:
    return queryset.annotate(kpi_group=F(group)).values("kpi_group").order_by()


def _medians(
    queryset: QuerySet[Ticket], group: str | None, duration: Any
) -> dict[Any, float | None]:
    """Median of ``duration`` per group: one window query numbers each group's rows in order
    and keeps the one (odd count) or two (even count) middle rows; their mean is the median."""
    partition = [F(group)] if group is not None else []
    rows = (
        queryset.annotate(
            kpi_duration=duration,
            kpi_group=F(group) if group is not None else Value(0),
        )
        .annotate(
            kpi_rank=Window(
                RowNumber(), partition_by=partition or None, order_by=[F("kpi_duration").asc()]
            ),
            kpi_count=Window(Count("pk"), partition_by=partition or None),
        )
        .filter(
            kpi_rank__gte=(F("kpi_count") + 1) / 2,
            kpi_rank__lte=(F("kpi_count") + 2) / 2,
        )
        .values_list("kpi_group", "kpi_duration")
    )
    middles: dict[Any, list[float]] = defaultdict(list)
    for key, value in rows:
        seconds = _seconds(value)
        if seconds is not None:
            middles[key].append(seconds)
    return {key: rules.middle_mean(values) for key, values in middles.items()}


def _kpi_rows(group: str | None, low: datetime, high: datetime) -> dict[Any, dict[str, Any]]:
    opened = Q(opened_at__gte=low, opened_at__lt=high)
    handled = Q(kpi_resolved__gte=low, kpi_resolved__lt=high)
    responded = Q(first_response_at__gte=low, first_response_at__lt=high)
    has_target = Q(first_reply_target__isnull=False) | Q(resolution_target__isnull=False)
    met = (Q(first_reply_target__isnull=True) | Q(first_reply_breached_at__isnull=True)) & (
        Q(resolution_target__isnull=True) | Q(resolution_breached_at__isnull=True)
    )
    delivered = Q(csat_request__isnull=False, csat_request__is_suppressed=False)
    frt = ExpressionWrapper(F("first_response_at") - F("opened_at"), output_field=DurationField())
    resolution = ExpressionWrapper(F("kpi_resolved") - F("opened_at"), output_field=DurationField())
    base = _ticket_base().filter(opened | handled | responded)
    aggregates = dict(
        opened=Count("pk", filter=opened),
        opened_resolved=Count("pk", filter=opened & Q(kpi_resolved__lt=high)),
        handled=Count("pk", filter=handled),
        frt_count=Count("pk", filter=responded),
        frt_mean=Avg(frt, filter=responded),
        resolution_mean=Avg(resolution, filter=handled),
        sla_total=Count("pk", filter=handled & has_target),
        sla_met=Count("pk", filter=handled & has_target & met),
        csat_answers=Count("pk", filter=handled & Q(satisfaction__isnull=False)),
        csat_average=Avg("satisfaction", filter=handled),
        csat_delivered=Count("pk", filter=handled & delivered),
        csat_answered=Count(
            "pk", filter=handled & delivered & Q(csat_request__answered_at__isnull=False)
        ),
    )
    out: dict[Any, dict[str, Any]]
    if group is None:
        out = {0: base.aggregate(**aggregates)}
    else:
        figures = _grouped(base, group).annotate(**aggregates)
        out = {row["kpi_group"]: dict(row) for row in figures}
    frt_median = _medians(_ticket_base().filter(responded), group, frt)
    resolution_median = _medians(_ticket_base().filter(handled), group, resolution)
    open_now = Ticket.objects.filter(status__in=OPEN_STATUSES)
    backlog: dict[Any, int] = (
        {0: open_now.count()}
        if group is None
        else dict(_grouped(open_now, group).annotate(n=Count("pk")).values_list("kpi_group", "n"))
    )
    for key in set(out) | set(backlog):
        row = out.setdefault(key, {})
        row["frt_median"] = frt_median.get(key)
        row["resolution_median"] = resolution_median.get(key)
        row["backlog"] = backlog.get(key, 0)
    return out


def _kpi_row(key: Any, label: str, row: dict[str, Any]) -> KpiRow:
    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 2)

    def hours(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 3600, 2)

    average = row.get("csat_average")
    return KpiRow(
        key=key,
        label=label,
        opened=row.get("opened", 0),
        handled=row.get("handled", 0),
        first_response_count=row.get("frt_count", 0),
        first_response_median_minutes=minutes(row.get("frt_median")),
        first_response_mean_minutes=minutes(_seconds(row.get("frt_mean"))),
        resolution_median_hours=hours(row.get("resolution_median")),
        resolution_mean_hours=hours(_seconds(row.get("resolution_mean"))),
        resolution_rate=rules.share(row.get("opened_resolved", 0), row.get("opened", 0)),
        sla_with_targets=row.get("sla_total", 0),
        sla_met=row.get("sla_met", 0),
        sla_attainment=rules.share(row.get("sla_met", 0), row.get("sla_total", 0)),
        csat_answers=row.get("csat_answers", 0),
        csat_average=round(float(average), 3) if average is not None else None,
        csat_delivered=row.get("csat_delivered", 0),
        csat_response_rate=rules.share(row.get("csat_answered", 0), row.get("csat_delivered", 0)),
        backlog=row.get("backlog", 0),
    )


def service_kpis(*, user: Any, start: date | None = None, end: date | None = None) -> ServiceKpis:
    """The service KPIs for the period (dates, both included; the last 30 days by default):
    everyone's, per agent (the ticket's assignee) and per team (the ticket's team). Tickets
    with no assignee or no team are grouped as "unassigned" / "no team" (key ``None``)."""
    require_permission(user, VIEW_SATISFACTION)
    default_start, default_end = default_period()
    start, end = start or default_start, end or default_end
    low, high = period_bounds(start, end)
    overall = _kpi_rows(None, low, high).get(0, {})
    agents = _kpi_rows("assignee_id", low, high)
    teams = _kpi_rows("team_id", low, high)
    agent_names = {u.pk: _username(u) for u in User.objects.filter(pk__in=[k for k in agents if k])}
    team_names = dict(Team.objects.filter(pk__in=[k for k in teams if k]).values_list("pk", "name"))
    agent_rows = sorted(
        (_kpi_row(k, agent_names.get(k, "unassigned") if k else "unassigned", r)
         for k, r in agents.items()),
        key=lambda row: (row.key is None, row.label),
    )  # fmt: skip
    team_rows = sorted(
        (_kpi_row(k, team_names.get(k, "no team") if k else "no team", r)
         for k, r in teams.items()),
        key=lambda row: (row.key is None, row.label),
    )  # fmt: skip
    return ServiceKpis(
        start=start,
        end=end,
        overall=_kpi_row(None, "all", overall),
        agents=tuple(agent_rows),
        teams=tuple(team_rows),
        definitions=dict(KPI_DEFINITIONS),
    )
