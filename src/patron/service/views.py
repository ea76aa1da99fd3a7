"""The service desk's pages for staff: the queue (sorted by SLA urgency, filters, refreshed by
htmx every 30 seconds) and one ticket (conversation with internal notes, reply and note forms,
state buttons, claim, priority override, escalation, the SLA clocks counting down, the
customer's profile and suggested FAQ answers).

Each view parses the form, calls a selector or a service and renders; posts from the ticket
page answer with the refreshed ticket (the whole page, or its main column for htmx). A refusal
is shown above the forms with its status (409, 422); a missing permission is the 403 page.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from patron.account.roles import VIEW_TICKETS, WORK_TICKETS
from patron.account.services import require_permission
from patron.errors import PatronError
from patron.intelligence.explain import render as render_reason
from patron.service import selectors, services
from patron.service.models import Team, Ticket
from patron.web.views import patron_page

PAGE_SIZE = 50


def _filters(request: HttpRequest) -> selectors.QueueFilters:
    get = request.GET
    return selectors.QueueFilters(
        status=get.get("status", "live") or "live",
        channel=get.get("channel", ""),
        category=get.get("category", "")[:40],
        priority=get.get("priority", ""),
        grade=get.get("grade", ""),
        assignee=get.get("assignee", ""),
        team=get.get("team", "")[:40],
        q=get.get("q", "")[:200],
        breached=get.get("breached") == "1",
    )


def _is_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@patron_page
def queue(request: HttpRequest) -> HttpResponse:
    require_permission(request.user, VIEW_TICKETS)
    filters = _filters(request)
    try:
        page = max(1, min(int(request.GET.get("page", 1)), 10_000))
    except ValueError:
        page = 1
    error = ""
    try:
        rows, total = selectors.ticket_queue(
            user=request.user, filters=filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    except PatronError as refused:
        rows, total, error = [], 0, refused.message
    settings_ = selectors.desk_settings(user=request.user)
    context = {
        "rows": rows,
        "total": total,
        "page": page,
        "has_next": page * PAGE_SIZE < total,
        "filters": filters,
        "error": error,
        "channels": Ticket.Channel.choices,
        "statuses": Ticket.Status.choices,
        "priorities": Ticket.Priority.choices,
        "categories": settings_["categories"],
        "teams": settings_["teams"],
        "query": _without_page(request),
    }
    template = "service/_queue_table.html" if _is_partial(request) else "service/queue.html"
    return render(request, template, context)


def _ticket_context(request: HttpRequest, ticket_id: int, error: str = "") -> dict[str, Any]:
    view = selectors.ticket_detail(user=request.user, ticket_id=ticket_id)
    language = getattr(request, "LANGUAGE_CODE", "en") or "en"
    reasons = [
        render_reason(r, language=language, translate=_) if isinstance(r, dict) else str(r)
        for r in view.priority_reasons
    ]
    return {
        "ticket": view,
        "reasons": reasons,
        "error": error,
        "teams": Team.objects.filter(is_escalation_target=True),
        "priorities": Ticket.Priority.choices,
        "may_work": view.may_work,
    }


@patron_page
def ticket_page(request: HttpRequest, ticket_id: int) -> HttpResponse:
    context = _ticket_context(request, ticket_id)
    return render(request, "service/ticket.html", context)


def _act(request: HttpRequest, ticket_id: int) -> None:
    """Run the posted step (raises the service's refusal)."""
    post = request.POST
    step = post.get("step", "")
    user = request.user
    if step == "reply":
        services.ticket_reply(
            ticket_id,
            user=user,
            body=post.get("body", ""),
            wait_for_customer=post.get("keep_open") != "1",
        )
    elif step == "note":
        services.ticket_note(ticket_id, user=user, body=post.get("body", ""))
    elif step == "claim":
        services.ticket_claim(ticket_id, user=user)
    elif step == "priority":
        services.ticket_set_priority(
            ticket_id, user=user, priority=post.get("priority", ""), reason=post.get("reason", "")
        )
    elif step == "escalate":
        services.ticket_escalate(
            ticket_id, user=user, team_slug=post.get("team", ""), reason=post.get("reason", "")
        )
    elif step in services.STAFF_ACTIONS:
        services.ticket_act(ticket_id, step, user=user, note=post.get("note", ""))
    else:
        from patron.errors import ValidationFailed

        raise ValidationFailed(f"step {step!r} is unknown")


@patron_page
def ticket_step(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """POST one step from the ticket page; htmx gets the refreshed main column."""
    require_permission(request.user, WORK_TICKETS)
    if request.method != "POST":
        return redirect(reverse("web:service-ticket", args=[ticket_id]))
    error = ""
    status = 200
    try:
        _act(request, ticket_id)
    except PatronError as refused:
        if refused.status in (403, 404):
            raise
        error, status = refused.message, refused.status
    context = _ticket_context(request, ticket_id, error=error)
    if _is_partial(request):  # htmx swaps only 2xx answers: the refusal is in the page
        return render(request, "service/_ticket_main.html", context)
    if not error:
        return redirect(reverse("web:service-ticket", args=[ticket_id]))
    return render(request, "service/ticket.html", context, status=status)
