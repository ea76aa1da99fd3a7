"""Pure rules of the service desk: the ticket state machine, business time, SLA clocks and
targets, priority and escalation. Nothing here touches the database or Django;
``patron.service.services`` gathers the facts (a ticket's state, its pauses, the policies, the
calendar) and applies these rules inside transactions, so the API, the pages, the CLI and the
every-minute SLA job agree.

What is here, and the contract of each:

1. **Ticket states** — ``TICKET_TRANSITIONS`` (state -> {action: next state}) and
   ``ticket_next(state, action, *, solved_at, now, reopen_days)``, which raises
   ``TransitionRefused`` (409) for anything the table does not allow and for a customer's reply
   or a staff reopen more than ``reopen_days`` after the ticket was solved: the reopen window
   is ``[solved_at, solved_at + reopen_days)``, and ``ticket_close_due`` is true exactly when
   that window has closed, so "may reopen" and "may auto-close" never overlap.
   ``SLA_PAUSED_STATES`` are the states in which the SLA clocks do not run.
2. **Business time** — ``BusinessCalendar`` (weekly hours in the desk's zone, holidays, make-up
   working days), ``business_time`` / ``business_minutes`` (how much business time lies in
   ``[start, end)``) and ``add_business_minutes`` (when a given amount of it has passed).
3. **SLA clocks** — ``Clock`` (target, start, pauses, stop) and ``clock_status``: elapsed and
   remaining business minutes, the due and breach instants exact to the minute, and the
   paused / met / warning flags.
4. **SLA targets** — ``sla_targets(policies, priority=, grade=)`` picks the most specific
   ``SlaPolicyRow``; ``DEFAULT_POLICIES`` are R-E3's 30 minutes / 24 hours, tighter for core
   customers and urgent tickets, looser for low priority.
5. **Priority** — ``priority_for``: the category's priority, raised by keywords in the text
   (``DEFAULT_KEYWORDS``), by a core grade and by a strongly negative tone, with reasons.
6. **Escalation** — ``escalation_steps(status, already=)``: which of ``warn`` / ``escalate`` fire
   now, each at most once, so the every-minute job can run twice without paging anyone twice.
7. **Holidays** — ``china_holidays(years)``: China's official arrangement (holidays and
   make-up working days, 调休) from ``chinese_calendar``, falling back to the ``holidays``
   package for years ``chinese_calendar`` does not know yet; ``BusinessCalendar.with_days``
   folds them into a calendar.

Time conventions: every datetime taken must be timezone-aware (``ValueError`` otherwise), and
every datetime returned is in UTC (``datetime.UTC``). Internally everything is UTC because
Python subtracts two datetimes that share a ``ZoneInfo`` by wall clock, which is wrong across
a DST change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from patron.intelligence.explain import N_
from patron.statemachine import TransitionRefused, next_state

# ---------------------------------------------------------------------- ticket states

TICKET_STATES: tuple[str, ...] = ("new", "open", "pending", "on_hold", "solved", "closed")
TICKET_ACTIONS: tuple[str, ...] = (
    "open",
    "reply_wait",
    "customer_reply",
    "hold",
    "resume",
    "solve",
    "close",
    "reopen",
)

#: Ticket status -> {action: next status}.
#:
#: - ``open``: an agent takes the new ticket (or touches it first).
#: - ``reply_wait``: an agent replied and now waits for the customer (pending customer).
#: - ``customer_reply``: the customer wrote back; from ``solved`` only inside the reopen window.
#:   A customer's message on a new or open ticket changes no state, so it is not an action here.
#: - ``hold`` / ``resume``: waiting on someone other than the customer (a department, a carrier).
#: - ``solve``: the agent considers it done; ``close`` makes that final (no action leaves
#:   ``closed``: a customer who writes again gets a new ticket).
#: - ``reopen``: staff reopen a solved ticket, inside the same window as the customer.
TICKET_TRANSITIONS: dict[str, dict[str, str]] = {
    "new": {"open": "open", "reply_wait": "pending", "solve": "solved"},
    "open": {"reply_wait": "pending", "hold": "on_hold", "solve": "solved"},
    "pending": {"customer_reply": "open", "solve": "solved"},
    "on_hold": {
        "resume": "open",
        "reply_wait": "pending",
        "customer_reply": "open",
        "solve": "solved",
    },
    "solved": {"close": "closed", "customer_reply": "open", "reopen": "open"},
    "closed": {},
}

#: States in which the SLA clocks do not run. The resolution clock pauses while the desk waits
#: on the customer (``pending``) or on a third party (``on_hold``): the customer should not be
#: able to breach our SLA by not answering. ``solved`` and ``closed`` stop the clocks (the
#: target is met); they are listed here too because a reopened ticket's clock continues from
#: where it stood, as if the solved period had been a pause.
SLA_PAUSED_STATES = frozenset({"pending", "on_hold", "solved", "closed"})
#: States in which the SLA clocks run.
SLA_RUNNING_STATES = frozenset(TICKET_STATES) - SLA_PAUSED_STATES

#: Days after ``solved_at`` during which the customer's reply or staff reopen the ticket.
REOPEN_DAYS = 7
_REOPENING = frozenset({"customer_reply", "reopen"})


def reopen_deadline(solved_at: datetime, *, reopen_days: int = REOPEN_DAYS) -> datetime:
    """The first instant at which a solved ticket can no longer be reopened (UTC)."""
    return _utc(solved_at, "solved_at") + timedelta(days=reopen_days)


def ticket_close_due(*, solved_at: datetime, now: datetime, reopen_days: int = REOPEN_DAYS) -> bool:
    """Whether the close job may close a solved ticket: exactly when reopening is refused."""
    return _utc(now, "now") >= reopen_deadline(solved_at, reopen_days=reopen_days)


def ticket_next(
    state: str,
    action: str,
    *,
    solved_at: datetime | None = None,
    now: datetime | None = None,
    reopen_days: int = REOPEN_DAYS,
) -> str:
    """The ticket's next state, or ``TransitionRefused``.

    Leaving ``solved`` by ``customer_reply`` or ``reopen`` needs ``solved_at`` and ``now`` and
    is refused from ``solved_at + reopen_days`` on (the window is half-open, matching
    ``ticket_close_due``). Omitting them there is a programming error (``ValueError``)."""
    target = next_state(TICKET_TRANSITIONS, "the ticket", state, action)
    if state == "solved" and action in _REOPENING:
        if solved_at is None or now is None:
            raise ValueError(f"ticket {action.replace('_', ' ')}: solved_at and now are required")
        deadline = reopen_deadline(solved_at, reopen_days=reopen_days)
        if _utc(now, "now") >= deadline:
            raise TransitionRefused(
                f"the ticket was solved on {_utc(solved_at, 'solved_at'):%Y-%m-%d %H:%M} UTC, "
                f"{reopen_days} or more days ago: it can no longer be reopened "
                f"(the window closed at {deadline:%Y-%m-%d %H:%M} UTC); open a new ticket"
            )
    return target


def clock_change(before: str, after: str) -> str | None:
    """What a transition does to the SLA clocks: ``"pause"``, ``"resume"`` or ``None``."""
    was_running, is_running = before in SLA_RUNNING_STATES, after in SLA_RUNNING_STATES
    if was_running and not is_running:
        return "pause"
    if is_running and not was_running:
        return "resume"
    return None


# ---------------------------------------------------------------------- business calendar

Interval = tuple[time, time]
MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)
#: How far ``add_business_time`` looks ahead before it gives up: SLA targets are minutes to
#: days, so a deadline years away means a calendar that is (almost) never open.
SCAN_LIMIT = timedelta(days=3 * 366)
_DAY_CACHE_SIZE = 4096


def _check_intervals(intervals: Sequence[Interval], where: str) -> tuple[Interval, ...]:
    checked: list[Interval] = []
    previous_end: time | None = None
    for item in intervals:
        opens, closes = item
        if opens.tzinfo is not None or closes.tzinfo is not None:
            raise ValueError(f"business hours on {where}: use wall-clock times without a zone")
        if closes != MIDNIGHT and closes <= opens:
            raise ValueError(
                f"business hours on {where}: {opens:%H:%M}–{closes:%H:%M} closes before it opens "
                "(an interval ending at 00:00 ends at midnight)"
            )
        if previous_end is not None and (previous_end == MIDNIGHT or opens < previous_end):
            raise ValueError(
                f"business hours on {where}: intervals must be in order and must not overlap"
            )
        previous_end = closes
        checked.append((opens, closes))
    return tuple(checked)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class BusinessCalendar:
    """When the desk works, in its own zone.

    ``hours`` maps a weekday (0 = Monday … 6 = Sunday) to its opening intervals in wall-clock
    time, in order and not overlapping; a missing or empty day is closed. An interval ending at
    00:00 ends at midnight, so ``(00:00, 00:00)`` is the whole day. ``holidays`` are closed all
    day; ``workdays`` are make-up working days (China's 调休: a Saturday or Sunday worked in
    exchange for a longer holiday) and open with ``workday_hours`` (Monday's hours if ``None``).

    Wall time and DST: each interval edge is placed at the **earliest instant at which the
    local clock reads that time or later** on that date. An edge in a spring-forward gap (02:30
    in Berlin on the last Sunday of March) therefore falls at the jump (03:00 CEST), and an edge
    in a repeated hour of autumn at its first occurrence. Business time is then the real time
    elapsed between the edges: a 24/7 desk has 23 hours on the spring day and 25 on the autumn
    one, and an office open 09:00–18:00 has 9 hours every day. Because the placement is
    monotonic, adjacent intervals (12:00–13:00, 13:00–18:00) add up exactly to the joined one.

    Day intervals are computed once per date and kept on the instance (a few thousand dates
    at most), so one calendar can serve a whole scheduler pass.
    """

    zone: ZoneInfo
    hours: Mapping[int, tuple[Interval, ...]]
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    workday_hours: tuple[Interval, ...] | None = None
    _spans: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        hours: dict[int, tuple[Interval, ...]] = {}
        for weekday, intervals in dict(self.hours).items():
            if weekday not in range(7):
                raise ValueError(f"business hours: weekday {weekday} is not 0 (Monday) to 6")
            hours[weekday] = _check_intervals(intervals, _WEEKDAYS[weekday])
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        if self.workday_hours is not None:
            object.__setattr__(
                self,
                "workday_hours",
                _check_intervals(self.workday_hours, "make-up working days"),
            )
        if not any(hours.values()):
            raise ValueError(
                "the business calendar has no opening hours on any day of the week: "
                "no SLA deadline could ever fall due"
            )
        both = sorted(self.holidays & self.workdays)
        if both:
            raise ValueError(
                "the business calendar lists these dates both as holidays and as working days: "
                + ", ".join(day.isoformat() for day in both)
            )

    @classmethod
    def always_open(cls, zone: ZoneInfo) -> BusinessCalendar:
        """A 24/7 desk: business time is real time."""
        return cls(zone=zone, hours={day: ((MIDNIGHT, MIDNIGHT),) for day in range(7)})

    @classmethod
    def office_hours(
        cls,
        zone: ZoneInfo,
        intervals: Sequence[Interval] = ((time(9), time(18)),),
        *,
        weekdays: Iterable[int] = range(5),
    ) -> BusinessCalendar:
        """The same intervals on the given weekdays (Monday to Friday by default)."""
        return cls(zone=zone, hours={day: tuple(intervals) for day in weekdays})

    def with_days(self, days: Iterable[tuple[date, str, bool]]) -> BusinessCalendar:
        """This calendar plus ``(date, name, is_workday)`` rows (``china_holidays``' output)."""
        rows = list(days)
        return replace(
            self,
            holidays=self.holidays | {day for day, _, is_workday in rows if not is_workday},
            workdays=self.workdays | {day for day, _, is_workday in rows if is_workday},
        )

    def hours_on(self, day: date) -> tuple[Interval, ...]:
        """The wall-clock opening intervals of a date."""
        if day in self.holidays:
            return ()
        if day in self.workdays:
            if self.workday_hours is not None:
                return self.workday_hours
            return self.hours.get(0, ())
        return self.hours.get(day.weekday(), ())

    def spans_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The opening intervals of a date as ``[open, close)`` UTC instants (see the class
        docstring for DST); an interval that falls wholly inside a DST gap is dropped."""
        spans = self._spans.get(day)
        if spans is None:
            found = []
            for opens, closes in self.hours_on(day):
                start = _instant(day, opens, self.zone)
                if closes == MIDNIGHT:
                    end = _instant(day + _ONE_DAY, MIDNIGHT, self.zone)
                else:
                    end = _instant(day, closes, self.zone)
                if end > start:
                    found.append((start, end))
            spans = tuple(found)
            if len(self._spans) >= _DAY_CACHE_SIZE:
                self._spans.clear()
            self._spans[day] = spans
        return spans

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


@lru_cache(maxsize=65536)
def _instant(day: date, wall: time, zone: tzinfo) -> datetime:
    """The earliest UTC instant at which the clock in ``zone`` reads ``day wall`` or later."""
    local = datetime.combine(day, wall, tzinfo=zone)  # fold=0: the first of a repeated time
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return moment
    # ``wall`` does not exist (a spring-forward gap). With fold=0 it is read with the offset
    # from before the jump, which lands after the jump; with fold=1 with the offset from after
    # it, which lands before. The jump itself lies between: bisect to the second.
    later_offset = moment.astimezone(zone).utcoffset()
    low = int(local.replace(fold=1).astimezone(UTC).timestamp())
    high = int(moment.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == later_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _utc(moment: datetime, what: str = "datetime") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def business_time(start: datetime, end: datetime, cal: BusinessCalendar) -> timedelta:
    """The business time in ``[start, end)``, exactly (zero if ``end <= start``)."""
    return _business_time(_utc(start, "start"), _utc(end, "end"), cal)


def _business_time(begin: datetime, finish: datetime, cal: BusinessCalendar) -> timedelta:
    if finish <= begin:
        return _ZERO
    total = _ZERO
    # One day of margin on each side: a date's intervals may reach into the next date's
    # midnight, and a zone that falls back across midnight repeats a date.
    day = cal.local_date(begin) - _ONE_DAY
    last = cal.local_date(finish) + _ONE_DAY
    while day <= last:
        for opens, closes in cal.spans_on(day):
            low, high = max(opens, begin), min(closes, finish)
            if high > low:
                total += high - low
        day += _ONE_DAY
    return total


def business_minutes(start: datetime, end: datetime, cal: BusinessCalendar) -> int:
    """Whole minutes (rounded down) of business time in ``[start, end)``; 0 if ``end <= start``."""
    return business_time(start, end, cal) // _MINUTE


def add_business_time(start: datetime, amount: timedelta, cal: BusinessCalendar) -> datetime:
    """The earliest instant (UTC) by which ``amount`` of business time has passed since
    ``start``. Outside opening hours the count starts at the next opening; an amount that ends
    exactly at a closing returns the closing, not the next opening; zero returns ``start``.

    Raises ``ValueError`` for a negative amount and when the calendar has not given that much
    business time within ``SCAN_LIMIT`` (three years) after ``start``."""
    if amount < _ZERO:
        raise ValueError(f"business time to add must not be negative, got {amount}")
    return _add_business_time(_utc(start, "start"), amount, cal)


def _add_business_time(begin: datetime, amount: timedelta, cal: BusinessCalendar) -> datetime:
    if amount <= _ZERO:
        return begin
    remaining = amount
    day = cal.local_date(begin) - _ONE_DAY
    last = cal.local_date(begin + SCAN_LIMIT)
    while day <= last:
        for opens, closes in cal.spans_on(day):
            if closes <= begin:
                continue
            low = max(opens, begin)
            available = closes - low
            if available >= remaining:
                return low + remaining
            remaining -= available
        day += _ONE_DAY
    raise ValueError(
        f"the business calendar does not give {amount} of business time within three years "
        f"after {begin:%Y-%m-%d %H:%M} UTC: check its hours and holidays"
    )


def add_business_minutes(start: datetime, minutes: int, cal: BusinessCalendar) -> datetime:
    """The instant (UTC) when ``minutes`` of business time have passed after ``start``
    (see ``add_business_time``): ``business_minutes(start, result) == minutes`` always."""
    return add_business_time(start, timedelta(minutes=minutes), cal)


# ---------------------------------------------------------------------- SLA clocks

#: The warning zone is the last 20 % of the target unless a number of minutes is given.
WARNING_FRACTION = 0.2


@dataclass(frozen=True)
class Clock:
    """One SLA clock (first reply or resolution) as recorded.

    ``pauses`` are ``(paused_at, resumed_at)``, ``resumed_at`` ``None`` while still paused;
    they may be unsorted or overlap. ``stopped_at`` is when the clock stopped because its
    target was reached by the desk (first reply sent, ticket solved)."""

    target_minutes: int
    started_at: datetime
    pauses: tuple[tuple[datetime, datetime | None], ...] = ()
    stopped_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.target_minutes < 1:
            raise ValueError(f"an SLA target must be at least 1 minute, got {self.target_minutes}")
        _utc(self.started_at, "started_at")
        if self.stopped_at is not None:
            _utc(self.stopped_at, "stopped_at")
        for paused_at, resumed_at in self.pauses:
            if resumed_at is not None and _utc(resumed_at, "resumed_at") < _utc(
                paused_at, "paused_at"
            ):
                raise ValueError(
                    f"an SLA pause resumes ({resumed_at.isoformat()}) before it starts "
                    f"({paused_at.isoformat()})"
                )


@dataclass(frozen=True)
class ClockStatus:
    """A clock as of ``now``.

    ``elapsed_minutes`` counts whole business minutes while running (never paused time, never
    after the stop, never decreasing as ``now`` grows); ``breached`` is exactly
    ``elapsed_minutes >= target_minutes`` and ``breached_at`` the instant it became true.

    ``due_at`` is when the target is (or was) reached: ``breached_at`` once breached; while
    running, the exact instant it will be reached if nothing pauses the clock; ``None`` while
    paused or after a stop in time — a paused clock has no deadline, and the scheduler (which
    looks for ``due_at <= now``) must not see one. ``warning_at`` works the same way for the
    start of the warning zone. ``met`` is "stopped before the target was reached";
    ``warning`` is "running, in the warning zone, not yet breached" — a clock waiting on the
    customer is not something an agent can act on."""

    target_minutes: int
    elapsed_minutes: int
    remaining_minutes: int
    due_at: datetime | None
    breached: bool
    breached_at: datetime | None
    paused: bool
    stopped: bool
    met: bool
    warning: bool
    warning_at: datetime | None


_Pause = tuple[datetime, datetime | None]


def _running_segments(
    start: datetime, pauses: Sequence[_Pause], until: datetime
) -> list[tuple[datetime, datetime]]:
    """``[start, until)`` minus the (sorted, UTC) pauses, as ordered disjoint intervals."""
    if until <= start:
        return []
    segments: list[tuple[datetime, datetime]] = []
    cursor = start
    for paused_at, resumed_at in pauses:
        if paused_at >= until:
            break
        if paused_at > cursor:
            segments.append((cursor, paused_at))
        if resumed_at is None:
            return segments
        cursor = max(cursor, resumed_at)
        if cursor >= until:
            return segments
    segments.append((cursor, until))
    return segments


def warning_threshold(
    target_minutes: int,
    *,
    warning_fraction: float = WARNING_FRACTION,
    warning_minutes: int | None = None,
) -> int:
    """Minutes before the target at which the warning zone starts: ``warning_minutes`` if
    given, else ``⌊target × fraction⌋`` (computed in decimal: 0.29 × 100 is 29, not 28)."""
    if warning_minutes is not None:
        return min(max(warning_minutes, 0), target_minutes)
    share = Decimal(str(warning_fraction)) * target_minutes
    return min(max(int(share), 0), target_minutes)


def clock_status(
    clock: Clock,
    now: datetime,
    cal: BusinessCalendar,
    *,
    warning_fraction: float = WARNING_FRACTION,
    warning_minutes: int | None = None,
) -> ClockStatus:
    """The clock as of ``now`` (see ``ClockStatus``). Pauses and a stop recorded after ``now``
    are not known yet and are ignored; before ``started_at`` nothing has elapsed."""
    moment = _utc(now, "now")
    start = _utc(clock.started_at)
    stop = None if clock.stopped_at is None else _utc(clock.stopped_at)
    stopped = stop is not None and stop <= moment
    until = stop if stop is not None and stopped else moment
    # by start only: two pauses from the same instant, one still open, must not compare
    # their ends (None against a datetime)
    pauses = sorted(
        (
            (_utc(paused_at), None if resumed_at is None else _utc(resumed_at))
            for paused_at, resumed_at in clock.pauses
        ),
        key=lambda pause: pause[0],
    )
    target = timedelta(minutes=clock.target_minutes)
    warn_from = target - timedelta(
        minutes=warning_threshold(
            clock.target_minutes,
            warning_fraction=warning_fraction,
            warning_minutes=warning_minutes,
        )
    )

    elapsed = _ZERO
    breached_at: datetime | None = None
    warning_at: datetime | None = None
    for begin, end in _running_segments(start, pauses, until):
        part = _business_time(begin, end, cal)
        if breached_at is None and elapsed + part >= target:
            breached_at = _add_business_time(begin, target - elapsed, cal)
        # The warning zone starts where the clock runs with warn_from elapsed: inside this
        # segment, or at its start when warn_from was reached exactly as a pause began (the
        # clock warns nobody while it waits on the customer).
        if warning_at is None and (elapsed + part > warn_from or elapsed >= warn_from):
            warning_at = _add_business_time(begin, warn_from - elapsed, cal)
        elapsed += part

    paused = (
        not stopped
        and start <= moment
        and any(
            paused_at <= moment and (resumed_at is None or moment < resumed_at)
            for paused_at, resumed_at in pauses
        )
    )
    running = not stopped and not paused
    due_at = breached_at
    if running:
        resume_from = max(moment, start)
        if due_at is None:
            due_at = _add_business_time(resume_from, target - elapsed, cal)
        if warning_at is None:
            warning_at = _add_business_time(resume_from, warn_from - elapsed, cal)
    breached = breached_at is not None
    elapsed_minutes = elapsed // _MINUTE
    return ClockStatus(
        target_minutes=clock.target_minutes,
        elapsed_minutes=elapsed_minutes,
        remaining_minutes=max(clock.target_minutes - elapsed_minutes, 0),
        due_at=due_at,
        breached=breached,
        breached_at=breached_at,
        paused=paused,
        stopped=stopped,
        met=stopped and not breached,
        warning=running and not breached and elapsed >= warn_from,
        warning_at=warning_at,
    )


# ---------------------------------------------------------------------- escalation

WARN = "warn"
ESCALATE = "escalate"


def escalation_steps(status: ClockStatus, *, already: frozenset[str]) -> tuple[str, ...]:
    """What the every-minute job fires now for one clock, given the steps ``already`` fired.

    ``escalate`` once the clock is breached, ``warn`` once it is in the warning zone; each at
    most once, so running the job twice fires nothing the second time. A clock that jumped
    straight to a breach gets only ``escalate`` (a warning after the fact helps nobody), and a
    stopped clock gets nothing: the target was reached, there is nobody to chase."""
    if status.stopped:
        return ()
    if status.breached:
        return () if ESCALATE in already else (ESCALATE,)
    if status.warning and WARN not in already:
        return (WARN,)
    return ()


# ---------------------------------------------------------------------- SLA targets

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")  # in increasing order
GRADES: tuple[str, ...] = ("core", "potential", "ordinary")


@dataclass(frozen=True)
class SlaPolicyRow:
    """One SLA policy (the ``SlaPolicy`` model as plain data). ``None`` matches any priority or
    grade; ``business_hours`` says whether the targets count the desk's business time (its
    ``BusinessCalendar``) or real time (``BusinessCalendar.always_open``)."""

    name: str
    priority: str | None
    grade: str | None
    first_reply_minutes: int
    resolution_minutes: int
    business_hours: bool = True


@dataclass(frozen=True)
class Targets:
    first_reply_minutes: int
    resolution_minutes: int
    policy_name: str
    business_hours: bool = True


#: R-E3: first reply within 30 minutes, resolution within 24 hours — the default row; tighter
#: for core customers and urgent or high priority, looser for low priority. Grade and priority
#: combinations that should be tighter than either alone are rows of their own, because the
#: most specific row wins outright (a core customer's urgent ticket must not get the core
#: row's 12 hours when any urgent ticket gets 8).
DEFAULT_POLICIES: tuple[SlaPolicyRow, ...] = (
    SlaPolicyRow("Standard", None, None, 30, 1440),
    SlaPolicyRow("Urgent", "urgent", None, 15, 480),
    SlaPolicyRow("High priority", "high", None, 20, 720),
    SlaPolicyRow("Low priority", "low", None, 60, 2880),
    SlaPolicyRow("Core customer", None, "core", 15, 720),
    SlaPolicyRow("Core customer, urgent", "urgent", "core", 10, 240),
    SlaPolicyRow("Core customer, high priority", "high", "core", 15, 480),
)


def _specificity(row: SlaPolicyRow) -> int:
    return (2 if row.grade is not None else 0) + (1 if row.priority is not None else 0)


def sla_targets(
    policies: Sequence[SlaPolicyRow] = DEFAULT_POLICIES,
    *,
    priority: str,
    grade: str | None,
) -> Targets:
    """The targets of the most specific matching row: grade and priority, then grade alone,
    then priority alone, then the default row (both ``None``). Among equally specific rows the
    first wins. ``LookupError`` if nothing matches (no default row)."""
    best: SlaPolicyRow | None = None
    for row in policies:
        if row.priority is not None and row.priority != priority:
            continue
        if row.grade is not None and row.grade != grade:
            continue
        if best is None or _specificity(row) > _specificity(best):
            best = row
    if best is None:
        raise LookupError(
            f"no SLA policy matches priority {priority!r} and grade {grade!r}, "
            "and there is no default policy (priority and grade both empty)"
        )
    return Targets(
        first_reply_minutes=best.first_reply_minutes,
        resolution_minutes=best.resolution_minutes,
        policy_name=best.name,
        business_hours=best.business_hours,
    )


# ---------------------------------------------------------------------- priority

#: Words that raise a ticket to at least the given priority. Legal threats, regulators
#: (12315 is the consumer complaint hotline, 消协 the consumer association) and the press are
#: urgent: they escalate outside the company within days. Complaints, refunds and fraud are high.
DEFAULT_KEYWORDS: dict[str, str] = {
    "律师": "urgent",
    "起诉": "urgent",
    "法院": "urgent",
    "12315": "urgent",
    "消协": "urgent",
    "工商局": "urgent",
    "媒体": "urgent",
    "曝光": "urgent",
    "记者": "urgent",
    "lawyer": "urgent",
    "lawsuit": "urgent",
    "court": "urgent",
    "journalist": "urgent",
    "投诉": "high",
    "退款": "high",
    "欺诈": "high",
    "假货": "high",
    "complaint": "high",
    "complain": "high",
    "refund": "high",
    "fraud": "high",
    "counterfeit": "high",
}

#: Sentiment at or below this (on -1 … 1) raises the priority one step.
NEGATIVE_SENTIMENT = -0.5


@dataclass(frozen=True)
class PriorityDecision:
    """The priority and why: ``reasons`` in English, ``reason_records`` as stored
    (``{"template", "params"}``, see ``patron.intelligence.explain``) for other languages."""

    priority: str
    reasons: tuple[str, ...]
    reason_records: tuple[dict[str, Any], ...] = ()


@lru_cache(maxsize=1024)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Chinese keywords match anywhere (no spaces between words); Latin ones only at a word
    start ("sue" is not in "issue", "refund" is in "refunded"), numbers as whole numbers."""
    if not keyword.isascii():
        return re.compile(re.escape(keyword.casefold()))
    tail = r"(?![0-9])" if keyword[-1:].isdigit() else ""
    return re.compile(r"(?<![a-z0-9])" + re.escape(keyword.casefold()) + tail)


def _raise(priority: str, steps: int = 1) -> str:
    return PRIORITIES[min(PRIORITIES.index(priority) + steps, len(PRIORITIES) - 1)]


def priority_for(
    *,
    category_priority: str | None,
    text: str,
    grade: str | None,
    sentiment: float | None,
    keywords: Mapping[str, str] = DEFAULT_KEYWORDS,
    priority_handling: bool | None = None,
) -> PriorityDecision:
    """A new ticket's priority: the category's (``normal`` if none), raised to the level of the
    strongest keyword found in ``text``, then one step for a grade with priority handling
    (``priority_handling``: the measures by grade, R-G2; not given, core customers, R-E8) and one
    step for a strongly negative tone (sentiment <= -0.5); never above ``urgent``, never lowered.
    Only the factors that changed something are given as reasons, after the starting point."""
    records: list[dict[str, Any]] = []

    def note(template: str, **params: Any) -> None:
        records.append({"template": template, "params": params})

    if category_priority is not None and category_priority not in PRIORITIES:
        raise ValueError(f"unknown category priority {category_priority!r}")
    priority = category_priority or "normal"
    if category_priority is None:
        note(N_("No priority set by the category: starting from {priority}."), priority=priority)
    else:
        note(N_("The category sets priority {priority}."), priority=priority)

    folded = text.casefold()
    found = [
        (PRIORITIES.index(level), word)
        for word, level in keywords.items()
        if level in PRIORITIES and _keyword_pattern(word).search(folded)
    ]
    if found:
        strongest = max(rank for rank, _ in found)
        if strongest > PRIORITIES.index(priority):
            priority = PRIORITIES[strongest]
            words = [word for rank, word in found if rank == strongest]
            note(
                N_("The message mentions {keywords}: raised to {priority}."),
                keywords=", ".join(f"“{word}”" for word in words),
                priority=priority,
            )

    if priority_handling is None:  # no measures policy given: R-G2's default, core only
        priority_handling = grade == "core"
    if priority_handling and priority != "urgent":
        priority = _raise(priority)
        if grade == "core":
            note(N_("Core customer: raised one step to {priority}."), priority=priority)
        else:
            note(
                N_("Priority handling for {grade} customers: raised one step to {priority}."),
                grade=grade or "",
                priority=priority,
            )

    if sentiment is not None and sentiment <= NEGATIVE_SENTIMENT and priority != "urgent":
        priority = _raise(priority)
        note(
            N_("Strongly negative tone (sentiment {sentiment}): raised one step to {priority}."),
            sentiment=f"{sentiment:.2f}",
            priority=priority,
        )

    return PriorityDecision(
        priority=priority,
        reasons=tuple(r["template"].format(**r["params"]) for r in records),
        reason_records=tuple(records),
    )


# ---------------------------------------------------------------------- holidays


def china_holidays(years: Iterable[int]) -> list[tuple[date, str, bool]]:
    """China's public holidays and make-up working days, ``(date, English name, is_workday)``
    sorted by date.

    ``chinese_calendar`` carries the State Council's official arrangement, make-up working days
    included, but only for the years it ships (it raises ``NotImplementedError`` beyond); for
    other years the ``holidays`` package's rules are used, with the make-up working days it
    knows (``weekend_workdays``; none for years not yet announced). Holiday blocks list their
    weekend days too, which is harmless to a calendar."""
    import chinese_calendar

    rows: list[tuple[date, str, bool]] = []
    for year in sorted(set(years)):
        try:
            chinese_calendar.get_holiday_detail(date(year, 1, 1))
        except NotImplementedError:
            rows.extend(_holidays_package(year))
            continue
        rows.extend(
            (day, str(name), False)
            for day, name in chinese_calendar.holidays.items()
            if day.year == year
        )
        rows.extend(
            (day, str(name), True)
            for day, name in chinese_calendar.workdays.items()
            if day.year == year
        )
    return sorted(rows)


def _holidays_package(year: int) -> list[tuple[date, str, bool]]:
    import holidays

    official = holidays.China(years=year, language="en_US")
    rows = [(day, str(name), False) for day, name in official.items() if day.year == year]
    rows.extend(
        (day, "Make-up working day", True)
        for day in getattr(official, "weekend_workdays", ())
        if day.year == year and day not in official
    )
    return rows


# ---------------------------------------------------------------------- routing

LANGUAGES = ("zh", "en")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def language_of(text: str) -> str:
    """``zh`` when the text holds any Han character, else ``en``: the desk's two languages. A
    Chinese message often carries Latin order numbers and brand names, so one character of
    Chinese decides, not a majority."""
    return "zh" if _HAN.search(text) else "en"


@dataclass(frozen=True)
class RouteRow:
    """One routing rule: the conditions (empty: any) and the team a matching ticket goes to.
    ``language`` also asks for agents who speak it."""

    position: int
    team: str
    channel: str = ""
    category: str = ""
    grade: str = ""
    priority: str = ""
    language: str = ""
    name: str = ""

    def matches(
        self, *, channel: str, category: str, grade: str, priority: str, language: str
    ) -> bool:
        wanted = (
            (self.channel, channel),
            (self.category, category),
            (self.grade, grade),
            (self.priority, priority),
            (self.language, language),
        )
        return all(not rule or rule == value for rule, value in wanted)


def route_for(
    rules: Sequence[RouteRow],
    *,
    channel: str,
    category: str,
    grade: str | None,
    priority: str,
    language: str,
) -> RouteRow | None:
    """The first rule, by position (then the order given), whose every condition holds, or
    ``None`` (the category's own team then takes the ticket). First match, not most specific:
    a manager reads the list top to bottom, as they would a mail filter."""
    for row in sorted(rules, key=lambda row: row.position):
        if row.matches(
            channel=channel,
            category=category,
            grade=grade or "",
            priority=priority,
            language=language,
        ):
            return row
    return None


def on_shift(start: time | None, end: time | None, now: time) -> bool:
    """Whether a local wall time lies in an agent's shift ``[start, end)``; a shift may run
    past midnight (22:00–06:00); no start or no end is no shift set (always routable); a
    start equal to its end is the whole day."""
    if start is None or end is None or start == end:
        return True
    if start < end:
        return start <= now < end
    return now >= start or now < end
