"""Pure rules of satisfaction: the state machines of surveys, suggestions and improvement
plans, the survey calendar, what a valid questionnaire and a valid answer are, and the
statistics the results and the KPIs show. Nothing here touches the database;
``patron.satisfaction.services`` and ``selectors`` gather the facts and apply these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from patron.statemachine import next_state

# ---------------------------------------------------------------------- state machines

#: Survey status -> {action: next status}. ``open`` is the daily job's (a run starts);
#: ``end_run`` is a recurring survey's run ending: it waits, scheduled, for the next quarter.
SURVEY_TRANSITIONS: dict[str, dict[str, str]] = {
    "draft": {"schedule": "scheduled"},
    "scheduled": {"unschedule": "draft", "open": "open", "close": "closed"},
    "open": {"end_run": "scheduled", "close": "closed"},
    "closed": {},
}

#: Suggestion status -> {action: next status}. Linking a suggestion to a plan plans it.
SUGGESTION_TRANSITIONS: dict[str, dict[str, str]] = {
    "new": {"review": "reviewed", "plan": "planned", "decline": "declined"},
    "reviewed": {"plan": "planned", "decline": "declined"},
    "planned": {},
    "declined": {},
}

#: Improvement plan status -> {action: next status}.
PLAN_TRANSITIONS: dict[str, dict[str, str]] = {
    "proposed": {"start": "in_progress", "drop": "dropped"},
    "in_progress": {"finish": "done", "drop": "dropped"},
    "done": {},
    "dropped": {},
}

LIVE_PLAN = frozenset({"proposed", "in_progress"})
#: A CSAT score at or below this needs a follow-up (a manager links it to a plan).
LOW_SCORE = 2
RATING_VALUES = (1, 2, 3, 4, 5)


def survey_next(state: str, action: str) -> str:
    return next_state(SURVEY_TRANSITIONS, "the survey", state, action)


def suggestion_next(state: str, action: str) -> str:
    return next_state(SUGGESTION_TRANSITIONS, "the suggestion", state, action)


def plan_next(state: str, action: str) -> str:
    return next_state(PLAN_TRANSITIONS, "the plan", state, action)


def is_low_score(score: int | None) -> bool:
    return score is not None and score <= LOW_SCORE


def needs_follow_up(score: int | None, *, linked_plans: int) -> bool:
    """A low CSAT answer that no improvement plan answers yet."""
    return is_low_score(score) and linked_plans == 0


def is_overdue(*, status: str, deadline: date, today: date) -> bool:
    """A plan still proposed or in progress after its deadline day."""
    return status in LIVE_PLAN and deadline < today


# ---------------------------------------------------------------------- the survey calendar


def first_monday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


def quarter_of(day: date) -> int:
    return (day.month - 1) // 3 + 1


def quarterly_run_on_or_after(day: date) -> date:
    """The first Monday of a quarter (January, April, July, October) on or after ``day``."""
    year, quarter = day.year, quarter_of(day)
    while True:
        candidate = first_monday(year, 3 * quarter - 2)
        if candidate >= day:
            return candidate
        quarter += 1
        if quarter == 5:
            year, quarter = year + 1, 1


def next_run_on(*, schedule: str, opens_on: date, after: date | None = None) -> date | None:
    """The day a survey opens next: a one-off survey on ``opens_on`` (and never again once
    it has run, ``after`` given); a quarterly one on the first Monday of a quarter on or after
    ``opens_on`` and after the last run (``after``)."""
    if schedule == "once":
        return opens_on if after is None else None
    if schedule == "quarterly":
        start = opens_on if after is None else max(opens_on, after + timedelta(days=1))
        return quarterly_run_on_or_after(start)
    raise ValueError(f"schedule: one of once, quarterly; got {schedule!r}")


def run_label(*, schedule: str, run_on: date) -> str:
    """``2026 Q4`` for a quarterly run, the day for a one-off survey."""
    if schedule == "quarterly":
        return f"{run_on.year} Q{quarter_of(run_on)}"
    return run_on.isoformat()


# ---------------------------------------------------------------------- questionnaires


class QuestionError(ValueError):
    """A questionnaire or an answer that is not valid; the message names the field."""


@dataclass(frozen=True)
class QuestionSpec:
    kind: str
    text: str
    choices: tuple[str, ...] = ()
    is_required: bool = True


QUESTION_KINDS = ("rating", "choice", "text")
MAX_QUESTIONS = 30
MAX_CHOICES = 20
MAX_QUESTION_TEXT = 300
MAX_CHOICE_TEXT = 200
MAX_ANSWER_TEXT = 2000


def validate_questions(raw: Sequence[Mapping[str, Any]]) -> list[QuestionSpec]:
    """The questions, checked: at least one, each with a kind and a text; a choice question
    has two or more distinct options; the mistake is named by its path (``questions[1].text``)."""
    if not raw:
        raise QuestionError("questions: a survey needs at least one question")
    if len(raw) > MAX_QUESTIONS:
        raise QuestionError(f"questions: at most {MAX_QUESTIONS}")
    specs = []
    for number, item in enumerate(raw):
        path = f"questions[{number}]"
        kind = str(item.get("kind", "")).strip()
        if kind not in QUESTION_KINDS:
            raise QuestionError(f"{path}.kind: one of {', '.join(QUESTION_KINDS)}; got {kind!r}")
        text = str(item.get("text", "") or "").strip()
        if not text:
            raise QuestionError(f"{path}.text: a question needs its text")
        if len(text) > MAX_QUESTION_TEXT:
            raise QuestionError(f"{path}.text: at most {MAX_QUESTION_TEXT} characters")
        choices: tuple[str, ...] = ()
        if kind == "choice":
            options = [str(c).strip() for c in item.get("choices") or [] if str(c).strip()]
            options = list(dict.fromkeys(options))
            if len(options) < 2:
                raise QuestionError(f"{path}.choices: a choice question needs two options or more")
            if len(options) > MAX_CHOICES:
                raise QuestionError(f"{path}.choices: at most {MAX_CHOICES} options")
            if any(len(option) > MAX_CHOICE_TEXT for option in options):
                raise QuestionError(f"{path}.choices: an option is over {MAX_CHOICE_TEXT} chars")
            choices = tuple(options)
        required = item.get("is_required", True)
        specs.append(QuestionSpec(kind, text, choices, bool(required)))
    return specs


@dataclass(frozen=True)
class QuestionView:
    """What answer validation needs to know about a stored question."""

    id: int
    kind: str
    choices: tuple[str, ...]
    is_required: bool


@dataclass(frozen=True)
class CleanAnswer:
    question_id: int
    rating: int | None = None
    choice: str = ""
    text: str = ""


def clean_answers(questions: Iterable[QuestionView], raw: Mapping[str, Any]) -> list[CleanAnswer]:
    """The answers to store, one per answered question, keyed ``q<id>`` in ``raw``; a
    required question left blank, a rating outside 1–5 or an unknown option is refused naming
    the question (``q12: …``). Unanswered optional questions store nothing."""
    out = []
    for question in questions:
        key = f"q{question.id}"
        value = raw.get(key)
        text = "" if value is None else str(value).strip()
        if not text:
            if question.is_required:
                raise QuestionError(f"{key}: this question needs an answer")
            continue
        if question.kind == "rating":
            try:
                rating = int(text)
            except ValueError:
                raise QuestionError(f"{key}: a rating is a whole number 1–5") from None
            if rating not in RATING_VALUES:
                raise QuestionError(f"{key}: a rating is a whole number 1–5, got {rating}")
            out.append(CleanAnswer(question.id, rating=rating))
        elif question.kind == "choice":
            if text not in question.choices:
                raise QuestionError(f"{key}: not one of the options: {text!r}")
            out.append(CleanAnswer(question.id, choice=text))
        else:
            if len(text) > MAX_ANSWER_TEXT:
                raise QuestionError(f"{key}: at most {MAX_ANSWER_TEXT} characters")
            if "\x00" in text:
                raise QuestionError(f"{key}: must not contain NUL characters")
            out.append(CleanAnswer(question.id, text=text))
    return out


# ---------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class RatingStats:
    """Ratings 1–5: how many, their distribution, the mean with its 95 % confidence interval
    (Student's t; ``None`` below two answers or with no spread at all gives a zero-width one)."""

    count: int
    distribution: dict[int, int]
    mean: float | None
    low: float | None
    high: float | None


def rating_stats(distribution: Mapping[int, int], *, confidence: float = 0.95) -> RatingStats:
    """Mean and the t-interval ``mean ± t(1-α/2, n-1) · s / √n`` from counts per rating.

    Student, "The probable error of a mean", Biometrika 6 (1908); the interval scipy computes as
    ``scipy.stats.t.interval(confidence, n - 1, loc=mean, scale=sem)``.
    """
    from scipy.stats import t as student_t

    counts = {value: int(distribution.get(value, 0)) for value in RATING_VALUES}
    n = sum(counts.values())
    if n == 0:
        return RatingStats(0, counts, None, None, None)
    mean = sum(value * count for value, count in counts.items()) / n
    if n < 2:
        return RatingStats(n, counts, mean, None, None)
    variance = sum(count * (value - mean) ** 2 for value, count in counts.items()) / (n - 1)
    sem = math.sqrt(variance / n)
    half = float(student_t.ppf(1 - (1 - confidence) / 2, n - 1)) * sem
    return RatingStats(n, counts, mean, mean - half, mean + half)


def share(part: int, whole: int) -> float | None:
    """``part / whole``, or ``None`` when there is nothing to divide (not 0: "no data")."""
    return part / whole if whole else None


def middle_mean(values: Sequence[float]) -> float | None:
    """The median from the one or two middle values a window query returns."""
    return sum(values) / len(values) if values else None
