"""The pure rules of the service desk: every (state, action) pair of the ticket machine and the
reopen window's edges; business time across nights, weekends, Spring Festival 2026 (with its
make-up Saturdays) and both DST changes in Berlin; the SLA clocks against a minute-by-minute
reference; targets, priority, escalation and the holiday sources. No database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise, product
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.intelligence.explain import render
from patron.service import rules
from patron.service.rules import (
    BusinessCalendar,
    Clock,
    ClockStatus,
    add_business_minutes,
    business_minutes,
    business_time,
    clock_status,
)
from patron.statemachine import TransitionRefused

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)
TICK = timedelta(microseconds=1)
LUNCH_BREAK = ((time(9), time(12)), (time(13), time(18)))


def at(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


OFFICE_SHANGHAI = BusinessCalendar.office_hours(SHANGHAI, LUNCH_BREAK)
OFFICE_SHANGHAI_2026 = OFFICE_SHANGHAI.with_days(rules.china_holidays([2026]))
OFFICE_BERLIN = BusinessCalendar.office_hours(BERLIN)
ALWAYS_BERLIN = BusinessCalendar.always_open(BERLIN)
#: Edges inside the DST gap and the repeated hour, and a day running to midnight.
NIGHTS_BERLIN = BusinessCalendar(
    zone=BERLIN,
    hours={
        **{day: ((time(8), time(20)),) for day in range(5)},
        5: ((time(22), time(0)),),
        6: ((time(0), time(2, 30)), (time(2, 30), time(5)), (time(20), time(23))),
    },
)

# ---------------------------------------------------------------------- ticket states

TICKET_EXPECTED = {
    ("new", "open"): "open",
    ("new", "reply_wait"): "pending",
    ("new", "solve"): "solved",
    ("open", "reply_wait"): "pending",
    ("open", "hold"): "on_hold",
    ("open", "solve"): "solved",
    ("pending", "customer_reply"): "open",
    ("pending", "solve"): "solved",
    ("on_hold", "resume"): "open",
    ("on_hold", "reply_wait"): "pending",
    ("on_hold", "customer_reply"): "open",
    ("on_hold", "solve"): "solved",
    ("solved", "customer_reply"): "open",
    ("solved", "reopen"): "open",
    ("solved", "close"): "closed",
}
SOLVED_AT = at(SHANGHAI, 2026, 3, 2, 15, 0)


def test_the_table_has_exactly_the_expected_states_and_transitions() -> None:
    # given / when
    table = {
        (state, action): target
        for state, actions in rules.TICKET_TRANSITIONS.items()
        for action, target in actions.items()
    }
    # then
    assert table == TICKET_EXPECTED
    assert set(rules.TICKET_TRANSITIONS) == set(rules.TICKET_STATES)
    assert {action for _, action in TICKET_EXPECTED} == set(rules.TICKET_ACTIONS)


@pytest.mark.parametrize(
    ("state", "action"), list(product(rules.TICKET_STATES, rules.TICKET_ACTIONS))
)
def test_every_ticket_transition_is_allowed_or_refused_as_the_table_says(
    state: str, action: str
) -> None:
    # given
    expected = TICKET_EXPECTED.get((state, action))
    now = SOLVED_AT + timedelta(days=1)
    # when / then
    if expected is None:
        with pytest.raises(TransitionRefused, match=f"cannot {action.replace('_', ' ')}"):
            rules.ticket_next(state, action, solved_at=SOLVED_AT, now=now)
    else:
        assert rules.ticket_next(state, action, solved_at=SOLVED_AT, now=now) == expected


def test_closed_is_final() -> None:
    for action in rules.TICKET_ACTIONS:
        with pytest.raises(TransitionRefused, match=r"none \(final\)"):
            rules.ticket_next("closed", action)


@pytest.mark.parametrize("action", ["customer_reply", "reopen"])
@pytest.mark.parametrize(
    ("after", "allowed"),
    [
        (timedelta(0), True),
        (-timedelta(minutes=5), True),  # a clock a little behind
        (timedelta(days=3), True),
        (timedelta(days=7) - TICK, True),
        (timedelta(days=7), False),
        (timedelta(days=7, minutes=1), False),
        (timedelta(days=400), False),
    ],
)
def test_the_reopen_window_is_seven_days_half_open(
    action: str, after: timedelta, allowed: bool
) -> None:
    # given
    now = SOLVED_AT + after
    # when / then
    if allowed:
        assert rules.ticket_next("solved", action, solved_at=SOLVED_AT, now=now) == "open"
    else:
        with pytest.raises(TransitionRefused, match="can no longer be reopened"):
            rules.ticket_next("solved", action, solved_at=SOLVED_AT, now=now)
    # closing is due exactly when reopening is refused
    assert rules.ticket_close_due(solved_at=SOLVED_AT, now=now) is not allowed


def test_the_reopen_window_length_is_a_parameter() -> None:
    # given
    now = SOLVED_AT + timedelta(days=10)
    # when / then
    assert rules.ticket_next("solved", "reopen", solved_at=SOLVED_AT, now=now, reopen_days=14)
    with pytest.raises(TransitionRefused):
        rules.ticket_next("solved", "reopen", solved_at=SOLVED_AT, now=now, reopen_days=10)
    assert rules.reopen_deadline(SOLVED_AT, reopen_days=14) == datetime(
        2026, 3, 16, 7, 0, tzinfo=UTC
    )


def test_the_refusal_names_the_dates() -> None:
    with pytest.raises(TransitionRefused) as refused:
        rules.ticket_next(
            "solved", "customer_reply", solved_at=SOLVED_AT, now=SOLVED_AT + timedelta(days=8)
        )
    assert str(refused.value) == (
        "the ticket was solved on 2026-03-02 07:00 UTC, 7 or more days ago: it can no longer "
        "be reopened (the window closed at 2026-03-09 07:00 UTC); open a new ticket"
    )


def test_reopening_needs_the_solved_time_and_now() -> None:
    with pytest.raises(ValueError, match="solved_at and now are required"):
        rules.ticket_next("solved", "reopen")
    with pytest.raises(ValueError, match="timezone-aware"):
        rules.ticket_next("solved", "reopen", solved_at=datetime(2026, 3, 2), now=SOLVED_AT)
    # closing a solved ticket needs neither
    assert rules.ticket_next("solved", "close") == "closed"


def test_the_clocks_pause_while_waiting_on_the_customer_or_on_hold() -> None:
    assert {"pending", "on_hold", "solved", "closed"} == rules.SLA_PAUSED_STATES
    assert {"new", "open"} == rules.SLA_RUNNING_STATES
    assert rules.clock_change("open", "pending") == "pause"
    assert rules.clock_change("open", "on_hold") == "pause"
    assert rules.clock_change("new", "solved") == "pause"
    assert rules.clock_change("pending", "open") == "resume"
    assert rules.clock_change("solved", "open") == "resume"
    assert rules.clock_change("new", "open") is None
    assert rules.clock_change("on_hold", "pending") is None
    assert rules.clock_change("solved", "closed") is None


# ---------------------------------------------------------------------- the calendar


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hours": {}}, "no opening hours on any day"),
        ({"hours": {0: ()}}, "no opening hours on any day"),
        ({"hours": {7: ((time(9), time(18)),)}}, "weekday 7"),
        ({"hours": {0: ((time(18), time(9)),)}}, "Monday: 18:00–09:00 closes before it opens"),
        ({"hours": {2: ((time(9), time(9)),)}}, "Wednesday"),
        ({"hours": {0: ((time(9), time(13)), (time(12), time(18)))}}, "must not overlap"),
        ({"hours": {0: ((time(13), time(18)), (time(9), time(12)))}}, "in order"),
        ({"hours": {0: ((time(9), time(0)), (time(1), time(2)))}}, "must not overlap"),
        (
            {"hours": {0: ((time(9), time(18)),)}, "workday_hours": ((time(9), time(8)),)},
            "make-up working days",
        ),
        (
            {
                "hours": {0: ((time(9), time(18)),)},
                "holidays": frozenset({date(2026, 2, 14)}),
                "workdays": frozenset({date(2026, 2, 14)}),
            },
            "both as holidays and as working days: 2026-02-14",
        ),
    ],
)
def test_a_malformed_calendar_is_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(zone=SHANGHAI, **kwargs)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        business_minutes(datetime(2026, 3, 2, 9), at(SHANGHAI, 2026, 3, 2, 10), OFFICE_SHANGHAI)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(datetime(2026, 3, 2, 9), 5, OFFICE_SHANGHAI)
    with pytest.raises(ValueError, match="started_at must be timezone-aware"):
        Clock(30, datetime(2026, 3, 2, 9))


def test_hours_may_be_given_as_lists_and_are_kept_as_tuples() -> None:
    cal = BusinessCalendar(zone=SHANGHAI, hours={0: [[time(9), time(12)]]})  # type: ignore[dict-item]
    assert cal.hours == {0: ((time(9), time(12)),)}
    assert cal.hours_on(date(2026, 3, 2)) == ((time(9), time(12)),)
    assert cal.hours_on(date(2026, 3, 3)) == ()


def test_make_up_days_use_workday_hours_or_mondays() -> None:
    # given
    saturday = date(2026, 2, 14)
    plain = BusinessCalendar.office_hours(SHANGHAI).with_days([(saturday, "Spring Festival", True)])
    own = BusinessCalendar(
        zone=SHANGHAI,
        hours={0: ((time(9), time(18)),)},
        workdays=frozenset({saturday}),
        workday_hours=((time(10), time(16)),),
    )
    # then
    assert plain.hours_on(saturday) == ((time(9), time(18)),)
    assert own.hours_on(saturday) == ((time(10), time(16)),)
    assert own.hours_on(date(2026, 2, 21)) == ()


# A week without holidays: Monday 2 March 2026 to Sunday 8 March.
@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        # over a night: Tue 17:00–18:00 and Wed 09:00–10:00
        ((2026, 3, 3, 17, 0), (2026, 3, 4, 10, 0), 120),
        # the lunch break is closed
        ((2026, 3, 3, 11, 0), (2026, 3, 3, 14, 0), 120),
        # over a weekend: Fri 17:30–18:00 and Mon 09:00–09:30
        ((2026, 3, 6, 17, 30), (2026, 3, 9, 9, 30), 60),
        # all closed
        ((2026, 3, 7, 0, 0), (2026, 3, 9, 9, 0), 0),
        ((2026, 3, 3, 18, 0), (2026, 3, 4, 9, 0), 0),
        # a whole week
        ((2026, 3, 2, 0, 0), (2026, 3, 9, 0, 0), 5 * 8 * 60),
        # backwards or empty
        ((2026, 3, 3, 12, 0), (2026, 3, 3, 10, 0), 0),
        ((2026, 3, 3, 10, 0), (2026, 3, 3, 10, 0), 0),
        # seconds are rounded down
        ((2026, 3, 3, 10, 0, 30), (2026, 3, 3, 10, 2, 0), 1),
    ],
)
def test_business_minutes_in_shanghai(
    start: tuple[int, ...], end: tuple[int, ...], minutes: int
) -> None:
    assert business_minutes(at(SHANGHAI, *start), at(SHANGHAI, *end), OFFICE_SHANGHAI) == minutes


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        ((2026, 3, 6, 17, 0), 120, (2026, 3, 9, 10, 0)),  # Friday to Monday
        ((2026, 3, 3, 17, 0), 120, (2026, 3, 4, 10, 0)),  # over a night
        ((2026, 3, 3, 9, 0), 480, (2026, 3, 3, 18, 0)),  # ends at the closing, not next morning
        ((2026, 3, 3, 9, 0), 481, (2026, 3, 4, 9, 1)),
        ((2026, 3, 3, 7, 0), 30, (2026, 3, 3, 9, 30)),  # before opening: counts from 09:00
        ((2026, 3, 3, 11, 50), 20, (2026, 3, 3, 13, 10)),  # over lunch
        ((2026, 3, 3, 12, 15), 1, (2026, 3, 3, 13, 1)),  # during lunch
        ((2026, 3, 7, 10, 0), 1, (2026, 3, 9, 9, 1)),  # on Saturday
        ((2026, 3, 3, 9, 0, 30), 1, (2026, 3, 3, 9, 1, 30)),  # seconds are kept
        ((2026, 3, 7, 10, 0), 0, (2026, 3, 7, 10, 0)),  # nothing to add: start itself
        ((2026, 3, 2, 9, 0), 5 * 8 * 60, (2026, 3, 6, 18, 0)),
    ],
)
def test_add_business_minutes_in_shanghai(
    start: tuple[int, ...], minutes: int, expected: tuple[int, ...]
) -> None:
    # when
    due = add_business_minutes(at(SHANGHAI, *start), minutes, OFFICE_SHANGHAI)
    # then
    assert due == at(SHANGHAI, *expected)
    assert due.tzinfo is UTC


def test_spring_festival_2026_follows_the_official_arrangement() -> None:
    # given: off from Sunday 15 to Monday 23 February; Saturdays 14 and 28 February are worked
    cal = OFFICE_SHANGHAI_2026
    # then
    assert date(2026, 2, 17) in cal.holidays
    assert {date(2026, 2, 14), date(2026, 2, 28)} <= cal.workdays
    assert business_minutes(at(SHANGHAI, 2026, 2, 14), at(SHANGHAI, 2026, 2, 15), cal) == 480
    assert business_minutes(at(SHANGHAI, 2026, 2, 16), at(SHANGHAI, 2026, 2, 24), cal) == 0
    assert business_minutes(at(SHANGHAI, 2026, 2, 28), at(SHANGHAI, 2026, 3, 1), cal) == 480
    assert business_minutes(at(SHANGHAI, 2026, 3, 1), at(SHANGHAI, 2026, 3, 2), cal) == 0
    # Fri 13, Sat 14, Tue 24 … Fri 27 and Sat 28: seven working days of eight hours
    assert (
        business_minutes(at(SHANGHAI, 2026, 2, 13, 9), at(SHANGHAI, 2026, 2, 28, 18), cal)
        == 7 * 8 * 60
    )
    # Friday evening runs on into the make-up Saturday
    assert add_business_minutes(at(SHANGHAI, 2026, 2, 13, 17), 120, cal) == at(
        SHANGHAI, 2026, 2, 14, 10
    )
    # Saturday 14 is the last working day before the holiday
    assert add_business_minutes(at(SHANGHAI, 2026, 2, 14, 17, 30), 60, cal) == at(
        SHANGHAI, 2026, 2, 24, 9, 30
    )
    assert add_business_minutes(at(SHANGHAI, 2026, 2, 17, 10), 1, cal) == at(
        SHANGHAI, 2026, 2, 24, 9, 1
    )
    # without the arrangement, the same ticket would be due on Monday 16
    assert add_business_minutes(at(SHANGHAI, 2026, 2, 14, 17, 30), 60, OFFICE_SHANGHAI) == at(
        SHANGHAI, 2026, 2, 16, 10, 0
    )


def test_an_office_day_keeps_nine_hours_over_both_dst_changes_in_berlin() -> None:
    # Sunday 29 March 2026 02:00 CET -> 03:00 CEST; Sunday 25 October 03:00 CEST -> 02:00 CET
    friday_march = at(BERLIN, 2026, 3, 27, 17, 0)  # 16:00 UTC
    due = add_business_minutes(friday_march, 120, OFFICE_BERLIN)
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # Monday 10:00 CEST
    assert local(due, BERLIN).hour == 10
    assert business_minutes(friday_march, due, OFFICE_BERLIN) == 120
    friday_october = at(BERLIN, 2026, 10, 23, 17, 0)  # 15:00 UTC
    due = add_business_minutes(friday_october, 120, OFFICE_BERLIN)
    assert due == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # Monday 10:00 CET
    assert business_minutes(at(BERLIN, 2026, 3, 30), at(BERLIN, 2026, 3, 31), OFFICE_BERLIN) == 540


def test_a_24_7_desk_in_berlin_counts_real_time() -> None:
    # the spring day has 23 hours, the autumn day 25
    assert (
        business_minutes(at(BERLIN, 2026, 3, 28, 12), at(BERLIN, 2026, 3, 29, 12), ALWAYS_BERLIN)
        == 23 * 60
    )
    assert (
        business_minutes(at(BERLIN, 2026, 10, 24, 12), at(BERLIN, 2026, 10, 25, 12), ALWAYS_BERLIN)
        == 25 * 60
    )
    due = add_business_minutes(at(BERLIN, 2026, 3, 28, 12), 24 * 60, ALWAYS_BERLIN)
    assert local(due, BERLIN) == at(BERLIN, 2026, 3, 29, 13)
    due = add_business_minutes(at(BERLIN, 2026, 10, 24, 12), 24 * 60, ALWAYS_BERLIN)
    assert local(due, BERLIN) == at(BERLIN, 2026, 10, 25, 11)


def test_edges_in_the_dst_gap_and_the_repeated_hour() -> None:
    # given: Sunday 00:00–02:30 and 02:30–05:00
    sunday = NIGHTS_BERLIN.spans_on
    # spring: 02:30 does not exist, so the second interval opens at the jump (03:00 CEST)
    assert sunday(date(2026, 3, 29))[:2] == (
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 3, 29, 3, 0, tzinfo=UTC)),
    )
    # autumn: 02:30 happens twice; the edge is its first occurrence (02:30 CEST)
    assert sunday(date(2026, 10, 25))[:2] == (
        (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 4, 0, tzinfo=UTC)),
    )

    def night(day: int, month: int) -> int:
        return business_minutes(
            at(BERLIN, 2026, month, day), at(BERLIN, 2026, month, day, 6), NIGHTS_BERLIN
        )

    assert night(22, 3) == 300  # an ordinary Sunday
    assert night(29, 3) == 240
    assert night(25, 10) == 360


def test_an_interval_wholly_inside_the_gap_has_no_business_time() -> None:
    cal = BusinessCalendar(zone=BERLIN, hours={6: ((time(2, 10), time(2, 50)),)})
    assert cal.spans_on(date(2026, 3, 29)) == ()
    assert business_minutes(at(BERLIN, 2026, 3, 29), at(BERLIN, 2026, 3, 30), cal) == 0
    assert business_minutes(at(BERLIN, 2026, 3, 22), at(BERLIN, 2026, 3, 23), cal) == 40
    # and the deadline skips that Sunday
    due = add_business_minutes(at(BERLIN, 2026, 3, 28), 10, cal)
    assert local(due, BERLIN) == at(BERLIN, 2026, 4, 5, 2, 20)


def test_adjacent_intervals_tile_the_day_exactly_on_dst_days() -> None:
    cal = BusinessCalendar(
        zone=BERLIN,
        hours={day: ((time(0), time(2, 30)), (time(2, 30), time(0))) for day in range(7)},
    )
    for day in (date(2026, 3, 29), date(2026, 10, 25), date(2026, 6, 7)):
        start, end = (
            at(BERLIN, day.year, day.month, day.day),
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=BERLIN),
        )
        assert business_time(start, end, cal) == business_time(start, end, ALWAYS_BERLIN)


def test_a_calendar_that_never_opens_within_three_years_is_reported() -> None:
    # given: open on Sundays only, and every Sunday for four years is a holiday
    sundays = frozenset(date(2026, 1, 4) + timedelta(weeks=n) for n in range(4 * 53))
    cal = BusinessCalendar(zone=SHANGHAI, hours={6: ((time(9), time(18)),)}, holidays=sundays)
    # when / then
    with pytest.raises(ValueError, match="within three years"):
        add_business_minutes(at(SHANGHAI, 2026, 1, 1), 1, cal)
    assert business_minutes(at(SHANGHAI, 2026, 1, 1), at(SHANGHAI, 2027, 1, 1), cal) == 0
    with pytest.raises(ValueError, match="must not be negative"):
        add_business_minutes(at(SHANGHAI, 2026, 1, 1), -1, OFFICE_SHANGHAI)


def test_a_long_span_is_counted_by_day_not_by_minute() -> None:
    # a year of 24/7 minutes: fine by day intervals, half a million steps by minute
    start = at(BERLIN, 2026, 1, 1)
    due = add_business_minutes(start, 365 * 24 * 60, ALWAYS_BERLIN)
    assert due == start + timedelta(days=365)
    assert business_minutes(start, due, ALWAYS_BERLIN) == 365 * 24 * 60


# ---------------------------------------------------------------------- holidays


def test_china_holidays_2026_come_from_the_official_arrangement() -> None:
    rows = rules.china_holidays([2026])
    assert rows == sorted(rows)
    assert (date(2026, 2, 17), "Spring Festival", False) in rows
    assert (date(2026, 2, 14), "Spring Festival", True) in rows
    assert (date(2026, 2, 28), "Spring Festival", True) in rows
    assert (date(2026, 10, 1), "National Day", False) in rows
    assert {day for day, _, _ in rows} >= {date(2026, 2, 15) + timedelta(n) for n in range(9)}
    assert all(day.year == 2026 for day, _, _ in rows)


def test_china_holidays_fall_back_to_the_holidays_package() -> None:
    # 2035 is beyond chinese_calendar; 2001 before it (and has make-up working days)
    rows = rules.china_holidays([2035, 2001, 2035])
    assert rows == sorted(set(rows))
    assert (date(2035, 10, 1), "National Day", False) in rows
    assert (date(2035, 1, 1), "New Year's Day", False) in rows
    assert (date(2001, 12, 29), "Make-up working day", True) in rows
    assert {day.year for day, _, _ in rows} == {2001, 2035}


# ---------------------------------------------------------------------- properties of time

CALENDARS = st.sampled_from(
    [OFFICE_SHANGHAI_2026, OFFICE_BERLIN, ALWAYS_BERLIN, NIGHTS_BERLIN, OFFICE_SHANGHAI]
)
#: Calendars whose edges are never in a repeated hour, where "the wall clock shows an opening
#: hour" is an exact minute-by-minute reference.
PLAIN_CALENDARS = st.sampled_from([OFFICE_SHANGHAI_2026, OFFICE_BERLIN, ALWAYS_BERLIN])
BASE = datetime(2026, 1, 1, tzinfo=UTC)
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20), timezones=st.just(UTC)
)
WHOLE_MINUTES = st.integers(min_value=0, max_value=350 * 24 * 60).map(lambda m: BASE + m * MINUTE)
AMOUNTS = st.integers(min_value=0, max_value=6000)
PROPERTIES = settings(max_examples=60, deadline=None)


def _open_by_wall_clock(moment: datetime, cal: BusinessCalendar) -> bool:
    wall = moment.astimezone(cal.zone)
    return any(
        opens <= wall.time() and (closes == time(0) or wall.time() < closes)
        for opens, closes in cal.hours_on(wall.date())
    )


def _reference_minutes(
    start: datetime, end: datetime, cal: BusinessCalendar, counted: Callable[[datetime], bool]
) -> int:
    minutes, moment = 0, start
    while moment < end:
        if counted(moment) and _open_by_wall_clock(moment, cal):
            minutes += 1
        moment += MINUTE
    return minutes


@PROPERTIES
@given(cal=CALENDARS, start=INSTANTS, minutes=AMOUNTS)
def test_adding_then_counting_gives_the_amount_back_and_the_earliest_instant(
    cal: BusinessCalendar, start: datetime, minutes: int
) -> None:
    due = add_business_minutes(start, minutes, cal)
    assert due >= start
    assert business_time(start, due, cal) == minutes * MINUTE
    assert business_minutes(start, due, cal) == minutes
    if minutes:
        assert business_time(start, due - TICK, cal) < minutes * MINUTE


@PROPERTIES
@given(cal=CALENDARS, start=INSTANTS, a=AMOUNTS, b=AMOUNTS)
def test_adding_more_never_ends_earlier(
    cal: BusinessCalendar, start: datetime, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    assert add_business_minutes(start, low, cal) <= add_business_minutes(start, high, cal)


@PROPERTIES
@given(cal=CALENDARS, points=st.lists(INSTANTS, min_size=3, max_size=3))
def test_business_time_adds_up_over_split_points(
    cal: BusinessCalendar, points: list[datetime]
) -> None:
    a, b, c = sorted(points)
    assert business_time(a, c, cal) == business_time(a, b, cal) + business_time(b, c, cal)
    assert business_time(a, c, cal) <= c - a
    if cal is ALWAYS_BERLIN:
        assert business_time(a, c, cal) == c - a


@PROPERTIES
@given(cal=CALENDARS, points=st.lists(WHOLE_MINUTES, min_size=3, max_size=3))
def test_whole_minutes_add_up_when_everything_is_on_the_minute(
    cal: BusinessCalendar, points: list[datetime]
) -> None:
    a, b, c = sorted(points)
    assert business_minutes(a, c, cal) == business_minutes(a, b, cal) + business_minutes(b, c, cal)


@settings(max_examples=25, deadline=None)
@given(
    cal=PLAIN_CALENDARS,
    start=WHOLE_MINUTES,
    length=st.integers(min_value=0, max_value=3 * 24 * 60),
)
def test_business_minutes_match_a_minute_by_minute_count(
    cal: BusinessCalendar, start: datetime, length: int
) -> None:
    end = start + length * MINUTE
    expected = _reference_minutes(start, end, cal, lambda _: True)
    assert business_minutes(start, end, cal) == expected


# ---------------------------------------------------------------------- SLA clocks


def _clock(target: int, start: datetime, *pauses: tuple[datetime, datetime | None]) -> Clock:
    return Clock(target_minutes=target, started_at=start, pauses=tuple(pauses))


MONDAY = at(SHANGHAI, 2026, 3, 2, 9, 0)  # an ordinary week


def test_a_running_clock() -> None:
    # given: 30 minutes to first reply, opened Monday 17:50
    clock = _clock(30, at(SHANGHAI, 2026, 3, 2, 17, 50))
    # when
    status = clock_status(clock, at(SHANGHAI, 2026, 3, 3, 9, 5), OFFICE_SHANGHAI)
    # then
    assert status == ClockStatus(
        target_minutes=30,
        elapsed_minutes=15,
        remaining_minutes=15,
        due_at=at(SHANGHAI, 2026, 3, 3, 9, 20),
        breached=False,
        breached_at=None,
        paused=False,
        stopped=False,
        met=False,
        warning=False,
        warning_at=at(SHANGHAI, 2026, 3, 3, 9, 14),
    )


def test_the_warning_zone_is_the_last_fifth_or_a_number_of_minutes() -> None:
    clock = _clock(30, MONDAY)
    assert not clock_status(clock, MONDAY + 23 * MINUTE, OFFICE_SHANGHAI).warning
    assert clock_status(clock, MONDAY + 24 * MINUTE, OFFICE_SHANGHAI).warning
    assert not clock_status(
        clock, MONDAY + 19 * MINUTE, OFFICE_SHANGHAI, warning_minutes=10
    ).warning
    status = clock_status(clock, MONDAY + 20 * MINUTE, OFFICE_SHANGHAI, warning_minutes=10)
    assert status.warning
    assert status.warning_at == MONDAY + 20 * MINUTE
    assert rules.warning_threshold(100, warning_fraction=0.29) == 29
    assert rules.warning_threshold(1440) == 288
    assert rules.warning_threshold(30, warning_minutes=45) == 30


def test_a_breach_is_exact_to_the_minute() -> None:
    clock = _clock(30, MONDAY)
    before = clock_status(clock, MONDAY + 30 * MINUTE - TICK, OFFICE_SHANGHAI)
    breach = clock_status(clock, MONDAY + 30 * MINUTE, OFFICE_SHANGHAI)
    later = clock_status(clock, MONDAY + timedelta(days=1), OFFICE_SHANGHAI)
    assert (before.breached, before.elapsed_minutes, before.remaining_minutes) == (False, 29, 1)
    assert before.warning
    assert (breach.breached, breach.elapsed_minutes, breach.remaining_minutes) == (True, 30, 0)
    assert breach.breached_at == breach.due_at == MONDAY + 30 * MINUTE
    assert not breach.warning
    assert later.breached_at == MONDAY + 30 * MINUTE
    assert later.elapsed_minutes == 8 * 60  # all of Monday


def test_a_paused_clock_has_no_deadline_and_resumes_where_it_stood() -> None:
    # given: 60 minutes; paused at 09:40 (waiting on the customer) until Tuesday 10:00
    pause = (MONDAY + 40 * MINUTE, at(SHANGHAI, 2026, 3, 3, 10, 0))
    waiting = _clock(60, MONDAY, (pause[0], None))
    resumed = _clock(60, MONDAY, pause)
    # when
    during = clock_status(waiting, at(SHANGHAI, 2026, 3, 2, 16, 0), OFFICE_SHANGHAI)
    after = clock_status(resumed, at(SHANGHAI, 2026, 3, 3, 10, 5), OFFICE_SHANGHAI)
    # then
    assert (during.paused, during.elapsed_minutes, during.due_at, during.warning) == (
        True,
        40,
        None,
        False,
    )
    assert during.warning_at is None
    assert (after.paused, after.elapsed_minutes, after.due_at) == (
        False,
        45,
        at(SHANGHAI, 2026, 3, 3, 10, 20),
    )
    # an open pause closed by a resume gives the same answer as the recorded pair
    assert clock_status(resumed, at(SHANGHAI, 2026, 3, 2, 16, 0), OFFICE_SHANGHAI) == during


def test_two_pauses_from_the_same_minute_one_still_open_is_an_open_pause() -> None:
    # given: a pause recorded twice from 09:40, once closed at 10:00 and once still open
    # (the case CI's hypothesis run found: sorting compared None with a datetime)
    opened = MONDAY + 40 * MINUTE
    clock = _clock(60, MONDAY, (opened, MONDAY + 60 * MINUTE), (opened, None))
    # when
    status = clock_status(clock, at(SHANGHAI, 2026, 3, 2, 16, 0), OFFICE_SHANGHAI)
    # then: the open one wins; 40 minutes ran before the pause
    assert (status.paused, status.elapsed_minutes, status.due_at) == (True, 40, None)


def test_a_stopped_clock_is_met_or_breached_for_good() -> None:
    in_time = Clock(30, MONDAY, stopped_at=MONDAY + 12 * MINUTE)
    late = Clock(30, MONDAY, stopped_at=MONDAY + 45 * MINUTE)
    status = clock_status(in_time, MONDAY + timedelta(days=3), OFFICE_SHANGHAI)
    assert (status.stopped, status.met, status.breached, status.elapsed_minutes) == (
        True,
        True,
        False,
        12,
    )
    assert status.due_at is None
    status = clock_status(late, MONDAY + timedelta(days=3), OFFICE_SHANGHAI)
    assert (status.stopped, status.met, status.breached, status.elapsed_minutes) == (
        True,
        False,
        True,
        45,
    )
    assert status.due_at == status.breached_at == MONDAY + 30 * MINUTE
    # a stop recorded after now is not known yet
    assert not clock_status(in_time, MONDAY + 5 * MINUTE, OFFICE_SHANGHAI).stopped


def test_a_clock_not_yet_started_has_its_whole_target_ahead() -> None:
    clock = _clock(30, MONDAY)
    status = clock_status(clock, MONDAY - timedelta(hours=3), OFFICE_SHANGHAI)
    assert (status.elapsed_minutes, status.due_at) == (0, MONDAY + 30 * MINUTE)


def test_a_malformed_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 minute"):
        Clock(0, MONDAY)
    with pytest.raises(ValueError, match="resumes"):
        _clock(30, MONDAY, (MONDAY + MINUTE, MONDAY))


@st.composite
def clocks(draw: st.DrawFn, *, calendars: st.SearchStrategy[BusinessCalendar] = CALENDARS) -> Any:
    """A calendar, a clock whose pauses and stop fall within ~2 weeks of its start, and a few
    instants to look at it, all on whole minutes so a minute-by-minute reference applies."""
    cal = draw(calendars)
    start = BASE + draw(st.integers(min_value=0, max_value=330 * 24 * 60)) * MINUTE
    offsets = sorted(draw(st.lists(st.integers(0, 14 * 24 * 60), max_size=6)))
    pauses: list[tuple[datetime, datetime | None]] = [
        (start + offsets[i] * MINUTE, start + offsets[i + 1] * MINUTE)
        for i in range(0, len(offsets) - 1, 2)
    ]
    if len(offsets) % 2 and draw(st.booleans()):
        pauses.append((start + offsets[-1] * MINUTE, None))
    stop = draw(st.none() | st.integers(0, 16 * 24 * 60))
    clock = Clock(
        target_minutes=draw(st.integers(1, 3000)),
        started_at=start,
        pauses=tuple(draw(st.permutations(pauses))),
        stopped_at=None if stop is None else start + stop * MINUTE,
    )
    nows = sorted(draw(st.lists(st.integers(-60, 20 * 24 * 60), min_size=1, max_size=5)))
    return cal, clock, [start + n * MINUTE for n in nows]


@PROPERTIES
@given(case=clocks())
def test_elapsed_never_decreases_and_a_breach_stays(case: Any) -> None:
    cal, clock, nows = case
    statuses = [clock_status(clock, now, cal) for now in nows]
    for earlier, later in pairwise(statuses):
        assert later.elapsed_minutes >= earlier.elapsed_minutes
        if earlier.breached:
            assert later.breached
            assert later.breached_at == earlier.breached_at
    for now, status in zip(nows, statuses, strict=True):
        assert status.breached == (status.elapsed_minutes >= clock.target_minutes)
        assert status.remaining_minutes == max(clock.target_minutes - status.elapsed_minutes, 0)
        if status.breached:
            assert status.breached_at is not None
            assert clock.started_at <= status.breached_at <= now
            assert status.due_at == status.breached_at
        assert not (status.met and status.breached)
        assert not (status.warning and (status.paused or status.stopped or status.breached))


@PROPERTIES
@given(case=clocks(), extra=st.tuples(INSTANTS, st.integers(0, 3 * 24 * 60), st.booleans()))
def test_adding_a_pause_never_adds_elapsed_time(case: Any, extra: Any) -> None:
    cal, clock, nows = case
    paused_at, length, still_paused = extra
    pause = (paused_at, None if still_paused else paused_at + length * MINUTE)
    more = Clock(clock.target_minutes, clock.started_at, (*clock.pauses, pause), clock.stopped_at)
    for now in nows:
        assert (
            clock_status(more, now, cal).elapsed_minutes
            <= clock_status(clock, now, cal).elapsed_minutes
        )


@settings(max_examples=25, deadline=None)
@given(case=clocks(calendars=PLAIN_CALENDARS))
def test_elapsed_is_the_open_unpaused_minutes_counted_one_by_one(case: Any) -> None:
    cal, clock, nows = case
    now = nows[-1]
    end = now if clock.stopped_at is None or clock.stopped_at > now else clock.stopped_at

    def running(moment: datetime) -> bool:
        return not any(
            paused_at <= moment and (resumed_at is None or moment < resumed_at)
            for paused_at, resumed_at in clock.pauses
        )

    expected = _reference_minutes(clock.started_at, end, cal, running)
    assert clock_status(clock, now, cal).elapsed_minutes == expected


@PROPERTIES
@given(case=clocks(), wait=st.integers(0, 3 * 24 * 60))
def test_due_at_is_exact_to_the_minute(case: Any, wait: int) -> None:
    # given: a clock that is running now, every pause behind it
    cal, recorded, _ = case
    closed = tuple((a, b) for a, b in recorded.pauses if b is not None)
    last = max([recorded.started_at, *(b for _, b in closed if b is not None)])
    clock = Clock(recorded.target_minutes, recorded.started_at, closed)
    now = last + wait * MINUTE
    # when
    status = clock_status(clock, now, cal)
    # then
    assert status.due_at is not None
    if status.breached:
        return
    at_due = clock_status(clock, status.due_at, cal)
    just_before = clock_status(clock, status.due_at - TICK, cal)
    assert at_due.breached
    assert at_due.breached_at == status.due_at
    assert at_due.elapsed_minutes == clock.target_minutes
    assert not just_before.breached
    # on whole minutes, what is left is whole minutes counted from now
    assert status.due_at == add_business_minutes(now, status.remaining_minutes, cal)
    # the warning zone starts at warning_at (unless it is empty: a target under 5 minutes)
    assert status.warning_at is not None
    if status.warning_at < status.due_at:
        assert clock_status(clock, status.warning_at, cal).warning
        assert not clock_status(clock, status.warning_at - TICK, cal).warning


def test_a_warning_reached_as_the_clock_pauses_starts_when_it_resumes() -> None:
    # given: 10 minutes to go, the warning 2 minutes before; paused exactly at minute 8
    start = datetime(2026, 3, 16, 1, 0, tzinfo=UTC)
    clock = Clock(10, start, ((start + 8 * MINUTE, start + 20 * MINUTE),))
    # when: as it resumes
    status = clock_status(clock, start + 20 * MINUTE, ALWAYS_BERLIN, warning_minutes=2)
    # then: the warning zone starts at the resumption (while paused nobody is warned)
    assert status.warning and status.warning_at == start + 20 * MINUTE
    before = clock_status(clock, start + 20 * MINUTE - TICK, ALWAYS_BERLIN, warning_minutes=2)
    assert before.paused and not before.warning


# ---------------------------------------------------------------------- escalation


def _status(**flags: Any) -> ClockStatus:
    values: dict[str, Any] = {
        "target_minutes": 30,
        "elapsed_minutes": 0,
        "remaining_minutes": 30,
        "due_at": None,
        "breached": False,
        "breached_at": None,
        "paused": False,
        "stopped": False,
        "met": False,
        "warning": False,
        "warning_at": None,
    }
    values.update(flags)
    return ClockStatus(**values)


@pytest.mark.parametrize(
    ("flags", "already", "expected"),
    [
        ({}, set(), ()),
        ({"warning": True}, set(), ("warn",)),
        ({"warning": True}, {"warn"}, ()),
        ({"breached": True}, set(), ("escalate",)),
        ({"breached": True}, {"warn"}, ("escalate",)),
        ({"breached": True}, {"warn", "escalate"}, ()),
        ({"breached": True}, {"escalate"}, ()),
        ({"breached": True, "paused": True}, set(), ("escalate",)),
        ({"breached": True, "stopped": True}, set(), ()),
        ({"stopped": True, "met": True}, set(), ()),
    ],
)
def test_escalation_steps_fire_once_each(
    flags: dict[str, Any], already: set[str], expected: tuple[str, ...]
) -> None:
    assert rules.escalation_steps(_status(**flags), already=frozenset(already)) == expected


def test_the_every_minute_job_warns_then_escalates_once_each() -> None:
    # given: a 60-minute clock looked at every minute, twice per minute (a job run twice)
    clock = _clock(60, MONDAY)
    fired: list[tuple[str, datetime]] = []
    # when
    for minute in range(0, 120):
        now = MONDAY + minute * MINUTE
        for _ in range(2):
            status = clock_status(clock, now, OFFICE_SHANGHAI)
            for step in rules.escalation_steps(status, already=frozenset(s for s, _ in fired)):
                fired.append((step, now))
    # then
    assert fired == [("warn", MONDAY + 48 * MINUTE), ("escalate", MONDAY + 60 * MINUTE)]


# ---------------------------------------------------------------------- SLA targets


@pytest.mark.parametrize(
    ("grade", "priority", "expected"),
    [
        (None, "normal", ("Standard", 30, 1440)),
        ("ordinary", "normal", ("Standard", 30, 1440)),
        ("potential", "normal", ("Standard", 30, 1440)),
        ("ordinary", "urgent", ("Urgent", 15, 480)),
        ("ordinary", "high", ("High priority", 20, 720)),
        ("ordinary", "low", ("Low priority", 60, 2880)),
        ("core", "normal", ("Core customer", 15, 720)),
        ("core", "low", ("Core customer", 15, 720)),
        ("core", "urgent", ("Core customer, urgent", 10, 240)),
        ("core", "high", ("Core customer, high priority", 15, 480)),
    ],
)
def test_default_targets(grade: str | None, priority: str, expected: tuple[str, int, int]) -> None:
    targets = rules.sla_targets(rules.DEFAULT_POLICIES, priority=priority, grade=grade)
    assert (targets.policy_name, targets.first_reply_minutes, targets.resolution_minutes) == (
        expected
    )


def test_r_e3_is_the_default_and_nothing_is_looser_except_low_priority() -> None:
    standard = rules.sla_targets(priority="normal", grade=None)
    assert (standard.first_reply_minutes, standard.resolution_minutes) == (30, 24 * 60)
    for grade, priority in product([*rules.GRADES, None], rules.PRIORITIES):
        targets = rules.sla_targets(priority=priority, grade=grade)
        ordinary = rules.sla_targets(priority=priority, grade="ordinary")
        assert targets.first_reply_minutes <= ordinary.first_reply_minutes
        assert targets.resolution_minutes <= ordinary.resolution_minutes
        if priority != "low":
            assert targets.first_reply_minutes <= 30
            assert targets.resolution_minutes <= 1440


def test_the_most_specific_row_wins_and_the_first_among_equals() -> None:
    row = rules.SlaPolicyRow
    policies = [
        row("both", "high", "core", 1, 10, business_hours=False),
        row("grade", None, "core", 2, 20),
        row("grade again", None, "core", 9, 90),
        row("priority", "high", None, 3, 30),
        row("default", None, None, 4, 40),
    ]
    pick = rules.sla_targets
    assert pick(policies, priority="high", grade="core") == rules.Targets(1, 10, "both", False)
    assert pick(policies, priority="low", grade="core").policy_name == "grade"
    assert pick(policies, priority="high", grade="potential").policy_name == "priority"
    assert pick(policies, priority="low", grade=None).policy_name == "default"
    assert pick(list(reversed(policies)), priority="high", grade="core").policy_name == "both"
    with pytest.raises(LookupError, match="no default policy"):
        pick(policies[:4], priority="low", grade=None)


# ---------------------------------------------------------------------- priority


def _priority(
    text: str = "",
    *,
    category: str | None = None,
    grade: str | None = None,
    sentiment: float | None = None,
    keywords: dict[str, str] | None = None,
) -> rules.PriorityDecision:
    return rules.priority_for(
        category_priority=category,
        text=text,
        grade=grade,
        sentiment=sentiment,
        keywords=rules.DEFAULT_KEYWORDS if keywords is None else keywords,
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "normal"),
        ({"category": "low"}, "low"),
        ({"category": "high"}, "high"),
        ({"text": "我要投诉你们"}, "high"),
        ({"text": "我已经打了12315"}, "urgent"),
        ({"text": "call me at 13812315000"}, "normal"),  # inside a phone number
        ({"text": "找媒体曝光"}, "urgent"),
        ({"text": "I want a REFUND"}, "high"),
        ({"text": "not refunded yet"}, "high"),
        ({"text": "my lawyer will write"}, "urgent"),
        ({"text": "nothing special", "keywords": {"sue": "urgent"}}, "normal"),
        ({"text": "an issue with the order", "keywords": {"sue": "urgent"}}, "normal"),
        ({"text": "I will sue", "keywords": {"sue": "urgent"}}, "urgent"),
        ({"text": "退款", "category": "urgent"}, "urgent"),  # never lowered
        ({"text": "请退款", "keywords": {"退款": "low"}}, "normal"),
        ({"grade": "core"}, "high"),
        ({"grade": "potential"}, "normal"),
        ({"sentiment": -0.5}, "high"),
        ({"sentiment": -0.49}, "normal"),
        ({"sentiment": 0.9}, "normal"),
        ({"grade": "core", "sentiment": -0.8}, "urgent"),
        ({"category": "low", "grade": "core", "sentiment": -0.8}, "high"),
        ({"text": "投诉", "grade": "core", "sentiment": -0.9}, "urgent"),
        ({"text": "律师", "grade": "core", "sentiment": -0.9}, "urgent"),
    ],
)
def test_priority_rules(kwargs: dict[str, Any], expected: str) -> None:
    assert _priority(**kwargs).priority == expected


@pytest.mark.parametrize(
    ("grade", "handling", "priority", "reason"),
    [
        ("core", None, "high", "Core customer: raised one step to high."),
        ("potential", None, "normal", None),
        ("core", False, "normal", None),
        (
            "potential",
            True,
            "high",
            "Priority handling for potential customers: raised one step to high.",
        ),
        (None, None, "normal", None),
    ],
)
def test_priority_handling_follows_the_measures_by_grade(grade, handling, priority, reason) -> None:
    decision = rules.priority_for(
        category_priority="normal", text="", grade=grade, sentiment=None, priority_handling=handling
    )
    assert decision.priority == priority
    assert decision.reasons[1:] == ((reason,) if reason else ())


def test_priority_reasons_say_what_changed() -> None:
    # when
    decision = _priority("我要投诉, and refund", category="low", grade="core", sentiment=-0.75)
    # then
    assert decision.priority == "urgent"
    assert decision.reasons == (
        "The category sets priority low.",
        "The message mentions “投诉”, “refund”: raised to high.",
        "Core customer: raised one step to urgent.",
    )
    assert [render(record) for record in decision.reason_records] == list(decision.reasons)
    assert decision.reason_records[0] == {
        "template": "The category sets priority {priority}.",
        "params": {"priority": "low"},
    }
    assert _priority(sentiment=-0.75).reasons[-1] == (
        "Strongly negative tone (sentiment -0.75): raised one step to high."
    )
    assert _priority().reasons == ("No priority set by the category: starting from normal.",)


def test_an_unknown_category_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown category priority 'critical'"):
        _priority(category="critical")


@settings(max_examples=60, deadline=None)
@given(
    category=st.none() | st.sampled_from(rules.PRIORITIES),
    text=st.text(max_size=40) | st.sampled_from(list(rules.DEFAULT_KEYWORDS)),
    grade=st.none() | st.sampled_from(rules.GRADES),
    sentiment=st.none() | st.floats(min_value=-1, max_value=1),
)
def test_priority_is_never_below_the_category_and_rises_by_at_most_the_factors(
    category: str | None, text: str, grade: str | None, sentiment: float | None
) -> None:
    decision = _priority(text, category=category, grade=grade, sentiment=sentiment)
    rank = rules.PRIORITIES.index
    assert rank(decision.priority) >= rank(category or "normal")
    without_text = _priority("", category=category, grade=grade, sentiment=sentiment)
    assert rank(decision.priority) >= rank(without_text.priority)
    assert len(decision.reasons) == len(decision.reason_records) >= 1


# ---------------------------------------------------------------------- routing

ROUTES = (
    rules.RouteRow(position=30, team="english", language="en"),
    rules.RouteRow(position=10, team="vip-wechat", channel="wechat", grade="core"),
    rules.RouteRow(position=20, team="logistics-zh", category="logistics", language="zh"),
)


@pytest.mark.parametrize(
    ("facts", "team"),
    [
        ({"channel": "wechat", "category": "", "grade": "core", "language": "zh"}, "vip-wechat"),
        # first by position: the core WeChat rule wins over the English one
        ({"channel": "wechat", "category": "", "grade": "core", "language": "en"}, "vip-wechat"),
        (
            {"channel": "email", "category": "logistics", "grade": "", "language": "zh"},
            "logistics-zh",
        ),
        ({"channel": "email", "category": "logistics", "grade": "", "language": "en"}, "english"),
        ({"channel": "wechat", "category": "", "grade": "ordinary", "language": "zh"}, None),
        ({"channel": "web", "category": "", "grade": None, "language": "zh"}, None),
    ],
)
def test_route_for_takes_the_first_matching_rule_by_position(facts, team):
    found = rules.route_for(ROUTES, priority="normal", **facts)
    assert (found.team if found else None) == team


def test_route_for_with_no_rules_routes_nowhere():
    assert (
        rules.route_for((), channel="web", category="", grade=None, priority="low", language="zh")
        is None
    )


@given(
    channel=st.sampled_from(["web", "email", "wechat"]),
    category=st.sampled_from(["", "logistics", "billing"]),
    grade=st.sampled_from([None, "core", "ordinary"]),
    language=st.sampled_from(rules.LANGUAGES),
)
def test_a_rule_with_no_conditions_catches_everything_after_the_others(
    channel, category, grade, language
):
    catch_all = rules.RouteRow(position=99, team="general")
    found = rules.route_for(
        (*ROUTES, catch_all),
        channel=channel,
        category=category,
        grade=grade,
        priority="high",
        language=language,
    )
    assert found is not None
    assert found.matches(
        channel=channel, category=category, grade=grade or "", priority="high", language=language
    )
    earlier = [r for r in ROUTES if r.position < found.position]
    assert not any(
        r.matches(
            channel=channel,
            category=category,
            grade=grade or "",
            priority="high",
            language=language,
        )
        for r in earlier
    )


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我的订单 SN-1234 还没到", "zh"),
        ("Where is order 1234?", "en"),
        ("", "en"),
        ("iPhone 壳", "zh"),
    ],
)
def test_language_of(text, language):
    assert rules.language_of(text) == language


@pytest.mark.parametrize(
    ("start", "end", "now", "expected"),
    [
        (time(9), time(18), time(9), True),
        (time(9), time(18), time(17, 59), True),
        (time(9), time(18), time(18), False),
        (time(9), time(18), time(8, 59), False),
        (time(22), time(6), time(23), True),
        (time(22), time(6), time(5, 59), True),
        (time(22), time(6), time(6), False),
        (time(22), time(6), time(12), False),
        (None, time(6), time(12), True),
        (time(8), time(8), time(3), True),
    ],
)
def test_on_shift(start, end, now, expected):
    assert rules.on_shift(start, end, now) is expected
