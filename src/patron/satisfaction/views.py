"""Satisfaction pages for staff under ``/service/``: CSAT answers (with the low ones that need a
follow-up), surveys (list, create and edit, results with charts), the suggestion box,
improvement plans (overdue ones in red) and the service KPIs per agent and team (R-E6, R-E7).

Each view parses the form, calls a selector or a service and renders. A refusal is shown next
to the form that asked, with its status (422 invalid, 409 a state that does not allow it); a
missing permission is the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patron.account.roles import MANAGE_PLANS, MANAGE_SURVEYS, VIEW_SATISFACTION
from patron.account.services import require_permission
from patron.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.satisfaction import rules, selectors, services
from patron.satisfaction.models import (
    ImprovementPlan,
    PlanLink,
    Suggestion,
    Survey,
    SurveyQuestion,
)
from patron.web import charts
from patron.web.templatetags.patron_web import choice
from patron.web.views import patron_page

PAGE_SIZE = 50
QUESTION_ROWS = 8


def _page_number(request: HttpRequest) -> int:
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), 100_000)


def _whole(text: Any, name: str) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a date YYYY-MM-DD, got '{text}'") from None


def _optional_day(request: HttpRequest, name: str) -> date | None:
    text = request.GET.get(name, "").strip()
    return _day(text, name) if text else None


def _period(request: HttpRequest) -> tuple[date, date]:
    default_start, default_end = selectors.default_period()
    return (
        _optional_day(request, "start") or default_start,
        _optional_day(request, "end") or default_end,
    )


def _live_plans(user: Any) -> list[selectors.PlanRow]:
    return selectors.plan_list(user=user, status="live") if user.has_perm(MANAGE_PLANS) else []


def _link_from_post(request: HttpRequest, kind: str, target_name: str) -> int:
    """Link what the row names to the plan chosen; returns the plan's id."""
    require_permission(request.user, MANAGE_PLANS)
    plan_id = _whole(request.POST.get("plan", ""), "plan")
    services.plan_link_add(
        user=request.user,
        plan_id=plan_id,
        target=services.LinkTarget(
            kind,
            _whole(request.POST.get(target_name, ""), target_name),
            request.POST.get("note", ""),
        ),
    )
    return plan_id


# ---------------------------------------------------------------------- CSAT


@patron_page
@require_http_methods(["GET", "POST"])
def csat_list(request: HttpRequest) -> HttpResponse:
    """CSAT answers with the period's summary; a manager links a low answer to a plan."""
    require_permission(request.user, VIEW_SATISFACTION)
    error: PatronError | None = None
    failed_row = None
    if request.method == "POST":
        try:
            failed_row = request.POST.get("request", "")
            plan_id = _link_from_post(request, PlanLink.Kind.CSAT, "request")
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = exc
        else:
            messages.success(request, _("Linked to plan #%(id)s.") % {"id": plan_id})
            return redirect(request.get_full_path())
    start, end = _period(request)
    status = request.GET.get("status", "all") or "all"
    score_text = request.GET.get("score", "").strip()
    page = selectors.csat_list(
        user=request.user,
        status=status,
        score=_whole(score_text, "score") if score_text else None,
        start=start,
        end=end,
        page=_page_number(request),
        page_size=PAGE_SIZE,
    )
    context = {
        "page": page,
        "summary": selectors.csat_summary(user=request.user, start=start, end=end),
        "status": status,
        "statuses": [
            ("all", _("All")),
            ("answered", _("Answered")),
            ("unanswered", _("Not answered")),
            ("follow_up", _("Needs follow-up")),
        ],
        "score": score_text,
        "start": start,
        "end": end,
        "plans": _live_plans(request.user),
        "error": error,
        "failed_row": failed_row,
        "satisfaction_tab": "csat",
    }
    return render(request, "satisfaction/csat.html", context, status=error.status if error else 200)


# ---------------------------------------------------------------------- surveys


@patron_page
@require_http_methods(["GET", "POST"])
def survey_list(request: HttpRequest) -> HttpResponse:
    """Surveys with their schedule and latest run; managers schedule, unschedule and close."""
    require_permission(request.user, VIEW_SATISFACTION)
    error: PatronError | None = None
    if request.method == "POST":
        require_permission(request.user, MANAGE_SURVEYS)
        action = request.POST.get("action", "")
        try:
            survey_id = _whole(request.POST.get("survey", ""), "survey")
            if action == "schedule":
                survey = services.survey_schedule(user=request.user, survey_id=survey_id)
                message = _("Survey #%(id)s scheduled: it opens on %(day)s.") % {
                    "id": survey_id,
                    "day": survey.next_run_on,
                }
            elif action == "unschedule":
                services.survey_unschedule(user=request.user, survey_id=survey_id)
                message = _("Survey #%(id)s is a draft again.") % {"id": survey_id}
            elif action == "close":
                services.survey_close(user=request.user, survey_id=survey_id)
                message = _("Survey #%(id)s closed.") % {"id": survey_id}
            else:
                raise ValidationFailed(
                    f"action: one of schedule, unschedule, close; got '{action}'"
                )
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = exc
        else:
            messages.success(request, message)
            return redirect("web:satisfaction-surveys")
    context = {
        "surveys": selectors.survey_list(user=request.user),
        "may_manage": request.user.has_perm(MANAGE_SURVEYS),
        "error": error,
        "satisfaction_tab": "surveys",
    }
    return render(
        request, "satisfaction/surveys.html", context, status=error.status if error else 200
    )


@dataclass
class QuestionRowForm:
    kind: str = SurveyQuestion.Kind.RATING
    text: str = ""
    choices: str = ""
    is_required: bool = True


@dataclass
class SurveyForm:
    title: str = ""
    intro: str = ""
    audience: str = Survey.Audience.ALL
    audience_grade: str = ""
    audience_segment: str = ""
    schedule: str = Survey.Schedule.ONCE
    opens_on: str = ""
    open_days: str = "14"
    questions: list[QuestionRowForm] = field(default_factory=list)

    @classmethod
    def from_post(cls, data: QueryDict) -> SurveyForm:
        rows = []
        count = _whole(data.get("rows", QUESTION_ROWS) or QUESTION_ROWS, "rows")
        for i in range(min(max(count, 0), rules.MAX_QUESTIONS + QUESTION_ROWS)):
            rows.append(
                QuestionRowForm(
                    kind=data.get(f"kind_{i}", SurveyQuestion.Kind.RATING),
                    text=data.get(f"text_{i}", ""),
                    choices=data.get(f"choices_{i}", ""),
                    is_required=data.get(f"required_{i}") == "on",
                )
            )
        return cls(
            title=data.get("title", ""),
            intro=data.get("intro", ""),
            audience=data.get("audience", Survey.Audience.ALL),
            audience_grade=data.get("audience_grade", ""),
            audience_segment=data.get("audience_segment", ""),
            schedule=data.get("schedule", Survey.Schedule.ONCE),
            opens_on=data.get("opens_on", ""),
            open_days=data.get("open_days", "14"),
            questions=rows,
        )

    @classmethod
    def from_survey(cls, survey: selectors.SurveyRow) -> SurveyForm:
        rows = [
            QuestionRowForm(q.kind, q.text, "\n".join(q.choices), q.is_required)
            for q in survey.questions
        ]
        return cls(
            title=survey.title,
            intro=survey.intro,
            audience=survey.audience,
            audience_grade=survey.audience_grade,
            audience_segment=str(survey.audience_segment_id or ""),
            schedule=survey.schedule,
            opens_on=survey.opens_on.isoformat(),
            open_days=str(survey.open_days),
            questions=rows,
        )

    def padded(self) -> SurveyForm:
        """At least ``QUESTION_ROWS`` rows, and two empty ones after the last used."""
        used = [q for q in self.questions if q.text.strip()]
        self.questions = used + [
            QuestionRowForm() for _ in range(max(QUESTION_ROWS - len(used), 2))
        ]
        return self

    def data(self) -> services.SurveyData:
        segment = self.audience_segment.strip()
        return services.SurveyData(
            title=self.title,
            intro=self.intro,
            audience=self.audience,
            audience_grade=self.audience_grade,
            audience_segment_id=_whole(segment, "audience_segment_id") if segment else None,
            schedule=self.schedule,
            opens_on=_day(self.opens_on, "opens_on"),
            open_days=_whole(self.open_days, "open_days"),
            questions=[
                {
                    "kind": q.kind,
                    "text": q.text,
                    "choices": [c for c in q.choices.splitlines() if c.strip()],
                    "is_required": q.is_required,
                }
                for q in self.questions
                if q.text.strip()
            ],
        )


def _survey_form_context(request: HttpRequest, form: SurveyForm, **more: Any) -> dict[str, Any]:
    from patron.marketing.models import Segment
    from patron.scoring.models import Grade

    return {
        "form": form,
        "audiences": Survey.Audience.choices,
        "schedules": Survey.Schedule.choices,
        "grades": Grade.choices,
        "segments": list(Segment.objects.order_by("name").values_list("pk", "name")),
        "kinds": SurveyQuestion.Kind.choices,
        "satisfaction_tab": "surveys",
        **more,
    }


@patron_page
@require_http_methods(["GET", "POST"])
def survey_edit(request: HttpRequest, survey_id: int | None = None) -> HttpResponse:
    """Create a survey, or edit a draft that has never opened (others are shown read-only)."""
    require_permission(request.user, VIEW_SATISFACTION)
    survey = selectors.survey_get(user=request.user, survey_id=survey_id) if survey_id else None
    may_edit = request.user.has_perm(MANAGE_SURVEYS) and (survey is None or survey.is_editable)
    if request.method == "GET":
        form = SurveyForm.from_survey(survey) if survey else SurveyForm(
            opens_on=timezone.localdate().isoformat()
        )  # fmt: skip
        context = _survey_form_context(request, form.padded(), survey=survey, may_edit=may_edit)
        return render(request, "satisfaction/survey_edit.html", context)
    require_permission(request.user, MANAGE_SURVEYS)
    form = SurveyForm.from_post(request.POST)
    try:
        if survey is None:
            saved = services.survey_create(user=request.user, data=form.data())
        else:
            saved = services.survey_update(user=request.user, survey_id=survey.id, data=form.data())
    except (ValidationFailed, Conflict) as error:
        details = error.details if isinstance(error.details, dict) else {}
        context = _survey_form_context(
            request,
            form.padded(),
            survey=survey,
            may_edit=may_edit,
            error=error.message,
            invalid=str(details.get("field", "")),
        )
        return render(request, "satisfaction/survey_edit.html", context, status=error.status)
    messages.success(request, _("Survey #%(id)s saved.") % {"id": saved.pk})
    return redirect("web:satisfaction-surveys")


def _rating_chart(stats: rules.RatingStats) -> dict[str, Any]:
    labels = [f"{value} ★" for value in rules.RATING_VALUES]
    counts = [stats.distribution.get(value, 0) for value in rules.RATING_VALUES]
    return charts.bars(labels, [(_("Answers"), counts)], y_name=_("Answers"))


def _choice_chart(choices: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    return charts.bars(
        [c for c, _n in choices], [(_("Answers"), [n for _c, n in choices])], y_name=_("Answers")
    )


@patron_page
@require_http_methods(["GET", "POST"])
def survey_results(request: HttpRequest, survey_id: int) -> HttpResponse:
    """A run's results: the response rate, per question a chart (ratings with the mean and its
    95 % interval, option counts) or the text answers; a manager links an answer to a plan."""
    require_permission(request.user, VIEW_SATISFACTION)
    error: PatronError | None = None
    if request.method == "POST":
        try:
            plan_id = _link_from_post(request, PlanLink.Kind.SURVEY_ANSWER, "answer")
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = exc
        else:
            messages.success(request, _("Linked to plan #%(id)s.") % {"id": plan_id})
            return redirect(request.get_full_path())
    run_text = request.GET.get("run", "").strip()
    results = selectors.survey_results(
        user=request.user,
        survey_id=survey_id,
        run_id=_whole(run_text, "run") if run_text else None,
    )
    panels = []
    for number, result in enumerate(results.questions):
        chart = None
        if result.rating is not None:
            chart = _rating_chart(result.rating)
        elif result.question.kind == SurveyQuestion.Kind.CHOICE:
            chart = _choice_chart(result.choices)
        panels.append(
            {
                "result": result,
                "chart": chart,
                "chart_id": f"chart-q{number}",
                "script_id": f"chart-q{number}-data",
            }
        )
    context = {
        "results": results,
        "panels": panels,
        "plans": _live_plans(request.user),
        "error": error,
        "satisfaction_tab": "surveys",
    }
    return render(
        request, "satisfaction/survey_results.html", context, status=error.status if error else 200
    )


# ---------------------------------------------------------------------- suggestions


@patron_page
@require_http_methods(["GET", "POST"])
def suggestion_list(request: HttpRequest) -> HttpResponse:
    """The suggestion box: record one (staff), review, plan or decline (managers)."""
    require_permission(request.user, VIEW_SATISFACTION)
    status = request.GET.get("status", "")
    error: PatronError | None = None
    form = {"text": "", "channel": Suggestion.Channel.PHONE, "customer": ""}
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "record":
                form = {k: request.POST.get(k, "") for k in form}
                customer = form["customer"].strip()
                created = services.suggestion_submit(
                    user=request.user,
                    text=form["text"],
                    channel=form["channel"],
                    customer_id=_whole(customer, "customer") if customer else None,
                )
                message = _("Suggestion #%(id)s recorded.") % {"id": created.pk}
            elif action == "link":
                plan_id = _link_from_post(request, PlanLink.Kind.SUGGESTION, "suggestion")
                message = _("Linked to plan #%(id)s.") % {"id": plan_id}
            else:
                require_permission(request.user, MANAGE_PLANS)
                suggestion_id = _whole(request.POST.get("suggestion", ""), "suggestion")
                services.suggestion_update(
                    user=request.user,
                    suggestion_id=suggestion_id,
                    action=action if action in ("review", "plan", "decline") else None,
                    note=request.POST.get("note"),
                )
                message = _("Suggestion #%(id)s updated.") % {"id": suggestion_id}
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = exc
        else:
            messages.success(request, message)
            return redirect(request.get_full_path())
    page = selectors.suggestion_list(
        user=request.user, status=status, page=_page_number(request), page_size=PAGE_SIZE
    )
    context = {
        "page": page,
        "status": status,
        "statuses": Suggestion.Status.choices,
        "channels": Suggestion.Channel.choices,
        "transitions": rules.SUGGESTION_TRANSITIONS,
        "may_manage": request.user.has_perm(MANAGE_PLANS),
        "plans": _live_plans(request.user),
        "form": form,
        "error": error,
        "satisfaction_tab": "suggestions",
    }
    return render(
        request, "satisfaction/suggestions.html", context, status=error.status if error else 200
    )


# ---------------------------------------------------------------------- improvement plans


def _plan_status_choices() -> list[tuple[str, str]]:
    return [(value, choice(label)) for value, label in ImprovementPlan.Status.choices]


@patron_page
@require_http_methods(["GET", "POST"])
def plan_list(request: HttpRequest) -> HttpResponse:
    """Plans by deadline, overdue ones in red; managers propose new ones."""
    require_permission(request.user, VIEW_SATISFACTION)
    status = request.GET.get("status", "")
    error: PatronError | None = None
    form = {"title": "", "problem": "", "owner": str(request.user.pk), "deadline": ""}
    if request.method == "POST":
        require_permission(request.user, MANAGE_PLANS)
        form = {k: request.POST.get(k, "") for k in form}
        try:
            plan = services.plan_create(
                user=request.user,
                data=services.PlanData(
                    title=form["title"],
                    problem=form["problem"],
                    owner_id=_whole(form["owner"], "owner_id"),
                    deadline=_day(form["deadline"], "deadline"),
                ),
            )
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = exc
        else:
            messages.success(request, _("Plan #%(id)s proposed.") % {"id": plan.pk})
            return redirect("web:satisfaction-plan", plan_id=plan.pk)
    context = {
        "plans": selectors.plan_list(user=request.user, status=status),
        "status": status,
        "filters": [
            ("", _("All")),
            ("live", _("Live")),
            ("overdue", _("Overdue")),
            *_plan_status_choices(),
        ],
        "owners": selectors.plan_owner_choices(user=request.user),
        "may_manage": request.user.has_perm(MANAGE_PLANS),
        "form": form,
        "error": error,
        "satisfaction_tab": "plans",
    }
    return render(
        request, "satisfaction/plans.html", context, status=error.status if error else 200
    )


def _plan_post(request: HttpRequest, plan_id: int) -> str:
    action = request.POST.get("action", "")
    if action in ("start", "finish", "drop"):
        services.plan_transition(
            user=request.user,
            plan_id=plan_id,
            action=action,
            outcome=request.POST.get("outcome", ""),
        )
        return _("Plan #%(id)s updated.") % {"id": plan_id}
    if action == "edit":
        changes: dict[str, Any] = {
            "title": request.POST.get("title", ""),
            "problem": request.POST.get("problem", ""),
            "owner_id": _whole(request.POST.get("owner", ""), "owner_id"),
            "deadline": _day(request.POST.get("deadline", ""), "deadline"),
        }
        services.plan_update(user=request.user, plan_id=plan_id, changes=changes)
        return _("Plan #%(id)s saved.") % {"id": plan_id}
    if action == "outcome":
        services.plan_update(
            user=request.user, plan_id=plan_id, changes={"outcome": request.POST.get("outcome", "")}
        )
        return _("Plan #%(id)s saved.") % {"id": plan_id}
    if action == "link":
        services.plan_link_add(
            user=request.user,
            plan_id=plan_id,
            target=services.LinkTarget(
                request.POST.get("kind", ""),
                _whole(request.POST.get("target", ""), "target_id"),
                request.POST.get("note", ""),
            ),
        )
        return _("Link added.")
    if action == "unlink":
        services.plan_link_remove(
            user=request.user, plan_id=plan_id, link_id=_whole(request.POST.get("link", ""), "link")
        )
        return _("Link removed.")
    raise ValidationFailed(
        f"action: one of start, finish, drop, edit, outcome, link, unlink; got '{action}'"
    )


@patron_page
@require_http_methods(["GET", "POST"])
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    """One plan: what prompted it, its owner and deadline, moving it on."""
    require_permission(request.user, VIEW_SATISFACTION)
    error: PatronError | None = None
    if request.method == "POST":
        require_permission(request.user, MANAGE_PLANS)
        try:
            message = _plan_post(request, plan_id)
        except (ValidationFailed, Conflict, NotFound) as exc:
            error = exc
        else:
            messages.success(request, message)
            return redirect("web:satisfaction-plan", plan_id=plan_id)
    plan = selectors.plan_get(user=request.user, plan_id=plan_id)
    context = {
        "plan": plan,
        "actions": sorted(rules.PLAN_TRANSITIONS.get(plan.status, {})),
        "is_live": plan.status in rules.LIVE_PLAN,
        "owners": selectors.plan_owner_choices(user=request.user),
        "kinds": PlanLink.Kind.choices,
        "may_manage": request.user.has_perm(MANAGE_PLANS),
        "error": error,
        "satisfaction_tab": "plans",
    }
    return render(request, "satisfaction/plan.html", context, status=error.status if error else 200)


# ---------------------------------------------------------------------- service KPIs


def kpi_charts(kpis: selectors.ServiceKpis) -> dict[str, dict[str, Any]]:
    """The KPI page's charts as ECharts options: per agent the median first response and the
    CSAT average, and the backlog per team."""
    agents = [row for row in kpis.agents if row.key is not None]
    names = [row.label for row in agents]
    return {
        "frt": charts.bars(
            names,
            [
                (
                    _("First response, median (min)"),
                    [r.first_response_median_minutes for r in agents],
                )
            ],
            y_name=_("minutes"),
        ),
        "csat": charts.bars(
            names, [(_("CSAT average (1–5)"), [r.csat_average for r in agents])], y_name="1–5"
        ),
        "backlog": charts.bars(
            [row.label for row in kpis.teams],
            [(_("Open tickets now"), [row.backlog for row in kpis.teams])],
            y_name=_("tickets"),
        ),
    }


@patron_page
@require_GET
def kpi_dashboard(request: HttpRequest) -> HttpResponse:
    """Agent and team KPIs for a period (the last 30 days by default)."""
    require_permission(request.user, VIEW_SATISFACTION)
    start, end = _period(request)
    kpis = selectors.service_kpis(user=request.user, start=start, end=end)
    context = {
        "kpis": kpis,
        "charts": kpi_charts(kpis),
        "start": start,
        "end": end,
        "satisfaction_tab": "kpis",
        "csat_url": reverse("web:satisfaction-csat"),
    }
    return render(request, "satisfaction/kpis.html", context)
