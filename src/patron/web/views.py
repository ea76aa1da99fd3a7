"""Pages. Each view parses the request, calls one selector and renders a template; a
``PatronError`` from the selector becomes an error page with its status (403, 404, 422)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from patron.audit.models import AuditEvent
from patron.customer import selectors as customer_selectors
from patron.customer.models import Customer, SourceChannel
from patron.errors import PatronError
from patron.ingest.models import ImportBatch
from patron.web import charts
from patron.web import selectors as web_selectors

View = Callable[..., HttpResponse]


def render_error(request: HttpRequest, error: PatronError) -> HttpResponse:
    titles = {
        403: _("You do not have permission to see this page"),
        404: _("Not found"),
        409: _("Conflict"),
        422: _("Invalid request"),
    }
    context = {
        "status": error.status,
        "title": titles.get(error.status, _("Error")),
        "message": error.message,
    }
    return render(request, "web/error.html", context, status=error.status)


def patron_page(view: View) -> View:
    """Login required; domain errors become error pages with their HTTP status."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PatronError as error:
            return render_error(request, error)

    return wrapper


def _int(request: HttpRequest, name: str, default: int) -> int:
    """A positive integer query parameter; anything else falls back to ``default``."""
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        return default
    return value if value >= 1 else default


def _is_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("web:customer-list")


@patron_page
def customer_list(request: HttpRequest) -> HttpResponse:
    filters = {
        "query": request.GET.get("q", "").strip(),
        "province": request.GET.get("province", ""),
        "kind": request.GET.get("kind", ""),
        "source_channel": request.GET.get("source_channel", ""),
    }
    page = customer_selectors.customer_list(
        user=request.user,
        page=_int(request, "page", 1),
        page_size=_int(request, "page_size", 50),
        **filters,
    )
    context: dict[str, Any] = {"page": page, "filters": filters}
    if _is_partial(request):
        response = render(request, "web/customers/list.html#results", context)
    else:
        context["provinces"] = customer_selectors.customer_provinces(user=request.user)
        context["kinds"] = Customer.Kind.choices
        context["channels"] = SourceChannel.choices
        response = render(request, "web/customers/list.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@patron_page
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    return customer_page(request, customer_id)


def customer_page(
    request: HttpRequest,
    customer_id: int,
    *,
    risk_form: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The customer page; ``risk_form`` re-shows a risk form (an appeal, a lift) that failed,
    with the user's input and the error, under ``status``."""
    # Imported here: the risk pages build on ``patron_page`` from this module.
    from patron.certification.views import customer_certification_section
    from patron.risk.views import customer_risk_section

    profile = customer_selectors.customer_profile(user=request.user, customer_id=customer_id)
    context = {
        "profile": profile,
        "customer": profile.customer,
        "score_chart": _score_history_chart(profile.score_history),
        "risk": customer_risk_section(user=request.user, customer_id=customer_id),
        "risk_form": risk_form or {},
        "certification": customer_certification_section(user=request.user, customer_id=customer_id),
        "loyalty": _loyalty_section(request.user, customer_id),
    }
    return render(request, "web/customers/detail.html", context, status=status)


def _loyalty_section(user: Any, customer_id: int) -> Any:
    """The customer's points and tier, for those who may see them."""
    from patron.account.roles import VIEW_LOYALTY
    from patron.loyalty.selectors import loyalty_summary

    if not user.has_perm(VIEW_LOYALTY):
        return None
    return loyalty_summary(user=user, customer_id=customer_id)


def _score_history_chart(history: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    """Credit score (left axis) and churn probability / P(alive) in % (right axis) per run."""
    if len(history) < 2:
        return None
    days = [row["as_of"] for row in history]

    def percent(name: str) -> list[float | None]:
        return [None if row[name] is None else round(100 * row[name], 1) for row in history]

    return charts.line(
        days,
        [(_("Credit score"), [row["credit_score"] for row in history])],
        y_name=_("Credit score"),
        right=[
            (_("Churn risk %"), percent("churn_probability")),
            (_("Still active %"), percent("p_alive")),
        ],
        right_name="%",
    )


@patron_page
def customer_orders(request: HttpRequest, customer_id: int) -> HttpResponse:
    result = customer_selectors.customer_orders(
        user=request.user, customer_id=customer_id, page=_int(request, "page", 1), page_size=20
    )
    return render(request, "web/customers/orders.html", {"result": result, "page": result.orders})


@patron_page
def import_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    page = web_selectors.import_batch_list(
        user=request.user, status=status, page=_int(request, "page", 1)
    )
    context = {"page": page, "status": status, "statuses": ImportBatch.Status.choices}
    return render(request, "web/imports/list.html", context)


@patron_page
def audit_list(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("action", "")
    customer = request.GET.get("customer", "").strip()
    customer_id = int(customer) if customer.isdigit() else None
    page = web_selectors.audit_event_list(
        user=request.user, action=action, customer_id=customer_id, page=_int(request, "page", 1)
    )
    context = {
        "page": page,
        "action": action,
        "customer": customer,
        "actions": AuditEvent.Action.values,
    }
    return render(request, "web/audit/list.html", context)
