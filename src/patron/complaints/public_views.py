"""The customer's page: ``/complaint/<token>/``, no login. The signed link
(``patron.complaints.tokens``) names one complaint and the proposal it was sent with; the page
shows the customer their complaint, what was found and what is proposed, and lets them accept
it or reject it with their reason — once.

A bad link is a 404 page, an expired one a 403 page, never an error 500. The page is never
cached and not indexed; the forms carry CSRF tokens like every other form.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from patron.complaints import selectors, services, tokens
from patron.errors import PatronError


def _link_error(request: HttpRequest, error: PatronError) -> HttpResponse:
    if error.status == 403:
        title = _("This link has expired")
        message = _("Links to answer a proposal last %(days)s days.") % {"days": tokens.link_days()}
    else:
        title = _("This link does not work")
        message = _("Check that the link was copied whole, with nothing added or cut off.")
    context = {"status": error.status, "title": title, "message": message}
    response = render(request, "complaints/public_error.html", context, status=error.status)
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def answer_page(request: HttpRequest, token: str) -> HttpResponse:
    """The proposal and the customer's answer to it."""
    failure: PatronError | None = None
    reason = ""
    if request.method == "POST":
        answer = request.POST.get("answer", "")
        reason = request.POST.get("reason", "")
        try:
            if answer not in ("accept", "reject"):
                from patron.errors import ValidationFailed

                raise ValidationFailed(f"answer: accept or reject; got '{answer}'")
            services.complaint_answer_by_link(token=token, accept=answer == "accept", reason=reason)
        except PatronError as error:
            if error.status in (403, 404):
                return _link_error(request, error)
            failure = error
        else:
            messages.success(
                request,
                _("Thank you: we will arrange a follow-up with you.")
                if answer == "accept"
                else _("Thank you: we will look into it again and come back to you."),
            )
            return redirect(request.path)
    try:
        view = selectors.complaint_public_view(token=token)
    except PatronError as error:
        return _link_error(request, error)
    context = {"view": view, "failure": failure, "reason": reason}
    status = failure.status if failure is not None else 200
    response = render(request, "complaints/public.html", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response
