"""Reading care: the policy table, the care calendar (what the automations will do in the
coming days), what the runs did, and what one customer gets.

Reads are permission-checked like the rest of marketing: the policy, the calendar and the runs
need ``marketing.view_campaign``; a customer's measures need ``customer.view_customer``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, QuerySet, Value
from django.db.models.functions import Coalesce, ExtractDay, ExtractMonth
from django.utils import timezone

from patron.account.roles import VIEW_CAMPAIGNS, VIEW_CUSTOMERS
from patron.account.services import require_permission
from patron.care import rules
from patron.care.models import CareTouch, GradeMeasure
from patron.customer.models import Customer
from patron.errors import NotFound, ValidationFailed
from patron.scoring.models import GradeHistory

#: Ticket states in which a visit is still being worked on (the next one waits for it).
OPEN_TICKET_STATES = ("new", "open", "pending", "on_hold")
MAX_CALENDAR_DAYS = 366


def today() -> date:
    """The merchant's calendar day now (``settings.TIME_ZONE``)."""
    return timezone.localdate()


def care_customers(grades: Iterable[str]) -> QuerySet[Any]:
    """Active customers whose grade is one of ``grades`` (customers not graded yet count as
    ordinary), annotated with ``care_grade`` ('' for the ungraded)."""
    wanted = set(grades)
    values = sorted(wanted | ({""} if rules.ORDINARY in wanted else set()))
    return (
        Customer.objects.filter(status=Customer.Status.ACTIVE)
        .annotate(care_grade=Coalesce("score__grade", Value("")))
        .filter(care_grade__in=values)
    )


def _policy() -> dict[str, GradeMeasure]:
    from patron.care.services import care_policy

    return care_policy()


# ---------------------------------------------------------------------- visits


@dataclass(frozen=True)
class VisitDue:
    """When a customer's next follow-up visit is due, and whether to open it now."""

    customer_id: int
    grade: str
    due_on: date
    last_visit_on: date | None
    has_open_visit: bool
    is_due: bool


def visit_schedule(
    policy: Mapping[str, GradeMeasure], day: date, *, customer_id: int | None = None
) -> list[VisitDue]:
    """Every customer of a grade with visits (or only ``customer_id``): their next visit's due
    date as of ``day``, and whether to open it that day."""
    intervals = {g: row.visit_interval_days for g, row in policy.items() if row.visit_interval_days}
    if not intervals:
        return []
    starts = {g: policy[g].visits_from for g in intervals}
    customers = care_customers(intervals)
    visits = CareTouch.objects.filter(kind=rules.VISIT)
    history = GradeHistory.objects.filter(valid_to__isnull=True, grade__in=list(intervals))
    if customer_id is not None:
        customers = customers.filter(pk=customer_id)
        visits = visits.filter(customer_id=customer_id)
        history = history.filter(customer_id=customer_id)
    last: dict[int, date] = dict(
        visits.values("customer_id").annotate(last=Max("run_on")).values_list("customer_id", "last")
    )
    open_visits = set(
        visits.filter(ticket__status__in=OPEN_TICKET_STATES).values_list("customer_id", flat=True)
    )
    since: dict[int, date] = dict(history.values_list("customer_id", "valid_from"))
    schedule = []
    rows = customers.values_list("pk", "care_grade")
    for pk, care_grade in rows.iterator(chunk_size=5000):
        grade = rules.grade_or_ordinary(care_grade)
        due_on = rules.visit_due_on(
            interval_days=intervals[grade],
            customer_id=pk,
            last_visit_on=last.get(pk),
            grade_since=since.get(pk),
            visits_from=starts[grade],
            today=day,
        )
        has_open = pk in open_visits
        schedule.append(
            VisitDue(
                customer_id=pk,
                grade=grade,
                due_on=due_on,
                last_visit_on=last.get(pk),
                has_open_visit=has_open,
                is_due=rules.visit_is_due(due_on=due_on, day=day, has_open_visit=has_open),
            )
        )
    return schedule


# ---------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class MeasuresView:
    grade: str
    grade_label: str
    exclusive_discount_percent: Decimal
    has_priority_handling: bool
    has_dedicated_line: bool
    visit_interval_days: int | None
    visits_from: date | None
    sends_birthday_greeting: bool
    birthday_coupon_template_id: int | None
    birthday_coupon_template_name: str
    holidays: list[str]
    holiday_names: list[str]
    holiday_days_ahead: int
    holiday_coupon_template_id: int | None
    holiday_coupon_template_name: str
    version: int
    note: str
    updated_by: str
    updated_at: datetime


def measures_view(row: GradeMeasure) -> MeasuresView:
    zh, en = rules.GRADE_NAMES[row.grade]
    birthday, holiday = row.birthday_coupon_template, row.holiday_coupon_template
    return MeasuresView(
        grade=row.grade,
        grade_label=f"{zh} {en}",
        exclusive_discount_percent=row.exclusive_discount_percent,
        has_priority_handling=row.has_priority_handling,
        has_dedicated_line=row.has_dedicated_line,
        visit_interval_days=row.visit_interval_days,
        visits_from=row.visits_from,
        sends_birthday_greeting=row.sends_birthday_greeting,
        birthday_coupon_template_id=row.birthday_coupon_template_id,
        birthday_coupon_template_name=birthday.name if birthday else "",
        holidays=list(row.holidays or ()),
        holiday_names=[
            f"{rules.HOLIDAYS[c].name_zh} {rules.HOLIDAYS[c].name_en}"
            for c in row.holidays or ()
            if c in rules.HOLIDAYS
        ],
        holiday_days_ahead=row.holiday_days_ahead,
        holiday_coupon_template_id=row.holiday_coupon_template_id,
        holiday_coupon_template_name=holiday.name if holiday else "",
        version=row.version,
        note=row.note,
        updated_by=row.updated_by.get_username() if row.updated_by else "",
        updated_at=row.updated_at,
    )


def care_policy_list(*, user: Any) -> list[MeasuresView]:
    """The policy table, highest grade first."""
    require_permission(user, VIEW_CAMPAIGNS)
    return [measures_view(row) for row in _policy().values()]


# ---------------------------------------------------------------------- the calendar


@dataclass(frozen=True)
class CalendarEntryView:
    on: date
    kind: str
    grade: str
    grade_label: str
    customers: int
    holiday: str
    holiday_name: str
    holiday_on: date | None


def calendar_facts(policy: Mapping[str, GradeMeasure], start: date) -> rules.CalendarInput:
    """Customers per grade, birthdays per (month, day, grade) and visits per (due day, grade)
    — grouped by the database, so the calendar costs a few queries however many customers."""
    grade_counts: dict[str, int] = defaultdict(int)
    rows = care_customers(rules.GRADES).values("care_grade").annotate(n=Count("pk"))
    for row in rows:
        grade_counts[rules.grade_or_ordinary(row["care_grade"])] += row["n"]
    with_birthdays = [g for g, row in policy.items() if row.sends_birthday_greeting]
    birthdays: dict[tuple[int, int, str], int] = defaultdict(int)
    born = (
        care_customers(with_birthdays)
        .filter(birthday__isnull=False)
        .values("care_grade", month=ExtractMonth("birthday"), day=ExtractDay("birthday"))
        .annotate(n=Count("pk"))
    )
    for row in born:
        key = (row["month"], row["day"], rules.grade_or_ordinary(row["care_grade"]))
        birthdays[key] += row["n"]
    visits: dict[tuple[date, str], int] = defaultdict(int)
    for due in visit_schedule(policy, start):
        if not due.has_open_visit:
            visits[(due.due_on, due.grade)] += 1
    greeted = CareTouch.objects.filter(
        occasion_on__gte=start, occasion_on__lte=start + timedelta(days=2 * MAX_CALENDAR_DAYS)
    )
    birthdays_done = {
        (row["occasion_on"], row["grade"]): row["n"]
        for row in greeted.filter(kind=rules.BIRTHDAY)
        .values("occasion_on", "grade")
        .annotate(n=Count("pk"))
    }
    holidays_done = {
        (row["occasion"], row["grade"]): row["n"]
        for row in greeted.filter(kind=rules.HOLIDAY)
        .values("occasion", "grade")
        .annotate(n=Count("pk"))
    }
    return rules.CalendarInput(
        measures={g: row.measures() for g, row in policy.items()},
        grade_counts=dict(grade_counts),
        birthdays=dict(birthdays),
        visits=dict(visits),
        birthdays_done=birthdays_done,
        holidays_done=holidays_done,
    )


def care_upcoming(*, start: date | None = None, days: int = 30) -> list[CalendarEntryView]:
    """What the automations will do on each of the ``days`` days from ``start`` (default
    today), per grade, by the policy as it stands. No permission check: for the CLI and
    the job; staff read it through ``care_calendar``."""
    start = start or today()
    days = max(1, min(days, MAX_CALENDAR_DAYS))
    if not rules.FIRST_YEAR <= start.year < rules.LAST_YEAR:
        raise ValidationFailed(
            f"start: the holiday calendar covers {rules.FIRST_YEAR}–{rules.LAST_YEAR}; "
            f"start between {rules.FIRST_YEAR}-01-01 and {rules.LAST_YEAR - 1}-12-31",
            details={"field": "start"},
        )
    policy = _policy()
    entries = rules.care_calendar(calendar_facts(policy, start), start=start, days=days)
    return [_entry_view(e) for e in entries]


def care_calendar(
    *, user: Any, start: date | None = None, days: int = 30
) -> list[CalendarEntryView]:
    require_permission(user, VIEW_CAMPAIGNS)
    return care_upcoming(start=start, days=days)


def _entry_view(entry: rules.CalendarEntry) -> CalendarEntryView:
    zh, en = rules.GRADE_NAMES[entry.grade]
    holiday = rules.HOLIDAYS.get(entry.holiday)
    return CalendarEntryView(
        on=entry.on,
        kind=entry.kind,
        grade=entry.grade,
        grade_label=f"{zh} {en}",
        customers=entry.customers,
        holiday=entry.holiday,
        holiday_name=f"{holiday.name_zh} {holiday.name_en}" if holiday else "",
        holiday_on=entry.holiday_on,
    )


# ---------------------------------------------------------------------- what the runs did


@dataclass(frozen=True)
class RunDay:
    """What the runs of one day did."""

    run_on: date
    birthday_greetings: int
    holiday_greetings: int
    not_sent: int
    coupons: int
    offers_skipped: int
    visits: int


def care_recent_runs(*, user: Any, days: int = 14) -> list[RunDay]:
    """The last ``days`` days with care activity, newest first."""
    require_permission(user, VIEW_CAMPAIGNS)
    since = timezone.localdate() - timedelta(days=days)
    rows = (
        CareTouch.objects.filter(run_on__gte=since)
        .values("run_on", "kind", "outcome", "offer")
        .annotate(n=Count("pk"))
    )
    counts: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        day, n = counts[row["run_on"]], row["n"]
        if row["outcome"] == CareTouch.Outcome.SUPPRESSED:
            day["not_sent"] += n
        elif row["kind"] == rules.VISIT:
            day["visits"] += n
        else:
            day[f"{row['kind']}_greetings"] += n
        if row["offer"] == CareTouch.Offer.ISSUED:
            day["coupons"] += n
        elif row["offer"]:
            day["offers_skipped"] += n
    return [
        RunDay(
            run_on=day,
            birthday_greetings=c["birthday_greetings"],
            holiday_greetings=c["holiday_greetings"],
            not_sent=c["not_sent"],
            coupons=c["coupons"],
            offers_skipped=c["offers_skipped"],
            visits=c["visits"],
        )
        for day, c in sorted(counts.items(), reverse=True)
    ]


# ---------------------------------------------------------------------- one customer


@dataclass(frozen=True)
class TouchView:
    kind: str
    occasion: str
    occasion_on: date
    run_on: date
    outcome: str
    offer: str
    reason: str
    message_id: int | None
    coupon_code: str
    ticket_id: int | None


@dataclass(frozen=True)
class CustomerCareView:
    """What one customer gets now: their grade's measures, their dedicated agent, when the
    next birthday greeting and visit are due, and the latest care touches."""

    customer_id: int
    grade: str
    measures: MeasuresView
    dedicated_agent: str | None
    next_birthday_greeting: date | None
    next_visit_on: date | None
    touches: list[TouchView]


def customer_care(*, user: Any, customer_id: int) -> CustomerCareView:
    require_permission(user, VIEW_CUSTOMERS)
    from patron.service.models import DedicatedAgent

    customer = (
        Customer.objects.annotate(care_grade=Coalesce("score__grade", Value("")))
        .filter(pk=customer_id)
        .first()
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", details={"customer_id": customer_id})
    grade = rules.grade_or_ordinary(customer.care_grade)
    policy = _policy()
    row = policy[grade]
    today = timezone.localdate()
    next_birthday = None
    if row.sends_birthday_greeting and customer.birthday is not None:
        next_birthday = rules.next_birthday(customer.birthday, today)
    next_visit = None
    if row.visit_interval_days and customer.status == Customer.Status.ACTIVE:
        mine = visit_schedule({grade: row}, today, customer_id=customer_id)
        next_visit = max(mine[0].due_on, today) if mine else None
    agent = DedicatedAgent.objects.filter(customer_id=customer_id).select_related("user").first()
    touches = (
        CareTouch.objects.filter(customer_id=customer_id)
        .select_related("coupon")
        .order_by("-run_on", "-id")[:20]
    )
    return CustomerCareView(
        customer_id=customer_id,
        grade=grade,
        measures=measures_view(row),
        dedicated_agent=agent.user.get_username() if agent else None,
        next_birthday_greeting=next_birthday,
        next_visit_on=next_visit,
        touches=[
            TouchView(
                kind=t.kind,
                occasion=t.occasion,
                occasion_on=t.occasion_on,
                run_on=t.run_on,
                outcome=t.outcome,
                offer=t.offer,
                reason=t.reason,
                message_id=t.message_id,
                coupon_code=t.coupon.code if t.coupon else "",
                ticket_id=t.ticket_id,
            )
            for t in touches
        ],
    )
