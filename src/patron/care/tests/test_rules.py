"""The pure rules of care: birthdays (29 February), the real dates of the festivals and their
greeting windows, when a visit is due, the policy's validation and the care calendar."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from patron.care import rules

# ---------------------------------------------------------------------- birthdays


@pytest.mark.parametrize(
    ("birthday", "year", "expected"),
    [
        (date(1990, 3, 7), 2026, date(2026, 3, 7)),
        (date(1996, 2, 29), 2026, date(2026, 2, 28)),  # no 29 February in 2026
        (date(1996, 2, 29), 2028, date(2028, 2, 29)),
        (date(1996, 2, 28), 2028, date(2028, 2, 28)),
        (date(2000, 12, 31), 2027, date(2027, 12, 31)),
    ],
)
def test_birthday_in(birthday: date, year: int, expected: date) -> None:
    assert rules.birthday_in(birthday, year) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 7), ((3, 7),)),
        (date(2026, 2, 28), ((2, 28), (2, 29))),  # the leaplings too, in a common year
        (date(2028, 2, 28), ((2, 28),)),  # not in a leap year: they have their own day
        (date(2028, 2, 29), ((2, 29),)),
        (date(2026, 3, 1), ((3, 1),)),
    ],
)
def test_birthdays_celebrated_on(day: date, expected: tuple[tuple[int, int], ...]) -> None:
    assert rules.birthdays_celebrated_on(day) == expected


def test_next_birthday() -> None:
    assert rules.next_birthday(date(1990, 3, 7), date(2026, 3, 7)) == date(2026, 3, 7)
    assert rules.next_birthday(date(1990, 3, 7), date(2026, 3, 8)) == date(2027, 3, 7)
    assert rules.next_birthday(date(1996, 2, 29), date(2026, 3, 1)) == date(2027, 2, 28)
    assert rules.next_birthday(date(1996, 2, 29), date(2027, 3, 1)) == date(2028, 2, 29)


# ---------------------------------------------------------------------- holidays

#: The festivals' own days, from the State Council's notices and the lunar calendar.
REAL_DATES = {
    2025: {
        "new_year": date(2025, 1, 1),
        "spring_festival": date(2025, 1, 29),
        "lantern": date(2025, 2, 12),
        "labour_day": date(2025, 5, 1),
        "dragon_boat": date(2025, 5, 31),
        "mid_autumn": date(2025, 10, 6),
        "double_ninth": date(2025, 10, 29),
        "national_day": date(2025, 10, 1),
    },
    2026: {
        "new_year": date(2026, 1, 1),
        "spring_festival": date(2026, 2, 17),
        "lantern": date(2026, 3, 3),
        "labour_day": date(2026, 5, 1),
        "dragon_boat": date(2026, 6, 19),
        "mid_autumn": date(2026, 9, 25),
        "double_ninth": date(2026, 10, 18),
        "national_day": date(2026, 10, 1),
    },
    2027: {
        "new_year": date(2027, 1, 1),
        "spring_festival": date(2027, 2, 6),
        "lantern": date(2027, 2, 20),
        "labour_day": date(2027, 5, 1),
        "dragon_boat": date(2027, 6, 9),
        "mid_autumn": date(2027, 9, 15),
        "double_ninth": date(2027, 10, 8),
        "national_day": date(2027, 10, 1),
    },
}


@pytest.mark.parametrize(
    ("year", "code"), [(year, code) for year, days in REAL_DATES.items() for code in days]
)
def test_the_festivals_fall_on_their_real_dates(year: int, code: str) -> None:
    assert rules.holiday_date(code, year) == REAL_DATES[year][code]


def test_every_holiday_is_known_for_the_years_ahead() -> None:
    # the calendar must name every festival once a year for a decade (a renamed holiday in
    # the package would otherwise only show the day it is due)
    for year in range(2025, 2036):
        days = {code: rules.holiday_date(code, year) for code in rules.HOLIDAYS}
        assert all(day.year == year for day in days.values())
    # 2028: Mid-Autumn falls on a day of the National Day holiday (one entry, two names)
    assert rules.holiday_date("mid_autumn", 2028) == date(2028, 10, 3)


def test_an_unknown_holiday_or_year_is_refused() -> None:
    with pytest.raises(rules.UnknownHoliday, match="holiday 'christmas' is unknown; known: "):
        rules.holiday_date("christmas", 2026)
    with pytest.raises(rules.UnknownHoliday, match="known for 1901–2099, not 2100"):
        rules.holiday_date("national_day", 2100)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 2, 13), []),
        (date(2026, 2, 14), [("spring_festival", date(2026, 2, 17))]),  # three days ahead
        (date(2026, 2, 17), [("spring_festival", date(2026, 2, 17))]),  # caught up on the day
        (date(2026, 2, 18), []),  # never after the festival
        (date(2026, 9, 22), [("mid_autumn", date(2026, 9, 25))]),
    ],
)
def test_a_greeting_is_due_from_days_ahead_up_to_the_festival(
    day: date, expected: list[tuple[str, date]]
) -> None:
    assert rules.holidays_due(["spring_festival", "mid_autumn"], 3, day) == expected


def test_new_year_is_greeted_in_december() -> None:
    assert rules.holidays_due(["new_year"], 2, date(2026, 12, 30)) == [
        ("new_year", date(2027, 1, 1))
    ]
    assert rules.holiday_occasion("new_year", date(2027, 1, 1)) == "new_year:2027"


def test_holidays_between() -> None:
    assert rules.holidays_between(
        ["national_day", "mid_autumn", "double_ninth"], date(2026, 9, 1), date(2026, 10, 17)
    ) == [(date(2026, 9, 25), "mid_autumn"), (date(2026, 10, 1), "national_day")]


# ---------------------------------------------------------------------- visits


def _due(customer_id: int = 7, **dates: date | None) -> date:
    values: dict[str, date | None] = {
        "last_visit_on": None,
        "grade_since": None,
        "visits_from": None,
        "today": date(2026, 3, 1),
    }
    values.update(dates)
    return rules.visit_due_on(interval_days=90, customer_id=customer_id, **values)  # type: ignore[arg-type]


def test_a_visit_is_due_an_interval_after_the_last_one() -> None:
    assert _due(
        last_visit_on=date(2026, 1, 10), grade_since=date(2025, 1, 1), visits_from=date(2025, 1, 1)
    ) == date(2026, 4, 10)


def test_first_visits_are_spread_over_the_first_interval() -> None:
    # given: 900 customers who became core on one day (a quarterly regrade)
    joined = date(2026, 1, 1)
    # when
    due = [_due(n, grade_since=joined, visits_from=date(2025, 1, 1)) for n in range(900)]
    # then: ten a day over the 90 days from that day, none later
    per_day = {day: due.count(day) for day in set(due)}
    assert min(per_day) == joined and max(per_day) == joined + timedelta(days=89)
    assert set(per_day.values()) == {10}
    assert _due(95, grade_since=joined) == date(2026, 1, 6)


def test_the_first_visit_counts_from_when_the_grade_s_visits_began_if_later() -> None:
    # given: a core customer since 2025; visits switched on on 1 January 2026
    assert _due(5, grade_since=date(2025, 6, 1), visits_from=date(2026, 1, 1)) == date(2026, 1, 6)


def test_without_any_date_the_first_visit_counts_from_today() -> None:
    assert _due(3) == date(2026, 3, 4)


@pytest.mark.parametrize(
    ("due_on", "has_open_visit", "expected"),
    [
        (date(2026, 3, 1), False, True),
        (date(2026, 2, 1), False, True),  # overdue
        (date(2026, 3, 2), False, False),
        (date(2026, 2, 1), True, False),  # the last visit is still being worked on
    ],
)
def test_visit_is_due(due_on: date, has_open_visit: bool, expected: bool) -> None:
    assert (
        rules.visit_is_due(due_on=due_on, day=date(2026, 3, 1), has_open_visit=has_open_visit)
        is expected
    )


def test_a_visit_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_days must be 1 or more, got 0"):
        rules.visit_due_on(
            interval_days=0,
            customer_id=1,
            last_visit_on=None,
            grade_since=None,
            visits_from=None,
            today=date(2026, 3, 1),
        )


# ---------------------------------------------------------------------- offers


@pytest.mark.parametrize(
    ("budget", "committed", "unit", "expected"),
    [
        (None, Decimal("1000000"), Decimal("20"), True),
        (Decimal("100"), Decimal("80"), Decimal("20"), True),  # exactly the budget
        (Decimal("100"), Decimal("81"), Decimal("20"), False),
        (Decimal("100"), Decimal("99.99"), Decimal("0"), True),  # percent off: while not used up
        (Decimal("100"), Decimal("100"), Decimal("0"), False),
    ],
)
def test_offer_within_budget(
    budget: Decimal | None, committed: Decimal, unit: Decimal, expected: bool
) -> None:
    assert rules.offer_within_budget(budget=budget, committed=committed, unit=unit) is expected


# ---------------------------------------------------------------------- the policy


def test_the_default_policy_follows_r_g2() -> None:
    core, potential, ordinary = (rules.DEFAULT_MEASURES[g] for g in rules.GRADES)
    assert (core.has_priority_handling, core.has_dedicated_line, core.visit_interval_days) == (
        True,
        True,
        90,
    )
    assert core.exclusive_discount_percent == Decimal("5.00")
    assert potential.visit_interval_days is None and not potential.has_dedicated_line
    assert "mid_autumn" in potential.holidays
    assert ordinary.holidays == ("spring_festival",)
    for measures in (core, potential, ordinary):  # the defaults pass their own validation
        assert rules.measures_from(measures.grade, {}) == measures


def test_a_row_changed_by_some_fields() -> None:
    # when
    measures = rules.measures_from(
        "potential",
        {"holidays": ["national_day", "spring_festival"], "exclusive_discount_percent": "2.5"},
    )
    # then: the holidays in the calendar's order, the percent to the cent
    assert measures.holidays == ("spring_festival", "national_day")
    assert measures.exclusive_discount_percent == Decimal("2.50")
    assert measures.holiday_days_ahead == 2  # unchanged


@pytest.mark.parametrize(
    ("grade", "data", "message"),
    [
        ("core", {"holidays": ["christmas"]}, "core.holidays: 'christmas' is unknown; known: "),
        (
            "core",
            {"holidays": ["lantern", "lantern"]},
            "core.holidays: 'lantern' is listed twice",
        ),
        ("potential", {"holidays": "lantern"}, "potential.holidays: expected a list"),
        (
            "core",
            {"exclusive_discount_percent": 95},
            "core.exclusive_discount_percent: expected 0 to 90 (percent off)",
        ),
        (
            "core",
            {"exclusive_discount_percent": "a lot"},
            "core.exclusive_discount_percent: expected a number, got 'a lot'",
        ),
        (
            "ordinary",
            {"visit_interval_days": 3},
            "ordinary.visit_interval_days: expected a whole number 7–3650, got 3",
        ),
        (
            "core",
            {"holiday_days_ahead": 31},
            "core.holiday_days_ahead: expected a whole number 0–30, got 31",
        ),
        (
            "core",
            {"has_dedicated_line": 1},
            "core.has_dedicated_line: expected true or false, got 1",
        ),
        (
            "ordinary",
            {"sends_birthday_greeting": False, "birthday_coupon_template_id": 4},
            "ordinary.birthday_coupon_template_id: a birthday coupon needs the birthday greeting",
        ),
        (
            "potential",
            {"holidays": [], "holiday_coupon_template_id": 4},
            "potential.holiday_coupon_template_id: a holiday coupon needs at least one holiday",
        ),
        ("core", {"colour": "gold"}, "core.colour: unknown field; editable: "),
        ("vip", {}, "vip.grade: expected one of core, potential, ordinary"),
    ],
)
def test_a_refusal_names_the_grade_and_the_field(
    grade: str, data: dict[str, object], message: str
) -> None:
    with pytest.raises(rules.MeasuresInvalid) as refused:
        rules.measures_from(grade, data)
    assert str(refused.value).startswith(message)


def test_changed_fields() -> None:
    old = rules.DEFAULT_MEASURES["core"]
    new = rules.measures_from("core", {"visit_interval_days": 60, "holiday_days_ahead": 3})
    assert rules.changed_fields(old, new) == ["visit_interval_days"]


# ---------------------------------------------------------------------- the calendar


def test_the_calendar_puts_each_automation_on_its_day() -> None:
    # given: core greets birthdays and the Spring Festival 3 days ahead, visits every 90 days;
    # ordinary greets no birthdays
    measures = {
        "core": rules.measures_from("core", {"holidays": ["spring_festival"]}),
        "ordinary": rules.measures_from("ordinary", {"sends_birthday_greeting": False}),
    }
    facts = rules.CalendarInput(
        measures=measures,
        grade_counts={"core": 40, "ordinary": 900},
        birthdays={(2, 29, "core"): 2, (2, 28, "core"): 1, (2, 16, "ordinary"): 30},
        visits={(date(2026, 2, 1), "core"): 5, (date(2026, 2, 20), "core"): 1},
    )

    # when
    entries = rules.care_calendar(facts, start=date(2026, 2, 10), days=20)

    # then
    assert entries == [
        rules.CalendarEntry(date(2026, 2, 10), "visit", "core", 5),  # overdue: today
        rules.CalendarEntry(
            date(2026, 2, 14), "holiday", "core", 40, "spring_festival", date(2026, 2, 17)
        ),
        rules.CalendarEntry(  # ordinary: one day ahead
            date(2026, 2, 16), "holiday", "ordinary", 900, "spring_festival", date(2026, 2, 17)
        ),
        rules.CalendarEntry(date(2026, 2, 20), "visit", "core", 1),
        rules.CalendarEntry(date(2026, 2, 28), "birthday", "core", 3),  # 29 Feb on 28 Feb
    ]


def test_greetings_made_already_are_left_out() -> None:
    facts = rules.CalendarInput(
        measures={"core": rules.measures_from("core", {"holidays": ["mid_autumn"]})},
        grade_counts={"core": 7},
        birthdays={(9, 24, "core"): 2},
        birthdays_done={(date(2026, 9, 24), "core"): 2},
        holidays_done={("mid_autumn:2026", "core"): 5},
    )
    assert rules.care_calendar(facts, start=date(2026, 9, 24), days=3) == [
        rules.CalendarEntry(
            date(2026, 9, 24), "holiday", "core", 2, "mid_autumn", date(2026, 9, 25)
        )
    ]


def test_a_greeting_window_already_open_starts_the_calendar() -> None:
    facts = rules.CalendarInput(
        measures={"core": rules.DEFAULT_MEASURES["core"]}, grade_counts={"core": 7}
    )
    entries = rules.care_calendar(facts, start=date(2026, 9, 24), days=3)
    assert entries == [
        rules.CalendarEntry(
            date(2026, 9, 24), "holiday", "core", 7, "mid_autumn", date(2026, 9, 25)
        )
    ]
