"""After-sales pages for staff, under ``/service/``: the request queue (filter by kind, status
and policy), one request with its order lines, policy verdict, timeline and the buttons of the
steps its status allows, filing a request for a customer, the policy, and the logistics
exceptions.

Each view parses the form, calls a selector (``patron.aftersales.selectors``) or a service
(``patron.aftersales.services``) and renders. Permissions are the services' and selectors'; the
pages also hide what the user may not do. A refusal is shown next to the form that asked, with
its status (422 invalid input, 409 a state that does not allow it, 403 a supervisor's exception
or separation of duties); a missing permission is the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patron.account.roles import CHANGE_AFTERSALES_POLICY, HANDLE_AFTERSALES, VIEW_AFTERSALES
from patron.account.services import require_permission
from patron.aftersales import forms, rules, selectors, services
from patron.aftersales.models import AfterSalesRequest, LogisticsException, RefundMethod
from patron.customer.selectors import Page
from patron.errors import Conflict, NotFound, PatronError, PermissionDenied, ValidationFailed
from patron.web.templatetags.patron_web import choice
from patron.web.views import patron_page

PAGE_SIZE = 50
#: The queue's status filter: name -> statuses shown.
STATUS_TABS: dict[str, tuple[str, ...]] = {
    "open": tuple(s for s in rules.STATUSES if s in rules.OPEN),
    "to_decide": tuple(s for s in rules.STATUSES if s in rules.TO_DECIDE),
    **{status: (status,) for status in rules.STATUSES},
    "all": (),
}


def _page_number(request: HttpRequest) -> int:
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        return 1
    return number if number >= 1 else 1


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _status_label(value: str) -> str:
    return choice(AfterSalesRequest.Status(value).label)


def _status_tabs() -> list[tuple[str, str]]:
    return [
        ("open", _("Open")),
        ("to_decide", _("Waiting for a decision")),
        *((s, _status_label(s)) for s in rules.STATUSES),
        ("all", _("All")),
    ]


# ---------------------------------------------------------------------- the queue


@patron_page
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """Requests of every kind, those waiting for a decision first."""
    tab = request.GET.get("status", "open") or "open"
    if tab not in STATUS_TABS:
        raise ValidationFailed(f"status: one of {', '.join(STATUS_TABS)}; got '{tab}'")
    kind = request.GET.get("kind", "")
    if kind and kind not in rules.KINDS:
        raise ValidationFailed(f"kind: one of {', '.join(rules.KINDS)}; got '{kind}'")
    policy = request.GET.get("policy", "")
    outside = {"outside": True, "within": False}.get(policy)
    number = _page_number(request)
    total, rows = selectors.request_list(
        user=request.user,
        kinds=[kind] if kind else (),
        statuses=STATUS_TABS[tab],
        outside_policy=outside,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    context = {
        "page": Page(items=tuple(rows), count=total, page=number, page_size=PAGE_SIZE),
        "stats": selectors.queue_stats(user=request.user),
        "tab": tab,
        "tabs": _status_tabs(),
        "kind": kind,
        "kinds": forms.kind_choices(),
        "policy": policy,
        "may_handle": request.user.has_perm(HANDLE_AFTERSALES),
    }
    return render(request, "aftersales/queue.html", context)


# ---------------------------------------------------------------------- one request


@dataclass
class StepForm:
    """The step forms as the user typed them, so that an error keeps their input."""

    action: str = ""
    reason: str = ""
    exception_reason: str = ""
    amount: str = ""
    method: str = "original"
    reference: str = ""
    carrier: str = ""
    tracking_number: str = ""
    note: str = ""
    error: PatronError | None = None


def _step(request: HttpRequest, request_id: int, form: StepForm) -> str:
    """Carry out the step asked; returns what to tell the user."""
    user = request.user
    number = {"number": f"AS{request_id}"}
    action = form.action
    if action == "approve":
        services.aftersales_approve(
            user=user,
            request_id=request_id,
            reason=form.reason,
            exception_reason=form.exception_reason,
        )
        return _("%(number)s approved; the customer is told.") % number
    if action == "reject":
        services.aftersales_reject(user=user, request_id=request_id, reason=form.reason)
        return _("%(number)s rejected; the customer is told and may appeal once.") % number
    if action in ("approve_appeal", "reject_appeal"):
        services.aftersales_appeal_decide(
            user=user,
            request_id=request_id,
            approve=action == "approve_appeal",
            reason=form.reason,
            exception_reason=form.exception_reason,
        )
        return _("The appeal on %(number)s is decided; the customer is told.") % number
    if action == "receive":
        services.aftersales_receive(user=user, request_id=request_id, note=form.note)
        return _("%(number)s: goods received.") % number
    if action == "refund":
        refund = services.aftersales_refund(
            user=user,
            request_id=request_id,
            amount=form.amount,
            method=form.method,
            reference=form.reference,
        )
        return _("%(number)s: %(amount)s refunded; the customer is told.") % {
            **number,
            "amount": f"{refund.amount:.2f} {refund.currency}",
        }
    if action == "replace":
        services.aftersales_replace(
            user=user,
            request_id=request_id,
            carrier=form.carrier,
            tracking_number=form.tracking_number,
        )
        return _("%(number)s: the replacement is on its way.") % number
    if action == "repair":
        services.aftersales_repair(user=user, request_id=request_id, note=form.note)
        return _("%(number)s: repaired.") % number
    if action == "close":
        services.aftersales_close(user=user, request_id=request_id, note=form.note)
        return _("%(number)s closed.") % number
    if action == "cancel":
        services.aftersales_cancel(user=user, request_id=request_id, reason=form.reason)
        return _("%(number)s cancelled for the customer.") % number
    if action == "appeal":
        services.aftersales_appeal(user=user, request_id=request_id, reason=form.reason)
        return _("The customer's appeal on %(number)s is filed.") % number
    raise ValidationFailed(f"action: one of {', '.join(rules.ACTIONS)}; got '{action}'")


@patron_page
@require_http_methods(["GET", "POST"])
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    form = StepForm()
    if request.method == "POST":
        require_permission(request.user, HANDLE_AFTERSALES)
        data = request.POST
        form = StepForm(
            action=data.get("action", ""),
            reason=data.get("reason", ""),
            exception_reason=data.get("exception_reason", ""),
            amount=data.get("amount", "").strip(),
            method=data.get("method", "original"),
            reference=data.get("reference", ""),
            carrier=data.get("carrier", ""),
            tracking_number=data.get("tracking_number", ""),
            note=data.get("note", ""),
        )
        try:
            message = _step(request, request_id, form)
        except (ValidationFailed, Conflict, PermissionDenied) as error:
            form.error = error
        else:
            messages.success(request, message)
            return redirect("web:aftersales-return", request_id=request_id)
    view = selectors.request_detail(user=request.user, request_id=request_id)
    context = {
        "item": view,
        "form": form,
        "actions": set(view.allowed_actions),
        "methods": [(value, choice(label)) for value, label in RefundMethod.choices],
        "needs_exception": not view.is_within_policy,
    }
    status = form.error.status if form.error else 200
    return render(request, "aftersales/request.html", context, status=status)


# ---------------------------------------------------------------------- filing for a customer


@patron_page
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    """File a request on a customer's behalf (``?customer=<id>``)."""
    require_permission(request.user, HANDLE_AFTERSALES)
    customer_id = _whole(request.GET.get("customer", ""), "customer")
    view = selectors.customer_view(customer_id=customer_id)
    form = forms.FilingForm()
    if request.method == "POST":
        form = forms.FilingForm.from_post(request.POST)
        try:
            filed = form.file(
                user=request.user,
                customer_id=customer_id,
                channel=AfterSalesRequest.Channel.STAFF,
            )
        except (ValidationFailed, Conflict, NotFound, PermissionDenied) as error:
            form.error = error
        else:
            messages.success(
                request,
                _("%(number)s filed.") % {"number": filed.number}
                + (
                    ""
                    if filed.is_within_policy
                    else " " + _("It is outside the policy: a supervisor must approve it.")
                ),
            )
            return redirect("web:aftersales-return", request_id=filed.pk)
    context = {
        "view": view,
        "form": form,
        "kinds": forms.kind_choices(),
        "reasons": forms.reason_choices(),
        "customer_link": request.build_absolute_uri(
            services.aftersales_link_issue(
                user=request.user, customer_id=customer_id, absolute=False
            )
        ),
    }
    status = form.error.status if form.error else 200
    return render(request, "aftersales/new.html", context, status=status)


# ---------------------------------------------------------------------- the policy


@patron_page
@require_http_methods(["GET", "POST"])
def policy_list(request: HttpRequest) -> HttpResponse:
    """The after-sales policy; editable by those who may change it."""
    error: PatronError | None = None
    edited = ""
    if request.method == "POST":
        require_permission(request.user, CHANGE_AFTERSALES_POLICY)
        edited = request.POST.get("policy", "")
        data = request.POST
        try:
            amount = data.get("max_compensation", "").strip()
            services.policy_update(
                user=request.user,
                policy_id=_whole(edited, "policy"),
                changes={
                    "days_after_delivery": _whole(
                        data.get("days_after_delivery", ""), "days_after_delivery"
                    ),
                    "requires_reason": data.get("requires_reason") == "on",
                    "max_compensation": amount or None,
                    "description": data.get("description", ""),
                    "is_active": data.get("is_active") == "on",
                },
            )
        except (ValidationFailed, Conflict, NotFound) as caught:
            error = caught
        else:
            messages.success(request, _("Policy saved."))
            return redirect(reverse("web:aftersales-policies"))
    context = {
        "policies": selectors.policy_list(user=request.user),
        "may_change": request.user.has_perm(CHANGE_AFTERSALES_POLICY),
        "error": error,
        "edited": edited,
    }
    return render(
        request, "aftersales/policies.html", context, status=error.status if error else 200
    )


# ---------------------------------------------------------------------- logistics


@patron_page
@require_http_methods(["GET", "POST"])
def logistics(request: HttpRequest) -> HttpResponse:
    """Logistics exceptions, the newest first; those who handle requests may run the check."""
    require_permission(request.user, VIEW_AFTERSALES)
    if request.method == "POST":
        require_permission(request.user, HANDLE_AFTERSALES)
        result = services.logistics_check()
        messages.success(
            request,
            _("%(found)s new exceptions, %(resolved)s resolved.")
            % {"found": result.found, "resolved": result.resolved},
        )
        return redirect("web:aftersales-logistics")
    status = request.GET.get("status", "open")
    statuses: tuple[str, ...] = () if status == "all" else (status,)
    if status != "all" and status not in selectors.EXCEPTION_STATUSES:
        raise ValidationFailed(f"status: one of open, resolved, all; got '{status}'")
    kind = request.GET.get("kind", "")
    if kind and kind not in selectors.EXCEPTION_KINDS:
        raise ValidationFailed(f"kind: one of {', '.join(selectors.EXCEPTION_KINDS)}; got '{kind}'")
    number = _page_number(request)
    total, rows = selectors.exception_list(
        user=request.user,
        statuses=statuses,
        kinds=[kind] if kind else (),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    context: dict[str, Any] = {
        "page": Page(items=tuple(rows), count=total, page=number, page_size=PAGE_SIZE),
        "status": status,
        "kind": kind,
        "kinds": [(v, choice(label)) for v, label in LogisticsException.Kind.choices],
        "statuses": [
            *((v, choice(label)) for v, label in LogisticsException.Status.choices),
            ("all", _("All")),
        ],
        "may_handle": request.user.has_perm(HANDLE_AFTERSALES),
        "no_scan_hours": services.no_scan_hours(),
    }
    return render(request, "aftersales/logistics.html", context)
