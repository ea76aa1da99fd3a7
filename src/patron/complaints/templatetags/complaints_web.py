"""Template filters of the complaint pages: stage and severity labels and colours, step names,
hours and shares, reasons of the risk model."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.complaints.models import Complaint
from patron.web.templatetags.patron_web import choice

register = template.Library()

_STAGE_CLASSES = {
    "recorded": "secondary",
    "investigating": "primary",
    "resolution_proposed": "info",
    "accepted": "success",
    "follow_up_scheduled": "warning",
    "follow_up_done": "success",
    "closed": "dark",
}
_SEVERITY_CLASSES = {"minor": "secondary", "major": "warning", "critical": "danger"}
ACTION_LABELS: dict[str, Any] = {
    "record": gettext_lazy("Recorded"),
    "assign": gettext_lazy("Assigned to a department"),
    "propose": gettext_lazy("Resolution proposed"),
    "accept": gettext_lazy("Customer accepted"),
    "reject": gettext_lazy("Customer rejected"),
    "schedule_follow_up": gettext_lazy("Follow-up visit scheduled"),
    "complete_follow_up": gettext_lazy("Follow-up visit done"),
    "close": gettext_lazy("Closed"),
    "withdraw": gettext_lazy("Withdrawn by the customer"),
}
STEP_LABELS: dict[str, Any] = {
    "assign a department": gettext_lazy("assign a department"),
    "propose a resolution": gettext_lazy("propose a resolution"),
    "the customer's answer": gettext_lazy("the customer's answer"),
    "schedule the follow-up visit": gettext_lazy("schedule the follow-up visit"),
    "do the follow-up visit": gettext_lazy("do the follow-up visit"),
    "close the complaint": gettext_lazy("close the complaint"),
}


@register.filter
def stage_label(stage: str) -> str:
    try:
        return choice(Complaint.Stage(str(stage)).label)
    except ValueError:
        return str(stage)


@register.filter
def stage_class(stage: str) -> str:
    return _STAGE_CLASSES.get(str(stage), "secondary")


@register.filter
def severity_label(severity: str) -> str:
    try:
        return choice(Complaint.Severity(str(severity)).label)
    except ValueError:
        return str(severity)


@register.filter
def severity_class(severity: str) -> str:
    return _SEVERITY_CLASSES.get(str(severity), "secondary")


@register.filter
def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(str(action), str(action).replace("_", " ")))


@register.filter
def step_label(step: str) -> str:
    return str(STEP_LABELS.get(str(step), step))


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
def share(value: Any) -> str:
    """A share as a percentage; an em dash for none."""
    if value is None or value == "":
        return "—"
    return f"{100 * float(value):.0f}%"


@register.filter
def decimal3(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):.3f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""


@register.filter
def probability(value: Any) -> str:
    """A chance as a percentage, with a decimal below 10 % (0.3 %, not 0 %)."""
    if value is None or value == "":
        return "—"
    percent = 100 * float(value)
    if percent < 0.1:
        return "<0.1%"
    return f"{percent:.1f}%" if percent < 10 else f"{percent:.0f}%"
