"""Template filters of the satisfaction pages: labels of the codes the selectors return, in
the page's language, shares as percentages, durations and status colours."""

from __future__ import annotations

from typing import Any

from django import template

from patron.satisfaction.models import ImprovementPlan, PlanLink, Suggestion, Survey, SurveyQuestion
from patron.web.templatetags.patron_web import choice

register = template.Library()

_CHOICES: dict[str, Any] = {
    "survey_status": Survey.Status,
    "audience": Survey.Audience,
    "schedule": Survey.Schedule,
    "question_kind": SurveyQuestion.Kind,
    "suggestion_status": Suggestion.Status,
    "suggestion_channel": Suggestion.Channel,
    "plan_status": ImprovementPlan.Status,
    "link_kind": PlanLink.Kind,
}

_CLASSES = {
    "draft": "secondary",
    "scheduled": "info",
    "open": "success",
    "closed": "secondary",
    "new": "info",
    "reviewed": "warning",
    "planned": "success",
    "declined": "secondary",
    "proposed": "info",
    "in_progress": "warning",
    "done": "success",
    "dropped": "secondary",
}


@register.filter
def label(value: Any, kind: str) -> str:
    """The page-language label of a code: ``{{ survey.status|label:"survey_status" }}``."""
    choices = _CHOICES.get(kind)
    if choices is None:
        return str(value)
    try:
        return choice(choices(str(value)).label)
    except ValueError:
        return str(value)


@register.filter
def satisfaction_class(status: Any) -> str:
    return _CLASSES.get(str(status), "secondary")


@register.filter
def percent(value: Any) -> str:
    """A share 0–1 as ``87.5 %``; none as a dash."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f} %"


@register.filter
def number(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""
