"""Pure rules of the knowledge base: what a valid article is, and how the automatic-reply
threshold is chosen from a labelled set (no database, no Django)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from patron.errors import ValidationFailed

MAX_KEY = 80
MAX_QUESTION = 300
MAX_ANSWER = 4000
MAX_CATEGORY = 50
MAX_ALTERNATIVES = 30
MAX_TAGS = 20
MAX_TAG = 30
LANGUAGES = ("zh", "en")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")

#: Confidence at or above which the best suggestion is sent to the customer without an agent.
#: Chosen on the labelled set (fixtures/faq_eval.json) by ``threshold_suggest``: the lowest
#: threshold whose automatic answers are right at least 90 % of the time (lower end of a 95 %
#: interval) and that answers at most 1 in 10 questions no article answers. docs/knowledge.md.
AUTO_REPLY_THRESHOLD = 0.45
#: Auto-sent answers must be right this often (the lower bound of a 95 % interval) ...
TARGET_PRECISION = 0.90
#: ... and at most this share of questions without an answer may get one anyway: real traffic
#: has more of them than the labelled set, so precision alone would flatter a low threshold.
MAX_UNANSWERABLE_AUTO_RATE = 0.10


def is_sent_automatically(confidence: float, threshold: float) -> bool:
    """Whether the best suggestion goes to the customer without an agent. A threshold above
    1 turns automatic replies off; a confidence of 0 (no match, or a tie) is never sent."""
    return threshold <= 1 and confidence > 0 and confidence >= threshold


#: The fields an article has, and those a partial update may change.
ARTICLE_FIELDS = (
    "key",
    "question",
    "alternatives",
    "answer",
    "language",
    "category",
    "tags",
    "is_published",
)


def _text(value: Any, field: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or "\x00" in text:
        raise ValidationFailed(f"article.{field}: a text is required", details={"field": field})
    if len(text) > limit:
        raise ValidationFailed(
            f"article.{field}: at most {limit} characters", details={"field": field}
        )
    return text


def _slug(value: Any, field: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > limit or not SLUG.match(text):
        raise ValidationFailed(
            f"article.{field}: 1 to {limit} letters, digits, '-' or '_'",
            details={"field": field},
        )
    return text


def _texts(value: Any, field: str, *, most: int, limit: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValidationFailed(f"article.{field}: a list of texts", details={"field": field})
    if len(value) > most:
        raise ValidationFailed(f"article.{field}: at most {most} entries", details={"field": field})
    cleaned = [_text(item, f"{field}[{i}]", limit) for i, item in enumerate(value)]
    return list(dict.fromkeys(cleaned))


def article_clean(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The article's fields as stored (texts stripped, lists without repeats), or
    ``ValidationFailed`` naming the first wrong field (``article.question: …``).

    ``partial``: only the fields given are checked (an update); otherwise question, answer and
    category are required and the others get their defaults. ``key`` may be blank on create
    (the service names the article ``faq-<id>``)."""
    unknown = sorted(set(data) - set(ARTICLE_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"article.{unknown[0]}: not a field of an article", details={"field": unknown[0]}
        )
    if not partial:
        for field in ("question", "answer", "category"):
            if field not in data:
                raise ValidationFailed(f"article.{field}: required", details={"field": field})
    cleaned: dict[str, Any] = {}
    for field, value in data.items():
        if field == "key":
            if value in (None, "") and not partial:
                cleaned["key"] = ""
            else:
                cleaned["key"] = _slug(value, "key", MAX_KEY)
        elif field == "question":
            cleaned[field] = _text(value, field, MAX_QUESTION)
        elif field == "answer":
            cleaned[field] = _text(value, field, MAX_ANSWER)
        elif field == "category":
            cleaned[field] = _slug(value, field, MAX_CATEGORY)
        elif field == "language":
            if value not in LANGUAGES:
                raise ValidationFailed(
                    f"article.language: one of {', '.join(LANGUAGES)}",
                    details={"field": "language"},
                )
            cleaned[field] = value
        elif field == "alternatives":
            cleaned[field] = _texts(value, field, most=MAX_ALTERNATIVES, limit=MAX_QUESTION)
        elif field == "tags":
            cleaned[field] = _texts(value, field, most=MAX_TAGS, limit=MAX_TAG)
        elif field == "is_published":
            if not isinstance(value, bool):
                raise ValidationFailed(
                    "article.is_published: true or false", details={"field": "is_published"}
                )
            cleaned[field] = value
    if not partial:
        cleaned.setdefault("key", "")
        cleaned.setdefault("language", "zh")
        cleaned.setdefault("alternatives", [])
        cleaned.setdefault("tags", [])
        cleaned.setdefault("is_published", False)
    return cleaned


# ---------------------------------------------------------------------- the threshold


def wilson_lower_bound(successes: int, trials: int, *, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval for a proportion (95 % with z = 1.96):
    a precision measured on few answers is not trusted as much as on many.
    E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    JASA 22 (1927)."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - spread) / denominator)


@dataclass(frozen=True)
class ThresholdPoint:
    """What automatic replies would do at one threshold, on a labelled set."""

    threshold: float
    auto_answered: int  # questions whose best suggestion reaches the threshold
    auto_correct: int  # ... and is the labelled answer
    auto_share: float  # auto_answered / all questions
    precision: float | None  # auto_correct / auto_answered (None when nothing is sent)
    precision_lower_bound: float  # Wilson 95 % lower bound of precision
    unanswerable_auto_rate: float | None  # questions without an answer that got one anyway


def threshold_points(
    outcomes: Iterable[tuple[float, bool, bool]], thresholds: Iterable[float]
) -> list[ThresholdPoint]:
    """``outcomes``: per question (best suggestion's confidence, whether it is the labelled
    answer, whether the question has no answer at all)."""
    rows = list(outcomes)
    total = len(rows)
    unanswerable = sum(1 for _, _, none in rows if none)
    points = []
    for threshold in thresholds:
        sent = [
            (right, none)
            for conf, right, none in rows
            if conf > 0 and conf >= threshold  # as is_sent_automatically, without the switch
        ]
        right = sum(1 for ok, _ in sent if ok)
        wrongly = sum(1 for _, none in sent if none)
        points.append(
            ThresholdPoint(
                threshold=round(threshold, 4),
                auto_answered=len(sent),
                auto_correct=right,
                auto_share=len(sent) / total if total else 0.0,
                precision=right / len(sent) if sent else None,
                precision_lower_bound=wilson_lower_bound(right, len(sent)),
                unanswerable_auto_rate=wrongly / unanswerable if unanswerable else None,
            )
        )
    return points


def threshold_suggest(
    points: Iterable[ThresholdPoint],
    *,
    target_precision: float = TARGET_PRECISION,
    max_unanswerable_rate: float = MAX_UNANSWERABLE_AUTO_RATE,
) -> float | None:
    """The lowest threshold (most questions answered automatically) whose precision's lower
    bound reaches ``target_precision`` and whose rate of answering unanswerable questions is
    at most ``max_unanswerable_rate`` (not checked without such questions); None if none is."""
    good = [
        p.threshold
        for p in points
        if p.auto_answered
        and p.precision_lower_bound >= target_precision
        and (p.unanswerable_auto_rate is None or p.unanswerable_auto_rate <= max_unanswerable_rate)
    ]
    return min(good) if good else None


#: The thresholds the evaluation reports on: 0.05, 0.10, … 0.95.
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
