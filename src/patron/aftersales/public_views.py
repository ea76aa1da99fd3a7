"""The customer's after-sales page: ``/aftersales/<token>/``, no login. The signed link is the
credential (``patron.aftersales.tokens``): it names one customer, and every service is called
with ``user=None`` and that customer as ``applicant_customer_id``, so the link opens that
customer's orders and requests and nothing else.

On it the customer files a return, an exchange, a repair or a compensation, follows each
request's timeline, cancels one before the goods are received, and appeals a rejection (once).
A bad link is a 404 page, an expired one a 403 page, never an error 500. The page is never
cached and not indexed; its forms carry CSRF tokens like every other form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from patron.aftersales import forms, selectors, services, tokens
from patron.aftersales.models import AfterSalesRequest
from patron.errors import PatronError, ValidationFailed


def _link_error(request: HttpRequest, error: PatronError) -> HttpResponse:
    """The page for a link that opens nothing, in the customer's language."""
    if error.status == 403:
        title = _("This link has expired")
        message = _("Links to your after-sales page last %(days)s days.") % {
            "days": tokens.link_days()
        }
    else:
        title = _("This link does not work")
        message = _("Check that the link was copied whole, with nothing added or cut off.")
    context = {"status": error.status, "title": title, "message": message}
    response = render(request, "aftersales/public_error.html", context, status=error.status)
    response["X-Robots-Tag"] = "noindex"
    return response


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _act(request: HttpRequest, customer_id: int, action: str, state: dict[str, Any]) -> str:
    """Carry out what the customer asked; returns what to tell them."""
    data = request.POST
    if action == "file":
        form = forms.FilingForm.from_post(data)
        state["form"] = form
        filed = form.file(
            user=None,
            customer_id=customer_id,
            channel=AfterSalesRequest.Channel.PUBLIC,
            applicant_customer_id=customer_id,
        )
        return _("Your request %(number)s is filed: the shop looks at it and tells you.") % {
            "number": filed.number
        }
    request_id = _whole(data.get("request", ""), "request")
    state["request_id"] = request_id
    state["reason"] = data.get("reason", "")
    if action == "appeal":
        services.aftersales_appeal(
            user=None,
            request_id=request_id,
            reason=state["reason"],
            applicant_customer_id=customer_id,
        )
        return _("Your appeal is filed: someone who did not make the first decision looks at it.")
    if action == "cancel":
        services.aftersales_cancel(
            user=None,
            request_id=request_id,
            reason=state["reason"],
            applicant_customer_id=customer_id,
        )
        return _("Your request is cancelled.")
    raise ValidationFailed(f"action: one of file, appeal, cancel; got '{action}'")


@never_cache
@require_http_methods(["GET", "POST"])
def customer_page(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's orders, requests and forms, through their link."""
    try:
        customer_id = tokens.token_customer(token)
    except PatronError as error:
        return _link_error(request, error)
    state: dict[str, Any] = {}
    failure: PatronError | None = None
    action = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            message = _act(request, customer_id, action, state)
        except PatronError as error:
            failure = error
            if isinstance(state.get("form"), forms.FilingForm):
                state["form"].error = error
        else:
            messages.success(request, message)
            return redirect(request.path)
    try:
        view = selectors.customer_view(customer_id=customer_id)
    except PatronError as error:
        return _link_error(request, error)
    context = {
        "view": view,
        "form": state.get("form") or forms.FilingForm(),
        "kinds": forms.kind_choices(),
        "reasons": forms.reason_choices(),
        "failure": failure,
        "failed_action": action if failure is not None else "",
        "failed_request": state.get("request_id"),
        "typed_reason": state.get("reason", ""),
    }
    status = failure.status if failure is not None else 200
    response = render(request, "aftersales/public.html", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response
