"""Certification pages for staff: the review queue with the process figures (R-H4), one
application with its pre-checks, documents, timeline and the reviewer's decisions, filing an
application for a customer, change requests, the levels, and the panel on the customer page.

Each view parses the form, calls a selector (``patron.certification.selectors``) or a service
(``patron.certification.services``) and renders. Permissions are the services' and selectors';
the pages also hide what the user may not do. A refusal is shown next to the form that asked,
with its status (422 invalid input, 409 a state that does not allow it, 403 separation of
duties); a missing permission is the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patron.account.roles import (
    APPLY_FOR_CERTIFICATION,
    CHANGE_CERTIFICATION_LEVELS,
    REVIEW_CERTIFICATION,
    VIEW_CERTIFICATION,
    VIEW_CERTIFICATION_DOCUMENTS,
)
from patron.account.services import require_permission
from patron.certification import forms, rules, selectors, services
from patron.certification.models import Application, ChangeRequest
from patron.customer.selectors import Page
from patron.errors import Conflict, NotFound, PatronError, PermissionDenied, ValidationFailed
from patron.web.templatetags.patron_web import choice
from patron.web.views import patron_page

PAGE_SIZE = 50
#: The queue's tabs: name -> statuses shown.
QUEUE_TABS: dict[str, tuple[str, ...]] = {
    "waiting": selectors.QUEUE_DEFAULT,
    **{status: (status,) for status in Application.Status.values},
    "all": selectors.STATUSES,
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


def _customer_id(request: HttpRequest) -> int:
    return _whole(request.GET.get("customer", ""), "customer")


def _choice_label(choices: Any, value: str) -> str:
    """The page-language half of a bilingual choice label; the code if it is not a choice."""
    try:
        return choice(choices(value).label)
    except ValueError:
        return value


def _status_label(value: str) -> str:
    return _choice_label(Application.Status, value)


# ---------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class QueueTab:
    name: str
    label: str


def _queue_tabs() -> list[QueueTab]:
    return [
        QueueTab("waiting", _("Waiting for review")),
        *(QueueTab(s, _status_label(s)) for s in Application.Status.values if s != "pending"),
        QueueTab("all", _("All")),
    ]


@patron_page
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The review queue, longest waiting first, under the process figures (R-H4)."""
    tab = request.GET.get("status", "waiting") or "waiting"
    if tab not in QUEUE_TABS:
        raise ValidationFailed(f"status: one of {', '.join(QUEUE_TABS)}; got '{tab}'")
    level = request.GET.get("level", "")
    number = _page_number(request)
    total, rows = selectors.application_queue(
        user=request.user,
        statuses=QUEUE_TABS[tab],
        level=level,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    levels = selectors.level_list()
    context = {
        "page": Page(items=tuple(rows), count=total, page=number, page_size=PAGE_SIZE),
        "stats": selectors.process_stats(user=request.user),
        "tab": tab,
        "tabs": _queue_tabs(),
        "level": level,
        "levels": levels,
        "level_names": {lv.code: forms.level_label(lv) for lv in levels},
    }
    return render(request, "certification/queue.html", context)


# ---------------------------------------------------------------------- one application


@dataclass
class DecisionForm:
    """The decision forms as the reviewer typed them, so that an error keeps their input."""

    action: str = ""
    reason: str = ""
    level: str = ""
    error: PatronError | None = None


def _decide(request: HttpRequest, application_id: int, form: DecisionForm) -> str:
    """Carry out the reviewer's action; returns what to tell them."""
    user = request.user
    number = {"id": application_id}
    if form.action == "start_review":
        services.application_start_review(user=user, application_id=application_id)
        return _("Application #%(id)s is yours to review.") % number
    if form.action == "release":
        services.application_release(user=user, application_id=application_id)
        return _("Application #%(id)s is back in the queue.") % number
    if form.action == "approve":
        certification = services.application_approve(
            user=user,
            application_id=application_id,
            reason=form.reason,
            level_code=form.level or None,
        )
        return _("Application #%(id)s approved: %(level)s until %(until)s.") % {
            **number,
            "level": forms.level_label(certification.level),
            "until": f"{certification.expires_at:%Y-%m-%d}",
        }
    if form.action == "reject":
        services.application_reject(user=user, application_id=application_id, reason=form.reason)
        return _("Application #%(id)s rejected.") % number
    if form.action == "request_info":
        services.application_request_info(
            user=user, application_id=application_id, missing=form.reason
        )
        return _("Application #%(id)s went back to the applicant with your request.") % number
    raise ValidationFailed(
        f"action: one of start_review, release, approve, reject, request_info; got '{form.action}'"
    )


@patron_page
@require_http_methods(["GET", "POST"])
def application_detail(request: HttpRequest, application_id: int) -> HttpResponse:
    form = DecisionForm()
    if request.method == "POST":
        require_permission(request.user, REVIEW_CERTIFICATION)
        form = DecisionForm(
            action=request.POST.get("action", ""),
            reason=request.POST.get("reason", ""),
            level=request.POST.get("level", ""),
        )
        try:
            message = _decide(request, application_id, form)
        except (ValidationFailed, Conflict, PermissionDenied) as error:
            form.error = error
        else:
            messages.success(request, message)
            return redirect("web:certification-application", application_id=application_id)
    detail = selectors.application_detail(user=request.user, application_id=application_id)
    context = {
        "application": detail,
        "form": form,
        "filed_by_me": detail.filed_by_me,
        "is_waiting": detail.status in rules.AWAITING_REVIEW,
        "channel_label": _choice_label(Application.Channel, detail.channel),
        "may_take": detail.may_take,
        "may_release": detail.may_release,
        "may_decide": detail.may_decide,
        "may_correct": request.user.has_perm(APPLY_FOR_CERTIFICATION)
        and detail.status in rules.EDITABLE_APPLICATION,
        "failed_hard": [c for c in detail.checks if c.hard and not c.passed],
        "is_ready": bool(detail.checks) and all(c.passed for c in detail.checks),
    }
    status = form.error.status if form.error else 200
    return render(request, "certification/application.html", context, status=status)


@patron_page
@require_GET
def document(request: HttpRequest, document_id: int) -> HttpResponse:
    """A document's bytes, to those who may open documents (every read is audited)."""
    content = selectors.document_read(user=request.user, document_id=document_id)
    return forms.document_response(content)


# ---------------------------------------------------------------------- filing for a customer


def _apply_context(
    request: HttpRequest,
    applicant: selectors.ApplicantView,
    form: forms.ApplicationForm | None,
    live: selectors.ApplicantApplication | None,
) -> dict[str, Any]:
    levels = forms.level_choices(applicant.levels)
    return {
        "customer_id": applicant.customer_id,
        "customer_name": applicant.customer_name,
        "certification": applicant.certification,
        "form": form,
        "live": live,
        "levels": levels,
        "categories": forms.category_choices(),
        "document_kinds": forms.document_kinds(),
        "document_rows": forms.document_defaults(form, levels) if form else [],
        "applicant_link": request.build_absolute_uri(
            services.applicant_link_issue(
                user=request.user, customer_id=applicant.customer_id, absolute=False
            )
        ),
    }


def _form_of(request: HttpRequest, application_id: int) -> forms.ApplicationForm:
    """The form filled from an application still with the applicant, as the user may see it."""
    detail = selectors.application_detail(user=request.user, application_id=application_id)
    return forms.ApplicationForm.from_application(
        application_id=detail.id,
        status=detail.status,
        level=detail.level.code,
        fields=detail.fields,
        birth_date=detail.birth_date,
        id_region=detail.id_region,
        qualifications=detail.qualifications,
        business_category=detail.business_category.code if detail.business_category else "",
        documents=detail.documents,
        checks=detail.checks,
        info_requested=detail.info_requested,
    )


@patron_page
@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest) -> HttpResponse:
    """Staff file an application on a customer's behalf (``?customer=<id>``), or continue the
    customer's draft or returned application."""
    require_permission(request.user, APPLY_FOR_CERTIFICATION)
    customer_id = _customer_id(request)
    applicant = selectors.applicant_view(customer_id=customer_id)
    live = next((a for a in applicant.applications if a.status in rules.LIVE_APPLICATION), None)
    levels = forms.level_choices(applicant.levels)
    if request.method == "GET":
        form: forms.ApplicationForm | None
        if live is None:
            form = forms.ApplicationForm(level=levels[0].code if levels else "")
        elif live.is_editable:
            form = _form_of(request, live.id)
        else:
            form = None  # waiting for a reviewer: nothing to fill in
        return render(
            request, "certification/apply.html", _apply_context(request, applicant, form, live)
        )

    form = forms.ApplicationForm.from_post(request.POST)
    submit = request.POST.get("action") == "submit"
    try:
        uploads = forms.uploads_from(request.POST, request.FILES)
        application = forms.application_save(
            user=request.user,
            customer_id=customer_id,
            form=form,
            kind=form.kind(levels),
            uploads=uploads,
            submit=submit,
            channel=Application.Channel.STAFF,
        )
    except (ValidationFailed, Conflict, NotFound) as error:
        form.fail(error)
        if form.application_id is not None:
            form.documents = _form_of(request, form.application_id).documents
        context = _apply_context(request, applicant, form, live)
        return render(request, "certification/apply.html", context, status=error.status)
    if application.status == Application.Status.NEEDS_INFO:
        # Returned by the pre-checks: the same form again, as typed, with what failed.
        returned = _form_of(request, application.pk)
        form.application_id = application.pk
        form.status = application.status
        form.documents = returned.documents
        form.failed_checks = forms.failed_hard_checks(application.prechecks or [])
        context = _apply_context(request, applicant, form, live)
        return render(request, "certification/apply.html", context)
    if submit:
        messages.success(
            request,
            _("Application #%(id)s submitted: every pre-check of the details passed.")
            % {"id": application.pk},
        )
    else:
        messages.success(request, _("Draft #%(id)s saved.") % {"id": application.pk})
    return redirect("web:certification-application", application_id=application.pk)


# ---------------------------------------------------------------------- change requests


@dataclass
class ChangeDecision:
    request_id: int | None = None
    action: str = ""
    reason: str = ""
    error: PatronError | None = None


@patron_page
@require_http_methods(["GET", "POST"])
def change_list(request: HttpRequest) -> HttpResponse:
    """Change requests of certified customers; reviewers approve or reject them."""
    status = request.GET.get("status", "pending")
    failure = ChangeDecision()
    if request.method == "POST":
        withdrawing = request.POST.get("action") == "withdraw"
        require_permission(
            request.user, APPLY_FOR_CERTIFICATION if withdrawing else REVIEW_CERTIFICATION
        )
        failure = ChangeDecision(
            action=request.POST.get("action", ""), reason=request.POST.get("reason", "")
        )
        try:
            failure.request_id = _whole(request.POST.get("request", ""), "request")
            if withdrawing:
                services.change_request_withdraw(
                    user=request.user, request_id=failure.request_id, reason=failure.reason
                )
                message = _("Change request #%(id)s withdrawn.")
            elif failure.action == "approve":
                services.change_request_approve(
                    user=request.user, request_id=failure.request_id, reason=failure.reason
                )
                message = _("Change request #%(id)s approved: the new values are in force.")
            elif failure.action == "reject":
                services.change_request_reject(
                    user=request.user, request_id=failure.request_id, reason=failure.reason
                )
                message = _("Change request #%(id)s rejected.")
            else:
                raise ValidationFailed(
                    f"action: one of approve, reject, withdraw; got '{failure.action}'"
                )
        except (ValidationFailed, Conflict, PermissionDenied) as error:
            failure.error = error
        else:
            messages.success(request, message % {"id": failure.request_id})
            return redirect(f"{reverse('web:certification-changes')}?status={status}")
    changes = selectors.change_request_list(user=request.user, status=status)
    context = {
        "changes": changes,
        "status": status,
        "statuses": [
            (s, choice(ChangeRequest.Status(s).label)) for s in ChangeRequest.Status.values
        ],
        "may_decide": request.user.has_perm(REVIEW_CERTIFICATION),
        "may_file": request.user.has_perm(APPLY_FOR_CERTIFICATION),
        "may_open_documents": request.user.has_perm(VIEW_CERTIFICATION_DOCUMENTS),
        "me": request.user.get_username(),
        "failure": failure,
    }
    code = failure.error.status if failure.error else 200
    return render(request, "certification/changes.html", context, status=code)


@patron_page
@require_http_methods(["GET", "POST"])
def change_new(request: HttpRequest) -> HttpResponse:
    """File a change of a certified customer's verified details (``?customer=<id>``)."""
    require_permission(request.user, APPLY_FOR_CERTIFICATION)
    customer_id = _customer_id(request)
    applicant = selectors.applicant_view(customer_id=customer_id)
    certified = applicant.certification
    values = {name: "" for name in (certified.fields if certified else [])}
    context: dict[str, Any] = {
        "customer_id": customer_id,
        "customer_name": applicant.customer_name,
        "certification": certified,
        "values": values,
        "reason": "",
        "document_kinds": forms.document_kinds(),
        "change_documents": forms.change_documents(),
    }
    if request.method == "GET" or certified is None:
        return render(request, "certification/change_new.html", context)
    values.update({name: request.POST.get(name, "").strip() for name in values})
    context["reason"] = request.POST.get("reason", "")
    try:
        filed = forms.change_save(
            user=request.user,
            customer_id=customer_id,
            changes={name: value for name, value in values.items() if value},
            reason=context["reason"],
            uploads=forms.uploads_from(request.POST, request.FILES),
            source="staff",
        )
    except (ValidationFailed, Conflict) as error:
        context["error"] = error.message
        details = error.details if isinstance(error.details, dict) else {}
        context["failed_checks"] = forms.failed_hard_checks(details.get("prechecks", []))
        return render(request, "certification/change_new.html", context, status=error.status)
    messages.success(
        request,
        _("Change request #%(id)s filed: a reviewer approves it before it takes effect.")
        % {"id": filed.pk},
    )
    return redirect("web:certification-changes")


# ---------------------------------------------------------------------- levels


@dataclass
class LevelRow:
    level: selectors.LevelView
    edit: dict[str, Any]
    error: str = ""
    invalid: set[str] = field(default_factory=set)


def _level_edit(level: selectors.LevelView) -> dict[str, Any]:
    return {
        "name": level.name,
        "name_en": level.name_en,
        "rank": str(level.rank),
        "min_credit_score": "" if level.min_credit_score is None else str(level.min_credit_score),
        "min_paid_orders": str(level.min_paid_orders),
        "min_spend_12m": level.min_spend_12m,
        "min_tenure_days": str(level.min_tenure_days),
        "requires_no_restrictions": level.requires_no_restrictions,
        "required_documents": list(level.required_documents),
        "validity_days": str(level.validity_days),
        "remind_days": str(level.remind_days),
        "fallback": level.fallback or "",
        "is_active": level.is_active,
    }


def _level_changes(data: QueryDict, code: str) -> dict[str, Any]:
    where = f"level {code}"
    score = data.get("min_credit_score", "").strip()
    spend = data.get("min_spend_12m", "").strip() or "0"
    try:
        amount = Decimal(spend)
    except InvalidOperation:
        raise ValidationFailed(
            f"{where}.min_spend_12m: expected an amount, got '{spend}'"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed(f"{where}.min_spend_12m: expected an amount of zero or more")
    changes: dict[str, Any] = {
        "name": data.get("name", "").strip(),
        "name_en": data.get("name_en", "").strip(),
        "rank": _whole(data.get("rank", ""), f"{where}.rank"),
        "min_credit_score": _whole(score, f"{where}.min_credit_score") if score else None,
        "min_paid_orders": _whole(data.get("min_paid_orders", ""), f"{where}.min_paid_orders"),
        "min_spend_12m": amount.quantize(Decimal("0.01")),
        "min_tenure_days": _whole(data.get("min_tenure_days", ""), f"{where}.min_tenure_days"),
        "requires_no_restrictions": data.get("requires_no_restrictions") == "on",
        "required_documents": [k for k in rules.DOCUMENT_LABELS if k in data.getlist("documents")],
        "validity_days": _whole(data.get("validity_days", ""), f"{where}.validity_days"),
        "remind_days": _whole(data.get("remind_days", ""), f"{where}.remind_days"),
        "is_active": data.get("is_active") == "on",
    }
    if "fallback" in data:  # a form without the field leaves the fallback as it is
        changes["fallback"] = data.get("fallback", "").strip() or None
    for name in ("name", "name_en"):
        if not changes[name]:
            raise ValidationFailed(f"{where}.{name}: a name is required")
    for name, value in changes.items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ValidationFailed(f"{where}.{name}: expected zero or more, got {value}")
    return changes


def _invalid_level_field(message: str) -> set[str]:
    head = message.split(":", 1)[0]
    name = head.rsplit(".", 1)[-1] if "." in head else ""
    if "required_documents" in message:
        return {"required_documents"}
    if "validity_days" in message:
        return {"validity_days"}
    return {name} if name else set()


@patron_page
@require_http_methods(["GET", "POST"])
def level_list(request: HttpRequest) -> HttpResponse:
    """The levels and their criteria (R-H2); editable by those who may change them."""
    require_permission(request.user, VIEW_CERTIFICATION)  # the selector is public: levels
    rows = [LevelRow(level=lv, edit=_level_edit(lv)) for lv in selectors.level_list()]
    status = 200
    if request.method == "POST":
        require_permission(request.user, CHANGE_CERTIFICATION_LEVELS)
        code = request.POST.get("code", "")
        row = next((r for r in rows if r.level.code == code), None)
        if row is None:
            raise NotFound(f"certification level {code!r} not found")
        row.edit = {
            **{k: request.POST.get(k, "") for k in row.edit},
            "requires_no_restrictions": request.POST.get("requires_no_restrictions") == "on",
            "is_active": request.POST.get("is_active") == "on",
            "required_documents": request.POST.getlist("documents"),
        }
        try:
            services.level_update(
                user=request.user, code=code, changes=_level_changes(request.POST, code)
            )
        except (ValidationFailed, Conflict) as error:
            row.error = error.message
            row.invalid = _invalid_level_field(error.message)
            status = error.status
        else:
            messages.success(request, _("Level %(code)s saved.") % {"code": code})
            return redirect(f"{reverse('web:certification-levels')}#level-{code}")
    context = {
        "rows": rows,
        "level_names": {row.level.code: forms.level_label(row.level) for row in rows},
        "may_change": request.user.has_perm(CHANGE_CERTIFICATION_LEVELS),
        "document_kinds": forms.document_kinds(),
    }
    return render(request, "certification/levels.html", context, status=status)


# ---------------------------------------------------------------------- the customer page


@dataclass(frozen=True)
class CustomerCertification:
    """The certification panel of the customer page."""

    customer_id: int
    certification: selectors.CertificationView | None
    latest: selectors.QueueRow | None
    may_apply: bool
    may_request_change: bool

    @property
    def has_live_application(self) -> bool:
        return self.latest is not None and self.latest.status in rules.LIVE_APPLICATION


def customer_certification_section(*, user: Any, customer_id: int) -> CustomerCertification | None:
    """None unless the user may see certification (``VIEW_CERTIFICATION``)."""
    if not user.has_perm(VIEW_CERTIFICATION):
        return None
    certification = selectors.customer_certification(user=user, customer_id=customer_id)
    _, rows = selectors.application_queue(
        user=user, statuses=selectors.STATUSES, customer_id=customer_id, limit=100
    )
    may_apply = user.has_perm(APPLY_FOR_CERTIFICATION)
    return CustomerCertification(
        customer_id=customer_id,
        certification=certification,
        latest=max(rows, key=lambda row: row.id, default=None),
        may_apply=may_apply,
        may_request_change=may_apply and certification is not None,
    )
