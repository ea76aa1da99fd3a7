"""Pure rules of insights: where a target stands, and the targets the seed documents set.

A target runs from a baseline (the metric's value when it was set) to a goal (a value, or the
baseline changed by a share) by a deadline. Progress is the share of the way from baseline to
goal covered so far; it is compared with the share of the time elapsed:

- ``achieved``: the latest value meets the goal (in the metric's better direction);
- ``missed``: the deadline has passed and it does not;
- ``on_track``: progress ≥ the share of time elapsed − ``SLACK``;
- ``at_risk``: behind that;
- ``no_data``: the metric has no value yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext_noop

from patron.errors import ValidationFailed

#: How far behind the straight line from baseline to goal a target may be and still be on track.
SLACK = 0.10

STATUSES = ("achieved", "on_track", "at_risk", "missed", "no_data")


@dataclass(frozen=True)
class TargetSpec:
    direction: str  # "up" | "down": which way the metric is better
    baseline: float
    target_value: float | None
    target_change: float | None
    starts_on: date
    deadline: date

    @property
    def goal(self) -> float:
        if self.target_value is not None:
            return self.target_value
        assert self.target_change is not None
        return self.baseline * (1 + self.target_change)


@dataclass(frozen=True)
class TargetProgress:
    status: str
    goal: float
    current: float | None
    progress: float | None  # share of the way from baseline to goal, may exceed 1 or be < 0
    time_elapsed: float  # share of the time from start to deadline, 0..1


def _meets(direction: str, value: float, goal: float) -> bool:
    return value >= goal if direction == "up" else value <= goal


def target_progress(spec: TargetSpec, current: float | None, today: date) -> TargetProgress:
    total = max((spec.deadline - spec.starts_on).days, 1)
    elapsed = min(max((today - spec.starts_on).days / total, 0.0), 1.0)
    goal = spec.goal
    if current is None:
        return TargetProgress("no_data", goal, None, None, elapsed)
    span = goal - spec.baseline
    better = 1.0 if spec.direction == "up" else -1.0
    meets = _meets(spec.direction, current, goal)
    # A goal already met when the target was set is kept or not: there is no way to cover.
    kept = 1.0 if meets else 0.0
    progress = (current - spec.baseline) / span if span * better > 0 else kept
    if meets:
        status = "achieved"
    elif today > spec.deadline:
        status = "missed"
    elif progress >= elapsed - SLACK:
        status = "on_track"
    else:
        status = "at_risk"
    return TargetProgress(status, goal, current, progress, elapsed)


@dataclass(frozen=True)
class DefaultTarget:
    metric: str
    name: str
    target_value: float | None = None
    target_change: float | None = None
    months: int = 12


#: The seed documents' targets (R-J2), shipped as editable defaults. Changes are relative to
#: the baseline ("complaint rate −20 %" is 0.8 × the baseline, not 20 points less). Their names
#: are stored in English and shown in the reader's language while a target is a default one.
SEED_TARGETS: tuple[DefaultTarget, ...] = (
    DefaultTarget("csat", gettext_noop("Satisfaction ≥ 85 % within 12 months"), target_value=0.85),
    DefaultTarget("complaint_rate", gettext_noop("Complaint rate −20 %"), target_change=-0.20),
    DefaultTarget("repurchase_rate", gettext_noop("Repurchase rate +15 %"), target_change=0.15),
    DefaultTarget(
        "first_response_minutes",
        gettext_noop("Average first response ≤ 30 minutes"),
        target_value=30.0,
    ),
    DefaultTarget("core_share", gettext_noop("High-value (core) share +20 %"), target_change=0.20),
    DefaultTarget("return_rate", gettext_noop("Return rate −10 %"), target_change=-0.10),
)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has fewer days)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_parse(text: str, name: str = "month") -> date:
    """``YYYY-MM`` as the month's first day; anything else is refused, naming the field and the
    value. The one month reader of the insight pages, API and reports."""
    found = _MONTH.match(text.strip()) if isinstance(text, str) else None
    if found is None or int(found.group(1)) < 1:
        raise ValidationFailed(f"{name}: expected a month as YYYY-MM, got {text!r}")
    return date(int(found.group(1)), int(found.group(2)), 1)
