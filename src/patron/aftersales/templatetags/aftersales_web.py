"""Template filters of the after-sales pages: labels of the codes the selectors return, in the
page's language, waiting times and status colours."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

register = template.Library()

_STATUS_CLASSES = {
    "requested": "warning",
    "appealed": "warning",
    "approved": "info",
    "awaiting_goods": "info",
    "received": "info",
    "refunded": "success",
    "replaced": "success",
    "repaired": "success",
    "closed": "secondary",
    "rejected": "danger",
    "cancelled": "secondary",
    "open": "danger",
    "resolved": "success",
}

#: What each step is called on the timeline and on its button.
ACTION_LABELS: dict[str, str | Promise] = {
    "file": gettext_lazy("Filed"),
    "approve": gettext_lazy("Approved"),
    "reject": gettext_lazy("Rejected"),
    "appeal": gettext_lazy("Appealed"),
    "approve_appeal": gettext_lazy("Appeal approved"),
    "reject_appeal": gettext_lazy("Appeal rejected"),
    "await_goods": gettext_lazy("Waiting for the goods"),
    "receive": gettext_lazy("Goods received"),
    "refund": gettext_lazy("Refunded"),
    "replace": gettext_lazy("Replacement shipped"),
    "repair": gettext_lazy("Repaired"),
    "close": gettext_lazy("Closed"),
    "cancel": gettext_lazy("Cancelled"),
}


@register.filter
def aftersales_status_class(status: str) -> str:
    return _STATUS_CLASSES.get(str(status), "secondary")


@register.filter
def aftersales_action(action: str) -> str:
    return str(ACTION_LABELS.get(str(action), action))


@register.filter
def waited(value: Any) -> str:
    """``5.5 h`` under two days, ``3 d 4 h`` from then on; an em dash for none."""
    if value is None or value == "":
        return "—"
    amount = float(value)
    if amount < 48:
        return _("%(hours)s h") % {"hours": f"{amount:.1f}"}
    days, rest = divmod(round(amount), 24)
    return _("%(days)s d %(hours)s h") % {"days": days, "hours": rest}


@register.filter
def share(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{100 * float(value):.0f}%"


@register.filter
def get_item_of(mapping: Any, key: Any) -> Any:
    """``values|get_item_of:line.id``: a dictionary entry by a key (any type, as text)."""
    try:
        return mapping.get(str(key), "")
    except AttributeError:
        return ""
