"""The public unsubscribe page: ``/u/<token>/``, no login.

GET shows what will be withdrawn and a button; POST withdraws it. Mail programs' one-click
unsubscribe (RFC 8058) POSTs to the same address without a form, so the POST is exempt from
CSRF checks: it acts on no session, only on the signed token, which a forger cannot make.
A bad or tampered token is a 404 page, never an error 500.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from patron.errors import PatronError
from patron.outbox import selectors, services


def _error(request: HttpRequest, error: PatronError) -> HttpResponse:
    context = {
        "status": error.status,
        "title": _("This link does not work"),
        "message": _(error.message),  # token errors are marked for translation (links.py)
    }
    return render(request, "outbox/unsubscribe_invalid.html", context, status=error.status)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "POST":
            services.consent_withdraw_by_link(token)
            preview = selectors.unsubscribe_preview(token)
            return render(request, "outbox/unsubscribe.html", {"preview": preview, "done": True})
        preview = selectors.unsubscribe_preview(token)
    except PatronError as error:
        return _error(request, error)
    return render(request, "outbox/unsubscribe.html", {"preview": preview, "done": False})
