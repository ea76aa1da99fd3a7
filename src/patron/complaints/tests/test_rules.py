"""The complaint workflow's pure rules: every (stage, action) pair, overdue steps, and the
durations read from the events. No database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from patron.complaints import rules
from patron.complaints.rules import Action, Stage
from patron.statemachine import TransitionRefused


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


#: Every allowed step: (stage, action) -> the stage it leads to. Everything else is refused.
ALLOWED: dict[tuple[str, str], str] = {
    (Stage.RECORDED, Action.ASSIGN): Stage.INVESTIGATING,
    (Stage.RECORDED, Action.WITHDRAW): Stage.CLOSED,
    (Stage.INVESTIGATING, Action.ASSIGN): Stage.INVESTIGATING,
    (Stage.INVESTIGATING, Action.PROPOSE): Stage.RESOLUTION_PROPOSED,
    (Stage.INVESTIGATING, Action.WITHDRAW): Stage.CLOSED,
    (Stage.RESOLUTION_PROPOSED, Action.ACCEPT): Stage.ACCEPTED,
    (Stage.RESOLUTION_PROPOSED, Action.REJECT): Stage.INVESTIGATING,
    (Stage.RESOLUTION_PROPOSED, Action.WITHDRAW): Stage.CLOSED,
    (Stage.ACCEPTED, Action.SCHEDULE_FOLLOW_UP): Stage.FOLLOW_UP_SCHEDULED,
    (Stage.FOLLOW_UP_SCHEDULED, Action.SCHEDULE_FOLLOW_UP): Stage.FOLLOW_UP_SCHEDULED,
    (Stage.FOLLOW_UP_SCHEDULED, Action.COMPLETE_FOLLOW_UP): Stage.FOLLOW_UP_DONE,
    (Stage.FOLLOW_UP_DONE, Action.CLOSE): Stage.CLOSED,
}
PAIRS = [(stage, action) for stage in rules.STAGES for action in rules.ACTIONS]


@pytest.mark.parametrize(("stage", "action"), PAIRS)
def test_every_stage_and_action_pair_is_allowed_or_refused_as_the_table_says(
    stage: str, action: str
) -> None:
    # when / then
    if (stage, action) in ALLOWED:
        assert rules.complaint_next(stage, action) == ALLOWED[(stage, action)]
    else:
        with pytest.raises(TransitionRefused) as refused:
            rules.complaint_next(stage, action)
        assert str(refused.value).startswith(
            f"the complaint is {stage.replace('_', ' ')}: cannot {action.replace('_', ' ')}; "
        )


def test_the_table_covers_every_stage_and_closed_is_final() -> None:
    # then
    assert set(rules.TRANSITIONS) == set(rules.STAGES)
    assert rules.allowed_actions(Stage.CLOSED) == ()
    assert len(PAIRS) == 7 * 8
    assert len(ALLOWED) == sum(len(steps) for steps in rules.TRANSITIONS.values())


def test_a_refusal_names_what_is_allowed() -> None:
    # when
    with pytest.raises(TransitionRefused) as refused:
        rules.complaint_next(Stage.ACCEPTED, Action.CLOSE)
    # then
    assert str(refused.value) == (
        "the complaint is accepted: cannot close; allowed: schedule_follow_up"
    )


def test_a_rejection_leads_back_to_investigating_and_round_trips_are_possible() -> None:
    # given
    stage: str = Stage.RECORDED
    # when
    for action in (Action.ASSIGN, Action.PROPOSE, Action.REJECT, Action.PROPOSE, Action.ACCEPT):
        stage = rules.complaint_next(stage, action)
    # then
    assert stage == Stage.ACCEPTED


# ---------------------------------------------------------------------- time


def test_each_stage_is_due_after_its_target_and_the_visit_after_its_time_and_grace() -> None:
    # given
    entered = at("2026-11-20 08:00")
    visit = at("2026-11-25 10:00")
    # when / then
    assert rules.stage_due_at(Stage.RECORDED, entered_at=entered) == at("2026-11-20 12:00")
    assert rules.stage_due_at(Stage.INVESTIGATING, entered_at=entered) == at("2026-11-22 08:00")
    assert rules.stage_due_at(Stage.RESOLUTION_PROPOSED, entered_at=entered) == at(
        "2026-11-23 08:00"
    )
    assert rules.stage_due_at(
        Stage.FOLLOW_UP_SCHEDULED, entered_at=entered, follow_up_at=visit
    ) == at("2026-11-26 10:00")
    assert rules.stage_due_at(Stage.CLOSED, entered_at=entered) is None
    assert rules.is_overdue(Stage.RECORDED, entered_at=entered, now=at("2026-11-20 12:01"))
    assert not rules.is_overdue(Stage.RECORDED, entered_at=entered, now=at("2026-11-20 12:00"))


def test_durations_per_stage_with_a_rejected_round_and_an_open_last_stage() -> None:
    # given: recorded 08:00, assigned 10:00, reassigned 11:00 (same stage), proposed next day
    # 10:00, rejected 16:00, proposed again day 3 10:00; now day 3 12:00
    events = [
        rules.StageEvent(at("2026-11-20 08:00"), Stage.RECORDED, 1),
        rules.StageEvent(at("2026-11-20 10:00"), Stage.INVESTIGATING, 1),
        rules.StageEvent(at("2026-11-20 11:00"), Stage.INVESTIGATING, 1),
        rules.StageEvent(at("2026-11-21 10:00"), Stage.RESOLUTION_PROPOSED, 1),
        rules.StageEvent(at("2026-11-21 16:00"), Stage.INVESTIGATING, 1),
        rules.StageEvent(at("2026-11-22 10:00"), Stage.RESOLUTION_PROPOSED, 2),
    ]
    now = at("2026-11-22 12:00")
    # when
    spans = rules.stage_spans(events, now=now)
    totals = rules.seconds_per_stage(spans)
    # then
    assert [(s.stage, s.round, s.seconds / 3600, s.left_at) for s in spans] == [
        (Stage.RECORDED, 1, 2.0, at("2026-11-20 10:00")),
        (Stage.INVESTIGATING, 1, 24.0, at("2026-11-21 10:00")),
        (Stage.RESOLUTION_PROPOSED, 1, 6.0, at("2026-11-21 16:00")),
        (Stage.INVESTIGATING, 1, 18.0, at("2026-11-22 10:00")),
        (Stage.RESOLUTION_PROPOSED, 2, 2.0, None),
    ]
    assert {stage: seconds / 3600 for stage, seconds in totals.items()} == {
        Stage.RECORDED: 2.0,
        Stage.INVESTIGATING: 42.0,
        Stage.RESOLUTION_PROPOSED: 8.0,
    }
    assert rules.total_seconds(events, now=now) == 52 * 3600


def test_a_closed_complaint_has_no_running_stage_and_its_total_ends_at_closing() -> None:
    # given
    events = [
        rules.StageEvent(at("2026-11-20 08:00"), Stage.RECORDED),
        rules.StageEvent(at("2026-11-20 09:00"), Stage.CLOSED),
    ]
    # when
    spans = rules.stage_spans(events, now=at("2026-12-01 00:00"))
    # then
    assert [(s.stage, s.seconds) for s in spans] == [(Stage.RECORDED, 3600.0)]
    assert rules.total_seconds(events, now=at("2026-12-01 00:00")) == 3600.0


def test_severity_follows_the_tickets_priority() -> None:
    assert [rules.severity_for_priority(p) for p in ("urgent", "high", "normal", "low", "?")] == [
        "critical",
        "major",
        "minor",
        "minor",
        "minor",
    ]


def test_stage_targets_are_whole_hours_for_every_open_stage_but_the_visit() -> None:
    assert set(rules.STAGE_TARGET_HOURS) | {Stage.FOLLOW_UP_SCHEDULED} == set(rules.OPEN_STAGES)
    assert rules.VISIT_GRACE.total_seconds() == 24 * 3600
