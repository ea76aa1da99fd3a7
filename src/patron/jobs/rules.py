"""When periodic jobs are due: pure cron arithmetic in the merchant's time zone (no database).

Cron expressions have five fields (minute hour day-of-month month day-of-week) and are read in
the merchant's local time, with Debian cron's daylight-saving rules (cronsim): a time that does
not exist on the day the clocks go forward runs when they resume, a time that happens twice runs
once. Every slot returned is an aware datetime in that zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError


def cron_validate(cron: str) -> None:
    """Raise ``ValueError`` naming the expression when it is not a five-field cron expression."""
    if len(cron.split()) != 5:
        raise ValueError(f"cron expression {cron!r} must have five fields")
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
    except CronSimError as exc:
        raise ValueError(f"cron expression {cron!r}: {exc}") from None


def next_slot(*, cron: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first slot strictly after ``after``."""
    return next(CronSim(cron, after.astimezone(zone)))


def due_slots(
    *, cron: str, zone: ZoneInfo, now: datetime, last_slot: datetime | None, limit: int
) -> tuple[list[datetime], int]:
    """Slots that are due at ``now`` and were not enqueued yet, oldest first, and how many older
    ones were left out.

    Due means after ``last_slot`` and at or before ``now``. Without a ``last_slot`` (a job that
    was never scheduled) only the most recent due slot counts: a new install or a new job does not
    replay its history. After an outage at most ``limit`` missed slots are returned, the most
    recent ones; the count of older missed slots is returned with them so that it can be logged.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if last_slot is None:
        limit = 1
    # CronSim walking backwards starts strictly before its start time: start one second after
    # `now` (whole seconds, as cron slots are) so that a slot falling exactly on `now` is due.
    start = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
    recent_first: list[datetime] = []
    for slot in CronSim(cron, start, reverse=True):
        if (last_slot is not None and slot <= last_slot) or len(recent_first) == limit:
            break
        recent_first.append(slot)
    left_out = (
        _count_between(cron, zone, after=last_slot, before=recent_first[-1])
        if last_slot is not None and len(recent_first) == limit
        else 0
    )
    return recent_first[::-1], left_out


def _count_between(cron: str, zone: ZoneInfo, *, after: datetime, before: datetime) -> int:
    count = 0
    for slot in CronSim(cron, after.astimezone(zone)):
        if slot >= before:
            return count
        count += 1
    return count
