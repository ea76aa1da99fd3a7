"""Where a target stands: achieved, on track, at risk, missed, no data — in both directions."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.errors import ValidationFailed
from patron.insight import rules
from patron.insight.rules import SEED_TARGETS, TargetSpec, add_months, target_progress

START, DEADLINE = date(2026, 1, 1), date(2027, 1, 1)


def _csat(goal: float = 0.85) -> TargetSpec:
    return TargetSpec("up", 0.70, goal, None, START, DEADLINE)


def _complaints() -> TargetSpec:  # down is better: −20 % from 5 %
    return TargetSpec("down", 0.05, None, -0.20, START, DEADLINE)


@pytest.mark.parametrize(
    ("spec", "current", "today", "status"),
    [
        (_csat(), 0.86, date(2026, 3, 1), "achieved"),
        (_csat(), 0.85, date(2026, 3, 1), "achieved"),  # the goal itself counts
        (_csat(), 0.78, date(2026, 7, 2), "on_track"),  # half the time, 8/15 of the way
        (_csat(), 0.72, date(2026, 7, 2), "at_risk"),  # half the time, 2/15 of the way
        (_csat(), 0.80, date(2027, 1, 2), "missed"),
        (_csat(), None, date(2026, 7, 2), "no_data"),
        (_complaints(), 0.039, date(2026, 7, 2), "achieved"),
        (_complaints(), 0.0455, date(2026, 7, 2), "on_track"),  # 45 % of the way, 50 % of time
        (_complaints(), 0.055, date(2026, 7, 2), "at_risk"),  # worse than the baseline
    ],
)
def test_target_status(spec: TargetSpec, current: float | None, today: date, status: str) -> None:
    assert target_progress(spec, current, today).status == status


def test_a_relative_goal_is_a_share_of_the_baseline() -> None:
    assert _complaints().goal == pytest.approx(0.04)
    progress = target_progress(_complaints(), 0.045, date(2026, 7, 2))
    assert progress.progress == pytest.approx(0.5)
    assert progress.time_elapsed == pytest.approx(182 / 365)


@given(
    current=st.floats(min_value=0, max_value=1),
    day=st.dates(min_value=date(2025, 6, 1), max_value=date(2027, 6, 1)),
)
def test_meeting_the_goal_is_always_achieved_and_elapsed_stays_in_0_1(
    current: float, day: date
) -> None:
    progress = target_progress(_csat(), current, day)
    assert 0.0 <= progress.time_elapsed <= 1.0
    assert (progress.status == "achieved") == (current >= 0.85)


def test_the_seed_targets_are_the_seed_documents() -> None:
    assert {(t.metric, t.target_value, t.target_change) for t in SEED_TARGETS} == {
        ("csat", 0.85, None),
        ("complaint_rate", None, -0.20),
        ("repurchase_rate", None, 0.15),
        ("first_response_minutes", 30.0, None),
        ("core_share", None, 0.20),
        ("return_rate", None, -0.10),
    }


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 11, 1), 2, date(2027, 1, 1)),
        (date(2026, 3, 1), -3, date(2025, 12, 1)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_a_goal_already_met_at_the_start_is_kept_or_slipped_not_progressed() -> None:
    # given: CSAT was 90 % when "≥ 85 %" was set
    spec = TargetSpec("up", 0.90, 0.85, None, START, DEADLINE)
    # then: falling to 87 % is not progress; falling below 85 % is behind
    kept = target_progress(spec, 0.87, date(2026, 7, 2))
    slipped = target_progress(spec, 0.80, date(2026, 7, 2))
    assert (kept.status, kept.progress) == ("achieved", 1.0)
    assert (slipped.status, slipped.progress) == ("at_risk", 0.0)


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-1", "2026-10-01", "october", "", "2026-00", "0000-01", " 2026-1 "]
)
def test_a_month_must_be_written_yyyy_mm(text: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        rules.month_parse(text)
    assert raised.value.message == f"month: expected a month as YYYY-MM, got {text!r}"


def test_a_month_is_read_as_its_first_day() -> None:
    assert rules.month_parse(" 2026-02 ", "start") == date(2026, 2, 1)
