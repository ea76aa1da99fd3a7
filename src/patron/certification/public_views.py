"""The applicant's page: ``/apply/<token>/``, no login. The signed link is the credential
(``patron.certification.tokens``): it names one customer, and every service is called with
``user=None`` and that customer as ``applicant_customer_id``, so the link opens that customer's
applications and documents and nothing else.

A bad link is a 404 page, an expired one a 403 page, never an error 500. The pages are never
cached and not indexed; forms carry CSRF tokens like every other form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from patron.certification import forms, rules, selectors, services, tokens
from patron.certification.models import Application
from patron.errors import PatronError, ValidationFailed


def _link_error(request: HttpRequest, error: PatronError) -> HttpResponse:
    """The page for a link that opens nothing, in the applicant's language."""
    if error.status == 403:
        title = _("This link has expired")
        message = _("Links to your application last %(days)s days.") % {"days": tokens.link_days()}
    else:
        title = _("This link does not work")
        message = _("Check that the link was copied whole, with nothing added or cut off.")
    context = {"status": error.status, "title": title, "message": message}
    response = render(request, "certification/public_error.html", context, status=error.status)
    response["X-Robots-Tag"] = "noindex"
    return response


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        raise ValidationFailed(f"{name}: expected a whole number, got '{text}'") from None


def _form_for(view: selectors.ApplicantView) -> forms.ApplicationForm | None:
    """The form to show: to correct the application that is with the applicant, to start one
    when none is in progress, none while the shop reviews it."""
    for application in view.applications:
        if application.is_editable:
            return forms.ApplicationForm.from_application(
                application_id=application.id,
                status=application.status,
                level=application.level_code,
                fields=application.fields,
                birth_date=application.birth_date,
                id_region=application.id_region,
                qualifications=application.qualifications,
                business_category=application.business_category,
                documents=application.documents,
                checks=application.failed_checks,
                info_requested=application.info_requested,
            )
    if view.has_live_application:
        return None
    levels = forms.level_choices(view.levels)
    return forms.ApplicationForm(level=levels[0].code if levels else "")


def _act(request: HttpRequest, customer_id: int, action: str, state: dict[str, Any]) -> str:
    """Carry out what the applicant asked; returns what to tell them."""
    data = request.POST
    if action in ("draft", "submit"):
        form = forms.ApplicationForm.from_post(data)
        state["form"] = form
        levels = forms.level_choices(selectors.level_list(active_only=True))
        uploads = forms.uploads_from(data, request.FILES)
        application = forms.application_save(
            user=None,
            customer_id=customer_id,
            form=form,
            kind=form.kind(levels),
            uploads=uploads,
            submit=action == "submit",
            channel=Application.Channel.PUBLIC,
            applicant_customer_id=customer_id,
        )
        if application.status == Application.Status.NEEDS_INFO:
            return _("Some details need correcting before the shop can review them: see below.")
        if action == "submit":
            return _("Thank you: your application is with the shop for review.")
        return _("Saved. You can come back to this page with the same link.")
    if action == "withdraw":
        state["withdraw_reason"] = data.get("reason", "")
        services.application_withdraw(
            user=None,
            application_id=_whole(data.get("application", ""), "application"),
            reason=state["withdraw_reason"],
            applicant_customer_id=customer_id,
        )
        return _("Your application is withdrawn.")
    if action == "change":
        names = dict.fromkeys(rules.PROFILE_FIELDS["individual"] + rules.PROFILE_FIELDS["business"])
        values = {name: data.get(name, "").strip() for name in names}
        state["change_values"] = values
        state["change_reason"] = data.get("reason", "")
        forms.change_save(
            user=None,
            customer_id=customer_id,
            changes={name: value for name, value in values.items() if value},
            reason=state["change_reason"],
            uploads=forms.uploads_from(data, request.FILES),
            source="public",
            applicant_customer_id=customer_id,
        )
        return _("Your change request is filed: the shop checks it before it takes effect.")
    if action == "withdraw_change":
        state["withdraw_change_reason"] = data.get("reason", "")
        services.change_request_withdraw(
            user=None,
            request_id=_whole(data.get("request", ""), "request"),
            reason=state["withdraw_change_reason"],
            applicant_customer_id=customer_id,
        )
        return _("Your change request is withdrawn: you can ask for the right change now.")
    raise ValidationFailed(
        f"action: one of draft, submit, withdraw, change, withdraw_change; got '{action}'"
    )


@never_cache
@require_http_methods(["GET", "POST"])
def applicant_page(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's applications, certification and forms, through their link."""
    try:
        customer_id = tokens.applicant_customer(token)
    except PatronError as error:
        return _link_error(request, error)
    state: dict[str, Any] = {}
    failure: PatronError | None = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            message = _act(request, customer_id, action, state)
        except PatronError as error:
            failure = error
            state["failed_action"] = action
            if isinstance(state.get("form"), forms.ApplicationForm):
                state["form"].fail(error)
        else:
            messages.success(request, message)
            return redirect(request.path)
    try:
        view = selectors.applicant_view(customer_id=customer_id)
    except PatronError as error:
        return _link_error(request, error)
    form = state.get("form") or _form_for(view)
    if failure is not None and isinstance(form, forms.ApplicationForm):
        # Keep what is already uploaded and what failed, under the typed values.
        shown = _form_for(view)
        if shown is not None and shown.application_id == form.application_id:
            form.documents = shown.documents
            form.failed_checks = shown.failed_checks
            form.info_requested = shown.info_requested
            form.status = shown.status
    certified_fields = view.certification.fields if view.certification else []
    levels = forms.level_choices(view.levels)
    context = {
        "token": token,
        "view": view,
        "form": form,
        "failure": failure,
        "failed_action": state.get("failed_action", ""),
        "withdraw_reason": state.get("withdraw_reason", ""),
        "withdraw_change_reason": state.get("withdraw_change_reason", ""),
        "change_values": state.get("change_values", {}),
        "change_reason": state.get("change_reason", ""),
        "certified_fields": certified_fields,
        "levels": levels,
        "categories": forms.category_choices(),
        "change_documents": forms.change_documents(),
        "document_kinds": forms.document_kinds(),
        "document_rows": forms.document_defaults(form, levels) if form else [],
        "live": next((a for a in view.applications if a.status in rules.LIVE_APPLICATION), None),
    }
    status = failure.status if failure is not None else 200
    response = render(request, "certification/public.html", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
@require_GET
def applicant_document(request: HttpRequest, token: str, document_id: int) -> HttpResponse:
    """A document the applicant uploaded, to the applicant only."""
    try:
        customer_id = tokens.applicant_customer(token)
        content = selectors.document_read(
            user=None, document_id=document_id, applicant_customer_id=customer_id
        )
    except PatronError as error:
        return _link_error(request, error)
    return forms.document_response(content)
