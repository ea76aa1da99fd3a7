"""Pure rules of care (R-G5) and of the measures by grade (R-G2). Nothing here touches the
database or Django; ``patron.care.services`` reads the policy, the customers and what was done
already, asks these functions, and writes the answers down.

1. **Measures by grade** — ``Measures``, one per grade (core, potential, ordinary): exclusive
   discount, priority handling, dedicated line, the follow-up visit interval, the birthday
   greeting and its coupon, the holidays greeted (how many days ahead) and their coupon.
   ``measures_from`` checks a row as a whole; every refusal names the grade and the field
   (``core.holidays: …``). ``DEFAULT_MEASURES`` is R-G2's default table.
2. **Birthdays** — a customer is greeted on their birthday in the merchant's calendar; those
   born on 29 February are greeted on 28 February in years without one
   (``birthday_in``, ``birthdays_celebrated_on``).
3. **Holidays** — the real dates of the Chinese festivals Patron greets (``HOLIDAYS``), from the
   ``holidays`` package: the lunar festivals move every year (Spring Festival 2026 is
   17 February, Mid-Autumn 2026 is 25 September). ``chinese_calendar`` knows the official
   days off, but not which day of a block is the festival itself, and only for the years it
   ships; ``holidays`` gives the festival's own day for any year. A greeting is due from
   ``days_ahead`` days before the festival up to the festival itself (``holidays_due``), so a
   day the job missed is caught up the next day, and never after the festival.
4. **Follow-up visits** — due ``interval`` days after the last one; the first within one
   interval of the customer entering the grade (or of the grade's visits starting), spread
   over it by customer so that a regrade does not put everyone on one day; never while the
   last one's ticket is still open (``visit_due_on``, ``visit_is_due``).
5. **Offers** — ``offer_within_budget``: a coupon is issued only while what its template has
   given, plus the face value of its codes still open, stays within its budget.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

# ---------------------------------------------------------------------- grades

CORE = "core"
POTENTIAL = "potential"
ORDINARY = "ordinary"
#: Highest first. A customer not graded yet (no scoring run since they arrived) is ordinary.
GRADES: tuple[str, ...] = (CORE, POTENTIAL, ORDINARY)
GRADE_NAMES: dict[str, tuple[str, str]] = {
    CORE: ("核心客户", "Core"),
    POTENTIAL: ("潜力客户", "Potential"),
    ORDINARY: ("普通客户", "Ordinary"),
}


def grade_or_ordinary(grade: str | None) -> str:
    """The grade the policy applies to: customers without one are treated as ordinary."""
    return grade if grade in GRADE_NAMES else ORDINARY


# ---------------------------------------------------------------------- holidays


@dataclass(frozen=True)
class Holiday:
    """A festival Patron can greet customers on, with its names and the wish that goes with
    it (端午 is wished 安康, not 快乐: it commemorates a death)."""

    code: str
    name_zh: str
    name_en: str
    greeting_zh: str
    greeting_en: str


HOLIDAYS: dict[str, Holiday] = {
    h.code: h
    for h in (
        Holiday("new_year", "元旦", "New Year's Day", "新年快乐", "Happy New Year"),
        Holiday(
            "spring_festival",
            "春节",
            "the Spring Festival",
            "春节快乐",
            "Happy Chinese New Year",
        ),
        Holiday(
            "lantern", "元宵节", "the Lantern Festival", "元宵节快乐", "Happy Lantern Festival"
        ),
        Holiday("labour_day", "劳动节", "Labour Day", "劳动节快乐", "Happy Labour Day"),
        Holiday(
            "dragon_boat",
            "端午节",
            "the Dragon Boat Festival",
            "端午安康",
            "Best wishes for the Dragon Boat Festival",
        ),
        Holiday(
            "mid_autumn",
            "中秋节",
            "the Mid-Autumn Festival",
            "中秋快乐，阖家团圆",
            "Happy Mid-Autumn Festival",
        ),
        Holiday(
            "double_ninth",
            "重阳节",
            "the Double Ninth Festival",
            "重阳安康",
            "Best wishes for the Double Ninth Festival",
        ),
        Holiday("national_day", "国庆节", "National Day", "国庆快乐", "Happy National Day"),
    )
}

#: Where each festival's date comes from: (country, its name in the ``holidays`` package's
#: en_US table). The Double Ninth is not a public holiday on the mainland: Hong Kong's table
#: has it on its lunar date (9th day of the 9th month). Qingming (tomb sweeping) is left out
#: on purpose: it is not a day for cheerful greetings and offers.
_HOLIDAY_SOURCES: dict[str, tuple[str, str]] = {
    "new_year": ("CN", "New Year's Day"),
    "spring_festival": ("CN", "Chinese New Year (Spring Festival)"),
    "labour_day": ("CN", "Labor Day"),
    "dragon_boat": ("CN", "Dragon Boat Festival"),
    "mid_autumn": ("CN", "Mid-Autumn Festival"),
    "double_ninth": ("HK", "Double Ninth Festival"),
    "national_day": ("CN", "National Day"),
}
#: The Lantern Festival is the 15th day of the first lunar month: the first month always has
#: at least 29 days, so it is exactly 14 days after the Spring Festival (its 1st day).
_LANTERN_AFTER_SPRING_FESTIVAL = timedelta(days=14)
#: The years the package's lunar tables cover.
FIRST_YEAR, LAST_YEAR = 1901, 2099


class UnknownHoliday(ValueError):
    """A holiday code Patron does not know, or a year outside the calendar's tables."""


@lru_cache(maxsize=512)
def _first_days(country: str, year: int) -> Mapping[str, date]:
    """Holiday name -> its first day in ``year`` (a festival's own day comes before the days
    off that follow it; observed days carry another name)."""
    import holidays

    table = holidays.country_holidays(country, years=year, language="en_US")
    first: dict[str, date] = {}
    for day in sorted(table):
        for name in str(table[day]).split("; "):  # two festivals on one day (2028-10-03)
            first.setdefault(name.strip(), day)
    return first


def holiday_date(code: str, year: int) -> date:
    """The day of festival ``code`` in ``year``."""
    if code not in HOLIDAYS:
        raise UnknownHoliday(f"holiday {code!r} is unknown; known: {', '.join(HOLIDAYS)}")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise UnknownHoliday(f"holiday dates are known for {FIRST_YEAR}–{LAST_YEAR}, not {year}")
    if code == "lantern":
        return holiday_date("spring_festival", year) + _LANTERN_AFTER_SPRING_FESTIVAL
    country, name = _HOLIDAY_SOURCES[code]
    found = _first_days(country, year).get(name)
    if found is None:  # the package renamed it: fail loudly rather than greet on a wrong day
        raise UnknownHoliday(f"holiday {code!r}: no {name!r} in the {country} calendar of {year}")
    return found


def holidays_between(codes: Iterable[str], start: date, end: date) -> list[tuple[date, str]]:
    """``(day, code)`` of every festival of ``codes`` on a day in ``[start, end]``, by day."""
    found = [
        (day, code)
        for code in set(codes)
        for year in range(start.year, end.year + 1)
        if start <= (day := holiday_date(code, year)) <= end
    ]
    return sorted(found)


def greeting_window(holiday_on: date, days_ahead: int) -> tuple[date, date]:
    """The first and last day a greeting for the festival on ``holiday_on`` may go out."""
    return holiday_on - timedelta(days=days_ahead), holiday_on


def holidays_due(codes: Iterable[str], days_ahead: int, day: date) -> list[tuple[str, date]]:
    """``(code, festival day)`` of the festivals of ``codes`` whose greeting window contains
    ``day``: from ``days_ahead`` days before the festival up to the festival itself."""
    due = []
    for code in sorted(set(codes)):
        for year in (day.year, day.year + 1):  # New Year's Day greeted in December
            holiday_on = holiday_date(code, year)
            first, last = greeting_window(holiday_on, days_ahead)
            if first <= day <= last:
                due.append((code, holiday_on))
    return due


def holiday_occasion(code: str, holiday_on: date) -> str:
    """What a holiday greeting is for: one per festival per year and customer."""
    return f"{code}:{holiday_on.year}"


# ---------------------------------------------------------------------- birthdays


def birthday_in(birthday: date, year: int) -> date:
    """The day ``birthday`` is celebrated in ``year``: 29 February falls on 28 February in
    years without one."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def birthdays_celebrated_on(day: date) -> tuple[tuple[int, int], ...]:
    """The (month, day) birthdays celebrated on ``day``: its own, and 29 February on
    28 February of a year without one."""
    pairs = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        pairs.append((2, 29))
    return tuple(pairs)


def next_birthday(birthday: date, on_or_after: date) -> date:
    """The first day on or after ``on_or_after`` that ``birthday`` is celebrated."""
    this_year = birthday_in(birthday, on_or_after.year)
    return this_year if this_year >= on_or_after else birthday_in(birthday, on_or_after.year + 1)


def birthday_occasion(day: date) -> str:
    """What a birthday greeting is for: one per customer per year."""
    return str(day.year)


# ---------------------------------------------------------------------- visits


def visit_offset(customer_id: int, interval_days: int) -> int:
    """Days after the start of a customer's visits their first one falls: spread evenly over
    the interval by customer, so that the customers who entered a grade on one day (a
    quarterly regrade, the day visits were switched on) are not all visited on one day — and,
    each next visit following the last by the interval, not forever after either."""
    return customer_id % interval_days


def visit_due_on(
    *,
    interval_days: int,
    customer_id: int,
    last_visit_on: date | None,
    grade_since: date | None,
    visits_from: date | None,
    today: date,
) -> date:
    """When the customer's next follow-up visit is due: ``interval_days`` after the last
    one; with none yet, within one interval of when they could first have one — the later of
    entering their grade and the grade's visits starting (today when neither is known) — on
    the day ``visit_offset`` gives them."""
    if interval_days < 1:
        raise ValueError(f"interval_days must be 1 or more, got {interval_days}")
    if last_visit_on is not None:
        return last_visit_on + timedelta(days=interval_days)
    known = [d for d in (grade_since, visits_from) if d is not None]
    start = max(known) if known else today
    return start + timedelta(days=visit_offset(customer_id, interval_days))


def visit_is_due(*, due_on: date, day: date, has_open_visit: bool) -> bool:
    """Whether a visit should be opened on ``day``: due (or overdue), and the last visit's
    ticket is not still being worked on (one visit at a time)."""
    return due_on <= day and not has_open_visit


def visit_occasion(due_on: date) -> str:
    return due_on.isoformat()


# ---------------------------------------------------------------------- offers


def offer_within_budget(*, budget: Decimal | None, committed: Decimal, unit: Decimal) -> bool:
    """Whether one more coupon fits its template's budget. ``committed``: discount already
    given plus the face value of the template's codes still open; ``unit``: this coupon's face
    value (amount off), or 0 when it is not known in advance (percent off: then only while
    the budget is not used up)."""
    if budget is None:
        return True
    if unit > 0:
        return committed + unit <= budget
    return committed < budget


# ---------------------------------------------------------------------- the policy

MAX_DISCOUNT_PERCENT = Decimal("90")
MIN_VISIT_INTERVAL, MAX_VISIT_INTERVAL = 7, 3650
MAX_DAYS_AHEAD = 30
MAX_ID = 2**63 - 1


class MeasuresInvalid(ValueError):
    """A policy row that cannot be saved; ``field`` names what is wrong, the message names
    the grade and the field."""

    def __init__(self, grade: str, field: str, problem: str) -> None:
        super().__init__(f"{grade}.{field}: {problem}")
        self.grade = grade
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Measures:
    """What one grade gets (R-G2). ``None`` templates: greet without an offer; an empty
    ``holidays``: no holiday greetings; ``visit_interval_days`` None: no visits."""

    grade: str
    exclusive_discount_percent: Decimal = Decimal("0")
    has_priority_handling: bool = False
    has_dedicated_line: bool = False
    visit_interval_days: int | None = None
    sends_birthday_greeting: bool = True
    birthday_coupon_template_id: int | None = None
    holidays: tuple[str, ...] = ()
    holiday_days_ahead: int = 1
    holiday_coupon_template_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the audit record's old and new)."""
        data = asdict(self)
        data["exclusive_discount_percent"] = str(self.exclusive_discount_percent)
        data["holidays"] = list(self.holidays)
        return data

    def coupon_template_ids(self) -> set[int]:
        return {
            t
            for t in (self.birthday_coupon_template_id, self.holiday_coupon_template_id)
            if t is not None
        }


#: Fields staff edit (the grade names the row).
EDITABLE: tuple[str, ...] = tuple(f for f in Measures.__dataclass_fields__ if f != "grade")

#: R-G2 as shipped: core customers get an exclusive discount, priority handling, a dedicated
#: line and a visit every quarter; potential customers care messages on the big festivals;
#: ordinary customers a birthday greeting and the Spring Festival. Coupons are the merchant's
#: own (marketing's templates), so none is set until staff choose one.
DEFAULT_MEASURES: dict[str, Measures] = {
    CORE: Measures(
        grade=CORE,
        exclusive_discount_percent=Decimal("5.00"),
        has_priority_handling=True,
        has_dedicated_line=True,
        visit_interval_days=90,
        holidays=(
            "new_year",
            "spring_festival",
            "lantern",
            "dragon_boat",
            "mid_autumn",
            "double_ninth",
            "national_day",
        ),
        holiday_days_ahead=3,
    ),
    POTENTIAL: Measures(
        grade=POTENTIAL,
        holidays=("spring_festival", "dragon_boat", "mid_autumn", "national_day"),
        holiday_days_ahead=2,
    ),
    ORDINARY: Measures(grade=ORDINARY, holidays=("spring_festival",), holiday_days_ahead=1),
}


def _boolean(grade: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise MeasuresInvalid(grade, name, f"expected true or false, got {value!r}")
    return value


def _whole(grade: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MeasuresInvalid(grade, name, f"expected a whole number {low}–{high}, got {value!r}")
    return value


def _template_id(grade: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    return _whole(grade, name, value, 1, MAX_ID)


def _percent(grade: str, value: Any) -> Decimal:
    name = "exclusive_discount_percent"
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise MeasuresInvalid(grade, name, f"expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise MeasuresInvalid(grade, name, f"expected a number, got {value!r}") from None
    if not number.is_finite() or not Decimal("0") <= number <= MAX_DISCOUNT_PERCENT:
        raise MeasuresInvalid(grade, name, f"expected 0 to {MAX_DISCOUNT_PERCENT} (percent off)")
    return number.quantize(Decimal("0.01"))


def _holidays(grade: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise MeasuresInvalid(grade, "holidays", "expected a list of holiday codes")
    seen: list[str] = []
    for code in value:
        if code not in HOLIDAYS:
            raise MeasuresInvalid(
                grade, "holidays", f"{code!r} is unknown; known: {', '.join(HOLIDAYS)}"
            )
        if code in seen:
            raise MeasuresInvalid(grade, "holidays", f"{code!r} is listed twice")
        seen.append(code)
    return tuple(code for code in HOLIDAYS if code in seen)  # the calendar's order


def measures_from(grade: str, data: Mapping[str, Any], *, base: Measures | None = None) -> Measures:
    """The row for ``grade``: ``base`` (default: the shipped default) changed by ``data``.
    Raises ``MeasuresInvalid`` naming the grade and the field for an unknown grade or field,
    a value out of range, or an offer with nothing to attach it to."""
    if grade not in GRADE_NAMES:
        raise MeasuresInvalid(grade, "grade", f"expected one of {', '.join(GRADES)}")
    if not isinstance(data, Mapping):
        raise MeasuresInvalid(grade, "*", "expected an object")
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise MeasuresInvalid(grade, unknown[0], f"unknown field; editable: {', '.join(EDITABLE)}")
    merged = {**(base or DEFAULT_MEASURES[grade]).to_dict(), **data}
    measures = Measures(
        grade=grade,
        exclusive_discount_percent=_percent(grade, merged["exclusive_discount_percent"]),
        has_priority_handling=_boolean(
            grade, "has_priority_handling", merged["has_priority_handling"]
        ),
        has_dedicated_line=_boolean(grade, "has_dedicated_line", merged["has_dedicated_line"]),
        visit_interval_days=(
            None
            if merged["visit_interval_days"] is None
            else _whole(
                grade,
                "visit_interval_days",
                merged["visit_interval_days"],
                MIN_VISIT_INTERVAL,
                MAX_VISIT_INTERVAL,
            )
        ),
        sends_birthday_greeting=_boolean(
            grade, "sends_birthday_greeting", merged["sends_birthday_greeting"]
        ),
        birthday_coupon_template_id=_template_id(
            grade, "birthday_coupon_template_id", merged["birthday_coupon_template_id"]
        ),
        holidays=_holidays(grade, merged["holidays"]),
        holiday_days_ahead=_whole(
            grade, "holiday_days_ahead", merged["holiday_days_ahead"], 0, MAX_DAYS_AHEAD
        ),
        holiday_coupon_template_id=_template_id(
            grade, "holiday_coupon_template_id", merged["holiday_coupon_template_id"]
        ),
    )
    if measures.birthday_coupon_template_id is not None and not measures.sends_birthday_greeting:
        raise MeasuresInvalid(
            grade,
            "birthday_coupon_template_id",
            "a birthday coupon needs the birthday greeting it is sent with "
            "(set sends_birthday_greeting, or clear the coupon)",
        )
    if measures.holiday_coupon_template_id is not None and not measures.holidays:
        raise MeasuresInvalid(
            grade,
            "holiday_coupon_template_id",
            "a holiday coupon needs at least one holiday to greet (list some, or clear it)",
        )
    return measures


def changed_fields(old: Measures, new: Measures) -> list[str]:
    before, after = old.to_dict(), new.to_dict()
    return [name for name in EDITABLE if before[name] != after[name]]


# ---------------------------------------------------------------------- the care calendar

BIRTHDAY = "birthday"
HOLIDAY = "holiday"
VISIT = "visit"
KINDS: tuple[str, ...] = (BIRTHDAY, HOLIDAY, VISIT)


@dataclass(frozen=True)
class CalendarEntry:
    """On ``on``, the automation greets (or visits) ``customers`` customers of ``grade``.
    Holidays: ``on`` is the first day of the greeting window, ``holiday_on`` the festival."""

    on: date
    kind: str
    grade: str
    customers: int
    holiday: str = ""
    holiday_on: date | None = None


@dataclass(frozen=True)
class CalendarInput:
    """What the calendar is computed from: the policy, customers per grade, birthdays per
    (month, day, grade), visits due per (day, grade) (overdue ones on ``start``), and the
    greetings made already: birthdays per (day, grade), holidays per (occasion, grade)."""

    measures: Mapping[str, Measures]
    grade_counts: Mapping[str, int] = field(default_factory=dict)
    birthdays: Mapping[tuple[int, int, str], int] = field(default_factory=dict)
    visits: Mapping[tuple[date, str], int] = field(default_factory=dict)
    birthdays_done: Mapping[tuple[date, str], int] = field(default_factory=dict)
    holidays_done: Mapping[tuple[str, str], int] = field(default_factory=dict)


def care_calendar(facts: CalendarInput, *, start: date, days: int) -> list[CalendarEntry]:
    """What the automations will do on each day of ``[start, start + days)``, by what the
    policy says today (a change to it changes the calendar); greetings made already are left
    out."""
    end = start + timedelta(days=days - 1)
    entries: list[CalendarEntry] = []
    by_day: dict[tuple[date, str], int] = {}
    for (month, day_of_month, grade), count in facts.birthdays.items():
        measures = facts.measures.get(grade)
        if measures is None or not measures.sends_birthday_greeting or count <= 0:
            continue
        if month == 2 and day_of_month == 29:
            sample = date(2000, 2, 29)
        else:
            sample = date(2001, month, day_of_month)
        for year in range(start.year, end.year + 1):
            on = birthday_in(sample, year)
            if start <= on <= end:
                by_day[(on, grade)] = by_day.get((on, grade), 0) + count
    for (on, grade), count in by_day.items():
        left = count - facts.birthdays_done.get((on, grade), 0)
        if left > 0:
            entries.append(CalendarEntry(on, BIRTHDAY, grade, left))
    for grade, measures in facts.measures.items():
        count = facts.grade_counts.get(grade, 0)
        if not measures.holidays or count <= 0:
            continue
        for holiday_on, code in holidays_between(
            measures.holidays, start, end + timedelta(days=measures.holiday_days_ahead)
        ):
            first, _ = greeting_window(holiday_on, measures.holiday_days_ahead)
            done = facts.holidays_done.get((holiday_occasion(code, holiday_on), grade), 0)
            if first > end or count - done <= 0:
                continue
            entries.append(
                CalendarEntry(max(first, start), HOLIDAY, grade, count - done, code, holiday_on)
            )
    for (on, grade), count in facts.visits.items():
        measures = facts.measures.get(grade)
        if measures is None or measures.visit_interval_days is None or count <= 0:
            continue
        when = max(on, start)
        if when <= end:
            entries.append(CalendarEntry(when, VISIT, grade, count))
    merged: dict[tuple[date, str, str, str], CalendarEntry] = {}
    for entry in entries:
        key = (entry.on, entry.kind, entry.grade, entry.holiday)
        if key in merged:
            entry = replace(entry, customers=merged[key].customers + entry.customers)
        merged[key] = entry
    order = {k: i for i, k in enumerate(KINDS)}
    grade_order = {g: i for i, g in enumerate(GRADES)}
    return sorted(
        merged.values(),
        key=lambda e: (e.on, order[e.kind], e.holiday, grade_order.get(e.grade, 9)),
    )
