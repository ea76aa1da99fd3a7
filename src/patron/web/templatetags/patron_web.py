"""Template filters for the pages: money, bilingual choice labels, ratings, status colours."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from patron.account.roles import ROLE_LABELS, Role

register = template.Library()

CURRENCY_SYMBOLS = {"CNY": "¥", "RMB": "¥"}
_CJK = re.compile(r"[\u3400-\u9fff]")

# Labels of the values that the selectors return as codes.
TIMELINE_KINDS = {
    "registration": _("Registered"),
    "order": _("Order placed"),
    "payment": _("Payment"),
    "return": _("Return or exchange"),
    "review": _("Review"),
    "ticket": _("Ticket opened"),
    "audit": _("Record changed"),
    "message": _("Message sent"),
}
EVENT_TYPES = {
    "browse": _("Browsed"),
    "search": _("Searched"),
    "favourite": _("Added to favourites"),
    "add_to_cart": _("Added to cart"),
    "purchase": _("Purchased"),
}
AUDIT_ACTIONS = {
    "create": _("Create"),
    "update": _("Update"),
    "delete": _("Delete"),
    "import": _("Import"),
    "login": _("Login"),
    "access": _("Access"),
}

_SUCCESS = {
    "completed",
    "delivered",
    "succeeded",
    "solved",
    "closed",
    "committed",
    "active",
    "approved",
}
_DANGER = {
    "cancelled",
    "failed",
    "rejected",
    "chargeback",
    "defaulted",
    "refused",
    "exception",
    "urgent",
}
_WARNING = {
    "returned",
    "refunded",
    "pending",
    "on_hold",
    "requested",
    "high",
    "running",
    "inactive",
    "dry_run",
}
_INFO = {"paid", "shipped", "in_transit", "open", "new", "received"}


@register.filter
def money(value: Any, currency: str = "CNY") -> str:
    """``¥1,234.50`` for yuan, ``USD 12.00`` otherwise; an em dash when there is no amount."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    code = (currency or "CNY").upper()
    symbol = CURRENCY_SYMBOLS.get(code)
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{code} {text}"


@register.filter
def choice(label: Any) -> str:
    """Model choice labels read ``"已付款 Paid"``: show the half in the page's language."""
    text = str(label)
    first, separator, rest = text.partition(" ")
    if separator and rest and _CJK.search(first):
        return first if (get_language() or "").startswith("zh") else rest
    return text


@register.filter
def grade_label(code: str) -> str:
    """A grade's code (``core``) as its name in the page's language (核心客户 / Core)."""
    from patron.scoring.models import Grade

    try:
        return choice(Grade(code).label)
    except ValueError:
        return code


@register.filter
def role_label(name: str) -> str:
    try:
        return choice(ROLE_LABELS[Role(name)])
    except (ValueError, KeyError):
        return name


@register.filter
def stars(rating: Any) -> str:
    try:
        value = max(0, min(5, int(rating)))
    except (TypeError, ValueError):
        return ""
    return "★" * value + "☆" * (5 - value)


@register.filter
def status_class(value: Any) -> str:
    """Bootstrap colour for a status, priority or flag code."""
    code = str(value)
    if code in _SUCCESS:
        return "success"
    if code in _DANGER:
        return "danger"
    if code in _WARNING:
        return "warning"
    if code in _INFO:
        return "info"
    return "secondary"


@register.filter
def timeline_label(kind: str) -> str:
    return str(TIMELINE_KINDS.get(kind, kind))


@register.filter
def event_label(event_type: str) -> str:
    return str(EVENT_TYPES.get(event_type, event_type))


@register.filter
def audit_action_label(action: str) -> str:
    return str(AUDIT_ACTIONS.get(action, action))
