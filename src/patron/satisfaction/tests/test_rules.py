"""The pure rules: the state machines as tables, the survey calendar, questionnaires and
answers, and the rating statistics (checked against scipy)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats

from patron.satisfaction import rules
from patron.statemachine import TransitionRefused

SURVEY_STATES = ("draft", "scheduled", "open", "closed")
SURVEY_ACTIONS = ("schedule", "unschedule", "open", "end_run", "close")
#: (state, action) -> next state; every pair not listed is refused.
SURVEY_ALLOWED = {
    ("draft", "schedule"): "scheduled",
    ("scheduled", "unschedule"): "draft",
    ("scheduled", "open"): "open",
    ("scheduled", "close"): "closed",
    ("open", "end_run"): "scheduled",
    ("open", "close"): "closed",
}


@pytest.mark.parametrize("state", SURVEY_STATES)
@pytest.mark.parametrize("action", SURVEY_ACTIONS)
def test_the_survey_state_machine(state: str, action: str) -> None:
    expected = SURVEY_ALLOWED.get((state, action))
    if expected is None:
        # when / then
        with pytest.raises(TransitionRefused) as refused:
            rules.survey_next(state, action)
        assert str(refused.value).startswith(
            f"the survey is {state}: cannot {action.replace('_', ' ')}"
        )
    else:
        assert rules.survey_next(state, action) == expected


def test_a_closed_survey_allows_nothing_and_says_so() -> None:
    with pytest.raises(TransitionRefused) as refused:
        rules.survey_next("closed", "open")
    assert str(refused.value) == "the survey is closed: cannot open; allowed: none (final)"


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("new", "review", "reviewed"),
        ("new", "plan", "planned"),
        ("new", "decline", "declined"),
        ("reviewed", "plan", "planned"),
        ("reviewed", "decline", "declined"),
        ("reviewed", "review", None),
        ("planned", "decline", None),
        ("declined", "plan", None),
    ],
)
def test_the_suggestion_state_machine(state: str, action: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(TransitionRefused):
            rules.suggestion_next(state, action)
    else:
        assert rules.suggestion_next(state, action) == expected


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("proposed", "start", "in_progress"),
        ("proposed", "drop", "dropped"),
        ("proposed", "finish", None),
        ("in_progress", "finish", "done"),
        ("in_progress", "drop", "dropped"),
        ("in_progress", "start", None),
        ("done", "drop", None),
        ("dropped", "start", None),
    ],
)
def test_the_plan_state_machine(state: str, action: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(TransitionRefused):
            rules.plan_next(state, action)
    else:
        assert rules.plan_next(state, action) == expected


@pytest.mark.parametrize(
    ("status", "deadline", "overdue"),
    [
        ("proposed", date(2026, 11, 19), True),
        ("in_progress", date(2026, 11, 19), True),
        ("in_progress", date(2026, 11, 20), False),  # due today: not yet late
        ("done", date(2026, 1, 1), False),
        ("dropped", date(2026, 1, 1), False),
    ],
)
def test_a_live_plan_past_its_deadline_day_is_overdue(
    status: str, deadline: date, overdue: bool
) -> None:
    assert rules.is_overdue(status=status, deadline=deadline, today=date(2026, 11, 20)) is overdue


@pytest.mark.parametrize(
    ("score", "plans", "expected"),
    [(1, 0, True), (2, 0, True), (2, 1, False), (3, 0, False), (None, 0, False)],
)
def test_a_low_score_needs_a_follow_up_until_a_plan_answers_it(
    score: int | None, plans: int, expected: bool
) -> None:
    assert rules.needs_follow_up(score, linked_plans=plans) is expected


# ---------------------------------------------------------------------- calendar


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 1), date(2026, 1, 5)),  # 1 January 2026 is a Thursday
        (date(2026, 1, 5), date(2026, 1, 5)),  # on the day itself
        (date(2026, 1, 6), date(2026, 4, 6)),
        (date(2026, 9, 30), date(2026, 10, 5)),
        (date(2026, 10, 6), date(2027, 1, 4)),  # across the year
        (date(2024, 7, 1), date(2024, 7, 1)),  # 1 July 2024 is a Monday
    ],
)
def test_the_quarterly_run_is_the_first_monday_of_a_quarter(day: date, expected: date) -> None:
    assert rules.quarterly_run_on_or_after(day) == expected


def test_a_quarterly_survey_runs_again_the_next_quarter_and_a_one_off_never() -> None:
    assert rules.next_run_on(schedule="quarterly", opens_on=date(2026, 9, 1)) == date(2026, 10, 5)
    assert rules.next_run_on(
        schedule="quarterly", opens_on=date(2026, 9, 1), after=date(2026, 10, 5)
    ) == date(2027, 1, 4)
    assert rules.next_run_on(schedule="once", opens_on=date(2026, 9, 1)) == date(2026, 9, 1)
    assert (
        rules.next_run_on(schedule="once", opens_on=date(2026, 9, 1), after=date(2026, 9, 1))
        is None
    )
    assert rules.run_label(schedule="quarterly", run_on=date(2026, 10, 5)) == "2026 Q4"
    assert rules.run_label(schedule="once", run_on=date(2026, 10, 5)) == "2026-10-05"


# ---------------------------------------------------------------------- questionnaires


def test_questions_are_checked_and_the_mistake_named_by_its_path() -> None:
    # given
    good = {"kind": "rating", "text": " How satisfied are you? "}
    # when
    specs = rules.validate_questions(
        [good, {"kind": "choice", "text": "Channel", "choices": ["App", "App", "Web"]}]
    )
    # then
    assert specs == [
        rules.QuestionSpec("rating", "How satisfied are you?", (), True),
        rules.QuestionSpec("choice", "Channel", ("App", "Web"), True),
    ]
    with pytest.raises(rules.QuestionError) as refused:
        rules.validate_questions([good, {"kind": "choice", "text": "Channel", "choices": ["App"]}])
    assert str(refused.value) == "questions[1].choices: a choice question needs two options or more"
    with pytest.raises(rules.QuestionError) as blank:
        rules.validate_questions([{"kind": "text", "text": "  "}])
    assert str(blank.value) == "questions[0].text: a question needs its text"
    with pytest.raises(rules.QuestionError) as empty:
        rules.validate_questions([])
    assert str(empty.value) == "questions: a survey needs at least one question"


QUESTIONS = [
    rules.QuestionView(1, "rating", (), True),
    rules.QuestionView(2, "choice", ("App", "Web"), False),
    rules.QuestionView(3, "text", (), False),
]


def test_answers_are_cleaned_per_question() -> None:
    # when
    answers = rules.clean_answers(QUESTIONS, {"q1": "4", "q2": "Web", "q3": " faster delivery "})
    # then
    assert answers == [
        rules.CleanAnswer(1, rating=4),
        rules.CleanAnswer(2, choice="Web"),
        rules.CleanAnswer(3, text="faster delivery"),
    ]
    assert rules.clean_answers(QUESTIONS, {"q1": "5"}) == [rules.CleanAnswer(1, rating=5)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "q1: this question needs an answer"),
        ({"q1": "6"}, "q1: a rating is a whole number 1–5, got 6"),
        ({"q1": "good"}, "q1: a rating is a whole number 1–5"),
        ({"q1": "3", "q2": "Phone"}, "q2: not one of the options: 'Phone'"),
    ],
)
def test_a_bad_answer_is_refused_naming_the_question(raw: dict[str, str], message: str) -> None:
    with pytest.raises(rules.QuestionError) as refused:
        rules.clean_answers(QUESTIONS, raw)
    assert str(refused.value) == message


# ---------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    "distribution",
    [
        {1: 2, 2: 3, 3: 10, 4: 25, 5: 40},
        {4: 1, 5: 1},
        {1: 1, 5: 1, 3: 7},
        {2: 500, 3: 1},
    ],
)
def test_the_mean_and_its_95_percent_interval_match_scipy(distribution: dict[int, int]) -> None:
    # given
    values = np.repeat(list(distribution), list(distribution.values())).astype(float)
    expected_low, expected_high = stats.t.interval(
        0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values)
    )
    # when
    found = rules.rating_stats(distribution)
    # then
    assert found.count == len(values)
    assert found.mean == pytest.approx(values.mean(), abs=1e-12)
    assert found.low == pytest.approx(expected_low, abs=1e-12)
    assert found.high == pytest.approx(expected_high, abs=1e-12)
    assert found.distribution == {v: distribution.get(v, 0) for v in (1, 2, 3, 4, 5)}


def test_a_textbook_interval() -> None:
    # given: ratings 3, 4, 5 (mean 4, s = 1, n = 3): t(0.975, 2) = 4.302653 (tables)
    found = rules.rating_stats({3: 1, 4: 1, 5: 1})
    # then
    half = 4.302653 / 3**0.5
    assert (found.low, found.high) == (
        pytest.approx(4 - half, abs=1e-6),
        pytest.approx(4 + half, abs=1e-6),
    )


def test_one_answer_has_a_mean_but_no_interval_and_none_has_neither() -> None:
    assert rules.rating_stats({5: 1}) == rules.RatingStats(
        1, {1: 0, 2: 0, 3: 0, 4: 0, 5: 1}, 5.0, None, None
    )
    assert rules.rating_stats({}).mean is None
