"""Cron slots in the merchant's time zone: pure arithmetic, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from patron.jobs.rules import cron_validate, due_slots, next_slot

from .conftest import utc

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHTLY = "0 2 * * *"
QUARTERLY = "0 3 1 1,4,7,10 *"


def test_two_in_the_morning_in_shanghai_is_six_in_the_evening_utc_the_day_before() -> None:
    # given: 10:00 in Shanghai on 20 November, a job never scheduled before
    now = utc("2026-11-20 02:00")
    # when
    slots, left_out = due_slots(cron=NIGHTLY, zone=SHANGHAI, now=now, last_slot=None, limit=24)
    # then: only today's 02:00 (local), which is 18:00 UTC on the 19th
    assert slots == [utc("2026-11-19 18:00")]
    assert slots[0].astimezone(SHANGHAI).isoformat() == "2026-11-20T02:00:00+08:00"
    assert left_out == 0


def test_a_slot_is_not_due_a_second_early_and_is_due_on_the_second() -> None:
    # given
    just_before = datetime(2026, 11, 20, 1, 59, 59, 999999, tzinfo=SHANGHAI)
    on_time = datetime(2026, 11, 20, 2, 0, tzinfo=SHANGHAI)
    # when
    before, _ = due_slots(cron=NIGHTLY, zone=SHANGHAI, now=just_before, last_slot=None, limit=1)
    on, _ = due_slots(cron=NIGHTLY, zone=SHANGHAI, now=on_time, last_slot=None, limit=1)
    # then
    assert before == [utc("2026-11-18 18:00")]
    assert on == [utc("2026-11-19 18:00")]


def test_the_first_run_enqueues_only_the_latest_slot_however_old_the_schedule() -> None:
    # given: a job that has existed for years, never scheduled
    now = utc("2026-11-20 02:00")
    # when
    slots, left_out = due_slots(cron=NIGHTLY, zone=SHANGHAI, now=now, last_slot=None, limit=24)
    # then
    assert (len(slots), left_out) == (1, 0)


def test_slots_missed_since_the_last_one_are_all_due_oldest_first() -> None:
    # given: the last slot was the 17th at 02:00 local; it is now 10:00 on the 20th
    last = datetime(2026, 11, 17, 2, 0, tzinfo=SHANGHAI)
    # when
    slots, left_out = due_slots(
        cron=NIGHTLY, zone=SHANGHAI, now=utc("2026-11-20 02:00"), last_slot=last, limit=24
    )
    # then
    assert slots == [utc("2026-11-17 18:00"), utc("2026-11-18 18:00"), utc("2026-11-19 18:00")]
    assert left_out == 0


def test_after_a_long_outage_only_the_latest_slots_up_to_the_limit_are_due() -> None:
    # given: nothing was scheduled since 1 November
    last = datetime(2026, 11, 1, 2, 0, tzinfo=SHANGHAI)
    # when
    slots, left_out = due_slots(
        cron=NIGHTLY, zone=SHANGHAI, now=utc("2026-11-20 02:00"), last_slot=last, limit=3
    )
    # then: the 18th, 19th and 20th; the 2nd to the 17th (16 slots) are left out
    assert slots == [utc("2026-11-17 18:00"), utc("2026-11-18 18:00"), utc("2026-11-19 18:00")]
    assert left_out == 16


def test_nothing_is_due_when_the_last_slot_is_the_latest() -> None:
    # given
    last = utc("2026-11-19 18:00")
    # when
    slots, left_out = due_slots(
        cron=NIGHTLY, zone=SHANGHAI, now=utc("2026-11-20 02:00"), last_slot=last, limit=24
    )
    # then
    assert (slots, left_out) == ([], 0)


def test_the_quarterly_regrade_falls_on_the_first_of_january_april_july_and_october() -> None:
    # given
    now = utc("2026-11-20 02:00")
    # when
    latest, _ = due_slots(cron=QUARTERLY, zone=SHANGHAI, now=now, last_slot=None, limit=1)
    following = next_slot(cron=QUARTERLY, zone=SHANGHAI, after=now)
    # then
    assert latest == [utc("2026-09-30 19:00")]
    assert following.isoformat() == "2027-01-01T03:00:00+08:00"
    assert following == datetime(2026, 12, 31, 19, 0, tzinfo=UTC)


def test_a_time_skipped_by_daylight_saving_runs_when_the_clocks_resume() -> None:
    # given: New York skips 02:00-03:00 on 8 March 2026
    new_york = ZoneInfo("America/New_York")
    # when
    slot = next_slot(
        cron="30 2 * * *", zone=new_york, after=datetime(2026, 3, 7, 12, 0, tzinfo=new_york)
    )
    # then: Debian cron's rule, 03:00 local (07:00 UTC)
    assert slot.isoformat() == "2026-03-08T03:00:00-04:00"


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 2 * *", "cron expression '0 2 * *' must have five fields"),
        ("0 0 2 * * *", "cron expression '0 0 2 * * *' must have five fields"),
        ("0 25 * * *", "cron expression '0 25 * * *': Bad hour"),
    ],
)
def test_a_malformed_cron_expression_is_refused_by_name(cron: str, message: str) -> None:
    # when
    with pytest.raises(ValueError) as refused:
        cron_validate(cron)
    # then
    assert str(refused.value) == message
