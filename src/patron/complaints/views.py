"""Complaint pages for staff: the list (stage, age, overdue step) with the process figures and
the form to record a complaint, one complaint with its timeline, the time spent in each stage
and a form for each step its stage allows, and the complaint-risk early warning (open tickets
and customers likely to escalate, with reasons, and how well the model ranks).

Each view parses the form, calls a selector or a service and renders. A refusal is shown next
to the form that asked, with its status (422 invalid input, 409 a step the stage does not allow,
404 an unknown team); a missing permission is the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from patron.account.roles import HANDLE_COMPLAINTS, VIEW_COMPLAINTS
from patron.account.services import require_permission
from patron.complaints import risk, rules, selectors, services
from patron.complaints.models import Complaint
from patron.customer.selectors import Page
from patron.errors import PatronError, ValidationFailed
from patron.service.models import Team, Ticket
from patron.web.views import patron_page

PAGE_SIZE = 50
#: The list's tabs: name -> (stages, overdue only, closed included).
TABS: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    "open": ((), False, False),
    "overdue": ((), True, False),
    **{stage: ((stage,), False, False) for stage in rules.STAGES},
    "all": ((), False, True),
}


def _page_number(request: HttpRequest) -> int:
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), 100_000)


def _whole(text: str | None, name: str, *, required: bool = True) -> int | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise ValidationFailed(f"{name}: required")
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _moment(text: str | None, name: str) -> datetime | None:
    """A ``datetime-local`` field, read in the merchant's time zone."""
    text = (text or "").strip()
    if not text:
        return None
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValidationFailed(f"{name}: expected a date and time, got '{text}'")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


# ---------------------------------------------------------------------- the list


@dataclass
class FileForm:
    values: dict[str, str] = field(default_factory=dict)
    error: PatronError | None = None


_FILE_FIELDS = ("customer_id", "channel", "subject", "matter", "order_id", "severity")


def _file(request: HttpRequest, form: FileForm) -> Complaint:
    post = request.POST
    form.values = {name: post.get(name, "") for name in _FILE_FIELDS}
    customer_id = _whole(post.get("customer_id"), "customer_id")
    assert customer_id is not None
    return services.complaint_file(
        user=request.user,
        customer_id=customer_id,
        channel=post.get("channel", ""),
        subject=post.get("subject", ""),
        matter=post.get("matter", ""),
        order_id=_whole(post.get("order_id"), "order_id", required=False),
        severity=post.get("severity", ""),
    )


@patron_page
@require_http_methods(["GET", "POST"])
def complaint_list(request: HttpRequest) -> HttpResponse:
    """Open complaints, the longest in their stage first, under the process figures; staff who
    handle complaints record new ones here."""
    require_permission(request.user, VIEW_COMPLAINTS)
    form = FileForm(values={"channel": "phone"})
    status = 200
    if request.method == "POST":
        require_permission(request.user, HANDLE_COMPLAINTS)
        try:
            complaint = _file(request, form)
        except PatronError as error:
            form.error = error
            status = error.status
        else:
            messages.success(request, _("Complaint recorded."))
            return redirect("web:complaints-detail", complaint_id=complaint.pk)
    tab = request.GET.get("tab", "open") or "open"
    if tab not in TABS:
        raise ValidationFailed(f"tab: one of {', '.join(TABS)}; got '{tab}'")
    stages, overdue, include_closed = TABS[tab]
    severity = request.GET.get("severity", "")
    number = _page_number(request)
    total, rows = selectors.complaint_list(
        user=request.user,
        filters=selectors.ComplaintFilter(
            stages=stages, severity=severity, is_overdue=overdue, include_closed=include_closed
        ),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    context = {
        "page": Page(items=tuple(rows), count=total, page=number, page_size=PAGE_SIZE),
        "stats": selectors.complaint_stats(user=request.user),
        "tab": tab,
        "tabs": ["open", "overdue", *rules.STAGES, "all"],
        "severity": severity,
        "severities": [s.value for s in rules.Severity],
        "channels": Ticket.Channel.choices,
        "form": form,
        "may_handle": request.user.has_perm(HANDLE_COMPLAINTS),
        "complaints_tab": "list",
    }
    return render(request, "complaints/list.html", context, status=status)


# ---------------------------------------------------------------------- one complaint


@dataclass
class StepForm:
    """The step forms as typed, so that an error keeps the input."""

    action: str = ""
    values: dict[str, str] = field(default_factory=dict)
    error: PatronError | None = None


def _step_input(post: QueryDict) -> services.StepInput:
    return services.StepInput(
        team_id=_whole(post.get("team_id"), "team_id", required=False),
        handler_id=_whole(post.get("handler_id"), "handler_id", required=False),
        note=post.get("note", ""),
        findings=post.get("findings", ""),
        resolution=post.get("resolution", ""),
        reason=post.get("reason", ""),
        follow_up_at=_moment(post.get("follow_up_at"), "follow_up_at"),
        notes=post.get("notes", ""),
        outcome=post.get("outcome", ""),
    )


_DONE: dict[str, Any] = {
    "assign": gettext_lazy("Assigned."),
    "propose": gettext_lazy("Resolution proposed: the customer gets it with a link to answer."),
    "accept": gettext_lazy("Recorded: the customer accepted."),
    "reject": gettext_lazy("Recorded: the customer rejected; back to the department."),
    "schedule_follow_up": gettext_lazy("Follow-up visit scheduled."),
    "complete_follow_up": gettext_lazy("Follow-up visit recorded."),
    "close": gettext_lazy("Complaint closed."),
    "withdraw": gettext_lazy("Complaint withdrawn."),
}


@patron_page
@require_http_methods(["GET", "POST"])
def complaint_detail(request: HttpRequest, complaint_id: int) -> HttpResponse:
    """One complaint: the matter, the findings and proposal, the time in each stage, the
    timeline, and a form for each step the stage allows."""
    form = StepForm()
    status = 200
    link = ""
    if request.method == "POST":
        form.action = request.POST.get("action", "")
        form.values = {
            k: str(request.POST.get(k, "")) for k in request.POST if k != "csrfmiddlewaretoken"
        }
        try:
            if form.action == "answer_link":
                link = services.complaint_answer_link_issue(
                    user=request.user, complaint_id=complaint_id
                )
            else:
                services.complaint_act(
                    user=request.user,
                    complaint_id=complaint_id,
                    action=form.action,
                    data=_step_input(request.POST),
                )
        except PatronError as error:
            if error.status == 403:
                raise
            form.error = error
            status = error.status
        else:
            if not link:
                messages.success(request, str(_DONE.get(form.action, _("Done."))))
                return redirect("web:complaints-detail", complaint_id=complaint_id)
    complaint = selectors.complaint_get(user=request.user, complaint_id=complaint_id)
    context = {
        "complaint": complaint,
        "form": form,
        "link": link,
        "teams": Team.objects.order_by("-is_escalation_target", "name"),
        "allowed": set(complaint.allowed_actions),
        "complaints_tab": "list",
        "now": timezone.now(),
    }
    return render(request, "complaints/detail.html", context, status=status)


# ---------------------------------------------------------------------- at risk


@patron_page
@require_http_methods(["GET", "POST"])
def at_risk(request: HttpRequest) -> HttpResponse:
    """Open tickets and customers most likely to escalate to a complaint, with their reasons
    and how well the model ranks on the time-based holdout; a refresh on demand."""
    require_permission(request.user, VIEW_COMPLAINTS)
    if request.method == "POST":
        require_permission(request.user, HANDLE_COMPLAINTS)
        run = risk.complaint_risk_refresh()
        messages.success(
            request,
            _("Scores refreshed: %(tickets)s open tickets, %(customers)s customers.")
            % {"tickets": run.tickets_scored, "customers": run.customers_scored},
        )
        return redirect(reverse("web:complaints-at-risk"))
    from patron.complaints.risk_model import FEATURES

    language = translation.get_language() or "en"
    view = selectors.at_risk(user=request.user, limit=25, language=language)
    is_zh = language.startswith("zh")
    weights = [
        (f.label_zh if is_zh else f.label_en, view.weights.get(f.name))
        for f in FEATURES
        if f.name in view.weights
    ]
    feature_auc = view.metrics.get("feature_auc", {}) if view.metrics else {}
    context = {
        "view": view,
        "weights": weights,
        "feature_auc": [
            (f.label_zh if is_zh else f.label_en, feature_auc.get(f.name)) for f in FEATURES
        ],
        "precision": sorted(
            ((int(k), v) for k, v in (view.metrics.get("precision_at_k") or {}).items()),
        ),
        "may_handle": request.user.has_perm(HANDLE_COMPLAINTS),
        "complaints_tab": "at_risk",
    }
    return render(request, "complaints/at_risk.html", context)
