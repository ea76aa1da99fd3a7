"""Template filters of the certification pages: labels of the codes the selectors return, in the
page's language, waiting times and status colours."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from patron.certification import forms

register = template.Library()

_STATUS_CLASSES = {
    "draft": "secondary",
    "pending": "warning",
    "in_review": "info",
    "needs_info": "warning",
    "approved": "success",
    "rejected": "danger",
    "withdrawn": "secondary",
    "active": "success",
    "expired": "secondary",
    "downgraded": "secondary",
    "revoked": "danger",
    "superseded": "secondary",
}


@register.filter
def certification_status_class(status: str) -> str:
    return _STATUS_CLASSES.get(str(status), "secondary")


@register.filter
def field_label(name: str) -> str:
    return str(forms.FIELD_LABELS.get(name, name))


@register.filter
def event_label(action: str) -> str:
    return str(forms.EVENT_LABELS.get(action, action))


@register.filter
def document_label(kind: str) -> str:
    return forms.document_label(str(kind))


@register.filter
def level_label(level: Any) -> str:
    return forms.level_label(level)


@register.filter
def hours(value: Any) -> str:
    """``5.5 h`` under two days, ``3 d 4 h`` from then on; an em dash for none."""
    if value is None or value == "":
        return "—"
    amount = float(value)
    if amount < 48:
        return _("%(hours)s h") % {"hours": f"{amount:.1f}"}
    days, rest = divmod(round(amount), 24)
    return _("%(days)s d %(hours)s h") % {"days": days, "hours": rest}


@register.filter
def percent(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{100 * float(value):.0f}%"


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """``values|get_item:name``: a dictionary entry by a key held in a variable."""
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""
