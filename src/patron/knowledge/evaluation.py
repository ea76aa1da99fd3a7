"""Measuring FAQ retrieval on labelled questions: how often the right article comes first or
in the top three, and what automatic replies would do at the threshold in force.

A labelled pair is a customer's question and the key of the article that answers it, or None
when no article does. Figures (docs/knowledge.md):

* over the questions that have an answer: **hit@1** (the right article first), **hit@3** (in
  the first three), **MRR** (mean of 1/rank of the right article within the first three, 0
  when it is not there);
* at the threshold: **auto_share** (questions of all that would get an automatic reply),
  **auto_precision** (automatic replies that are the labelled answer; one sent to a question
  without an answer is wrong), **unanswerable_auto_rate** (questions without an answer that
  would get one anyway);
* ``curve``: the same at thresholds 0.05 … 0.95, and ``suggested_threshold``, the lowest one
  whose precision's 95 % lower bound reaches 90 % and that answers at most 10 % of the
  unanswerable questions (``rules.threshold_suggest``).

A label naming an article that is not in the index (deleted, unpublished, never seeded) counts
as a question without an answer: automatically answering it would be wrong now. Such labels are
listed in ``unknown_labels`` so that a page can say "load the FAQ first".

``evaluate`` is pure given ``search`` (text → suggestions, best first).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from patron.knowledge import rules
from patron.knowledge.retrieval import Suggestion

EVAL_FILE = Path(__file__).parent / "fixtures" / "faq_eval.json"
K = 3


@dataclass(frozen=True)
class EvalPair:
    text: str
    expected: str | None  # the answering article's key; None: no article answers it


@dataclass(frozen=True)
class EvalCase:
    """One question's outcome (the report keeps the ones a person should look at)."""

    text: str
    expected: str | None
    ranked: tuple[str, ...]  # keys of the suggestions, best first
    confidence: float  # of the best suggestion; 0 without one
    is_auto_answered: bool


@dataclass(frozen=True)
class EvalReport:
    pairs: int
    answerable: int
    unanswerable: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    threshold: float
    auto_answered: int
    auto_share: float
    auto_precision: float | None
    unanswerable_auto_rate: float | None
    suggested_threshold: float | None
    unknown_labels: tuple[str, ...] = ()
    curve: tuple[rules.ThresholdPoint, ...] = ()
    misses: tuple[EvalCase, ...] = field(default=())  # right article not first
    wrong_auto: tuple[EvalCase, ...] = field(default=())  # auto-answered wrongly

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_eval_pairs(path: Path = EVAL_FILE) -> list[EvalPair]:
    """The labelled questions shipped with the app (``fixtures/faq_eval.json``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [EvalPair(text=row["text"], expected=row["expected"]) for row in data["pairs"]]


def _ratio(part: float, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def evaluate(
    pairs: Iterable[EvalPair],
    *,
    search: Callable[[str], Sequence[Suggestion]],
    threshold: float,
    known_keys: Collection[str] | None = None,
) -> EvalReport:
    """Run ``search`` on every question and measure (module docstring). ``known_keys``: the
    keys of the articles searched; a label outside them counts as no answer (None: trust
    every label)."""
    cases: list[EvalCase] = []
    unknown: set[str] = set()
    outcomes: list[tuple[float, bool, bool]] = []
    hits_1 = hits_3 = 0
    reciprocal = 0.0
    answerable = 0
    for pair in pairs:
        expected = pair.expected
        if expected is not None and known_keys is not None and expected not in known_keys:
            unknown.add(expected)
            expected = None
        suggestions = list(search(pair.text))[:K]
        ranked = tuple(s.key for s in suggestions)
        best = suggestions[0].confidence if suggestions else 0.0
        is_right = bool(ranked) and expected is not None and ranked[0] == expected
        if expected is not None:
            answerable += 1
            hits_1 += is_right
            if expected in ranked:
                hits_3 += 1
                reciprocal += 1.0 / (ranked.index(expected) + 1)
        outcomes.append((best, is_right, expected is None))
        cases.append(
            EvalCase(
                text=pair.text,
                expected=expected,
                ranked=ranked,
                confidence=best,
                is_auto_answered=best > 0 and best >= threshold,  # as rules.threshold_points
            )
        )
    at_threshold = rules.threshold_points(outcomes, [threshold])[0]
    curve = rules.threshold_points(outcomes, rules.THRESHOLD_GRID)
    return EvalReport(
        pairs=len(cases),
        answerable=answerable,
        unanswerable=len(cases) - answerable,
        hit_at_1=_ratio(hits_1, answerable),
        hit_at_3=_ratio(hits_3, answerable),
        mrr=_ratio(reciprocal, answerable),
        threshold=threshold,
        auto_answered=at_threshold.auto_answered,
        auto_share=round(at_threshold.auto_share, 4),
        auto_precision=None if at_threshold.precision is None else round(at_threshold.precision, 4),
        unanswerable_auto_rate=None
        if at_threshold.unanswerable_auto_rate is None
        else round(at_threshold.unanswerable_auto_rate, 4),
        suggested_threshold=rules.threshold_suggest(curve),
        unknown_labels=tuple(sorted(unknown)),
        curve=tuple(curve),
        misses=tuple(
            c for c in cases if c.expected is not None and (c.ranked[:1] != (c.expected,))
        ),
        wrong_auto=tuple(c for c in cases if c.is_auto_answered and c.ranked[:1] != (c.expected,)),
    )
