"""The customer's pages, no login: ``/help/`` (ask for help), ``/help/thanks/`` and
``/help/t/<token>/`` (follow a ticket, write again, say an automatic answer did not help).

The ticket link (``links.ticket_token``) is the credential for that one ticket. A bad link is a
404 page and an expired one a 403 page, never an error 500; the pages are never cached nor
indexed; forms carry CSRF tokens. Sending is limited per address (``throttle``). The rules are
in ``patron.service.public``; these views parse, call one function and render.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from patron.errors import PatronError
from patron.service import links, public, throttle
from patron.service.public_forms import HelpForm, WriteForm

SESSION_KEY = "patron.service.help_ticket"


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    response = render(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response


def _link_error(request: HttpRequest, error: PatronError) -> HttpResponse:
    if error.status == 403:
        title = _("This link has expired")
        message = _("Links to a request last %(days)s days.") % {"days": links.link_days()}
    else:
        title = _("This link does not work")
        message = _("Check that the link was copied whole, with nothing added or cut off.")
    context = {"status": error.status, "title": title, "message": message}
    return _page(request, "service/public/error.html", context, status=error.status)


@never_cache
@require_http_methods(["GET", "POST"])
def help_form(request: HttpRequest) -> HttpResponse:
    """Ask for help: a new ticket on channel ``web``."""
    status = 200
    if request.method != "POST":
        form = HelpForm()
    else:
        form = HelpForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                throttle.rate_limit(request, "help")
                received = public.help_request(
                    name=data["name"],
                    email=data["email"],
                    phone=data["phone"],
                    order_number=data["order"],
                    subject=data["subject"],
                    message=data["message"],
                )
            except PatronError as error:
                form.fail(error)
                status = error.status
            else:
                request.session[SESSION_KEY] = received.ticket_id
                return redirect("help:thanks")
        else:
            status = 422
    return _page(request, "service/public/help.html", {"form": form}, status=status)


@never_cache
@require_GET
def help_thanks(request: HttpRequest) -> HttpResponse:
    """Thank you, with the link to follow the new request."""
    ticket_id = request.session.get(SESSION_KEY)
    if not isinstance(ticket_id, int):
        return redirect("help:form")
    context = {"ticket_id": ticket_id, "path": links.ticket_path(ticket_id)}
    return _page(request, "service/public/thanks.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def ticket_page(request: HttpRequest, token: str) -> HttpResponse:
    """A ticket as its customer sees it: the conversation without internal notes, the status
    in plain words, a form to write again and, after an automatic answer, "this did not help"."""
    try:
        ticket_id = links.ticket_of_token(token)
        view = public.customer_ticket(ticket_id)
    except PatronError as error:
        return _link_error(request, error)
    form = WriteForm()
    failure: PatronError | None = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "not_helped":
        try:
            throttle.rate_limit(request, "ticket")
            public.customer_not_helped(ticket_id)
        except PatronError as error:
            failure, status = error, error.status
        else:
            messages.success(
                request, _("Thank you: a person from the service team will answer you.")
            )
            return redirect(request.path)
    elif request.method == "POST":
        form = WriteForm(request.POST)
        if not form.is_valid():
            status = 422
        else:
            try:
                throttle.rate_limit(request, "ticket")
                public.customer_write(ticket_id, body=form.cleaned_data["message"])
            except PatronError as error:
                form.fail(error)
                failure, status = error, error.status
            else:
                messages.success(request, _("Thank you: your message is with the service team."))
                return redirect(request.path)
    if failure is not None:
        view = public.customer_ticket(ticket_id)
    context = {"view": view, "form": form, "failure": failure}
    return _page(request, "service/public/ticket.html", context, status=status)
