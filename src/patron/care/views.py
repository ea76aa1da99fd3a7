"""The care page for marketers (under Marketing): the measures each grade gets, the care
calendar of the coming days (birthdays, holiday greetings and follow-up visits per grade, by
the policy as it stands) and what the last runs did. The policy is edited in the admin (a link
per row for those who may) or on the API; the page itself only reads.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from patron.account.roles import CHANGE_CAMPAIGNS
from patron.care import selectors
from patron.web.views import patron_page

DAY_CHOICES = (7, 30, 90)


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", 30))
    except (TypeError, ValueError):
        return 30
    return days if days in DAY_CHOICES else 30


@patron_page
def care_overview(request: HttpRequest) -> HttpResponse:
    days = _days(request)
    context = {
        "policy": selectors.care_policy_list(user=request.user),
        "calendar": selectors.care_calendar(user=request.user, days=days),
        "runs": selectors.care_recent_runs(user=request.user, days=14),
        "days": days,
        "day_choices": DAY_CHOICES,
        "today": selectors.today(),
        "may_change": request.user.has_perm(CHANGE_CAMPAIGNS),
    }
    return render(request, "care/overview.html", context)
