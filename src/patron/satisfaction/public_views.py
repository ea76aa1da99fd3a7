"""The customers' pages, no login: ``/csat/<token>/`` (rate a solved ticket, once),
``/survey/<token>/`` (answer a survey, once) and ``/suggest/`` (the suggestion box, anonymous
allowed, a few per address and hour).

The signed link is the credential (``patron.satisfaction.tokens``). A bad link is a 404 page,
an expired one a 403 page, never an error 500. The pages are never cached and not indexed;
forms carry CSRF tokens like every other form.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from patron.errors import PatronError
from patron.satisfaction import selectors, services, tokens
from patron.satisfaction.models import Suggestion


def _noindex(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = "noindex"
    return response


def _link_error(request: HttpRequest, error: PatronError, *, days: int) -> HttpResponse:
    if error.status == 403:
        title = _("This link has expired")
        message = _("Links to this question last %(days)s days.") % {"days": days}
    else:
        title = _("This link does not work")
        message = _("Check that the link was copied whole, with nothing added or cut off.")
    context = {"status": error.status, "title": title, "message": message}
    return _noindex(render(request, "satisfaction/public_error.html", context, status=error.status))


@never_cache
@require_http_methods(["GET", "POST"])
def csat_page(request: HttpRequest, token: str) -> HttpResponse:
    """Rate the service on a solved ticket: 1–5 stars and an optional comment, once."""
    try:
        view = selectors.csat_public(token=token)
    except PatronError as error:
        return _link_error(request, error, days=tokens.csat_link_days())
    failure: PatronError | None = None
    typed = {"score": "", "comment": ""}
    if request.method == "POST" and view.answered_at is None:
        typed = {"score": request.POST.get("score", ""), "comment": request.POST.get("comment", "")}
        try:
            services.csat_answer(token=token, score=typed["score"], comment=typed["comment"])
        except PatronError as error:
            if error.status in (403, 404):
                return _link_error(request, error, days=tokens.csat_link_days())
            failure = error
        else:
            return redirect(request.path)
    context = {"view": view, "failure": failure, "typed": typed, "stars": range(5, 0, -1)}
    status = failure.status if failure else 200
    return _noindex(render(request, "satisfaction/public_csat.html", context, status=status))


def _survey_typed(request: HttpRequest, view: selectors.SurveyPublic) -> dict[str, str]:
    return {f"q{q.id}": request.POST.get(f"q{q.id}", "") for q in view.questions}


@never_cache
@require_http_methods(["GET", "POST"])
def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    """Answer a survey, once, while its run is open."""
    try:
        view = selectors.survey_public(token=token)
    except PatronError as error:
        return _link_error(request, error, days=tokens.survey_link_days())
    failure: PatronError | None = None
    typed: dict[str, str] = {}
    if request.method == "POST" and view.answered_at is None and not view.is_closed:
        typed = _survey_typed(request, view)
        try:
            services.survey_answer(token=token, answers=typed)
        except PatronError as error:
            if error.status in (403, 404):
                return _link_error(request, error, days=tokens.survey_link_days())
            failure = error
        else:
            return redirect(request.path)
    invalid = ""
    if failure is not None and isinstance(failure.details, dict):
        invalid = str(failure.details.get("field", ""))
    rows = [
        {
            "q": q,
            "key": f"q{q.id}",
            "value": typed.get(f"q{q.id}", ""),
            "is_invalid": invalid == f"q{q.id}",
        }
        for q in view.questions
    ]
    context: dict[str, Any] = {
        "view": view,
        "failure": failure,
        "rows": rows,
        "ratings": [str(value) for value in range(1, 6)],
    }
    status = failure.status if failure else 200
    return _noindex(render(request, "satisfaction/public_survey.html", context, status=status))


def _client_address(request: HttpRequest) -> str:
    """The visitor's address as the server saw it (a proxy in front sets REMOTE_ADDR right
    for the WSGI server; X-Forwarded-For is not trusted, anyone can write it)."""
    return str(request.META.get("REMOTE_ADDR", ""))


@never_cache
@require_http_methods(["GET", "POST"])
def suggest_page(request: HttpRequest) -> HttpResponse:
    """The suggestion box: anyone, no account; a few suggestions per address and hour."""
    failure: PatronError | None = None
    text = ""
    sent = request.GET.get("sent") == "1"
    if request.method == "POST":
        text = request.POST.get("text", "")
        try:
            services.suggestion_submit(
                text=text, channel=Suggestion.Channel.WEB, client=_client_address(request)
            )
        except PatronError as error:
            failure = error
        else:
            return redirect(f"{request.path}?sent=1")
    context = {"failure": failure, "text": text, "sent": sent}
    status = failure.status if failure else 200
    return _noindex(render(request, "satisfaction/public_suggest.html", context, status=status))
