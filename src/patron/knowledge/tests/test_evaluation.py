"""Evaluation: the figures on a tiny hand-made set (exact), the threshold rule, and the shipped
labelled set (size, labels, and a floor under its hit@3)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from patron.knowledge import rules
from patron.knowledge.evaluation import EVAL_FILE, EvalPair, evaluate, load_eval_pairs
from patron.knowledge.retrieval import Suggestion
from patron.knowledge.services import SEED_FILE
from patron.knowledge.tests.test_retrieval import shop_index

#: Measured with `patron knowledge evaluate` on the shipped set (docs/knowledge.md): hit@1
#: 0.896, hit@3 0.984, MRR 0.939; at 0.45, 56 % answered automatically, 98.7 % of them right.
#: The floors sit a few points below, so that a change that makes retrieval worse fails here.
HIT_AT_3_FLOOR = 0.95
HIT_AT_1_FLOOR = 0.85
AUTO_PRECISION_FLOOR = 0.92


def _s(key: str, confidence: float = 0.0) -> Suggestion:
    return Suggestion(
        article_id=1, key=key, question="", answer="", language="zh", score=1.0,
        confidence=confidence,
    )  # fmt: skip


#: question -> what the (fake) search returns, best first
RANKINGS: dict[str, list[Suggestion]] = {
    "q1": [_s("a", 0.9), _s("b"), _s("c")],  # right, first, sent automatically
    "q2": [_s("b", 0.3), _s("a"), _s("c")],  # right second, not sent
    "q3": [_s("c", 0.7), _s("b"), _s("a")],  # right third; wrong one sent automatically
    "q4": [_s("b", 0.2), _s("c")],  # right one missing
    "q5": [_s("a", 0.8)],  # no right answer, yet one is sent
    "q6": [],  # no right answer, nothing suggested
}
PAIRS = [
    EvalPair("q1", "a"),
    EvalPair("q2", "a"),
    EvalPair("q3", "a"),
    EvalPair("q4", "a"),
    EvalPair("q5", None),
    EvalPair("q6", None),
]


def _search(text: str) -> Sequence[Suggestion]:
    return RANKINGS[text]


def test_figures_on_a_hand_made_set() -> None:
    # when
    report = evaluate(PAIRS, search=_search, threshold=0.5)

    # then
    assert (report.pairs, report.answerable, report.unanswerable) == (6, 4, 2)
    assert report.hit_at_1 == 0.25  # q1
    assert report.hit_at_3 == 0.75  # q1, q2, q3
    assert report.mrr == pytest.approx((1 + 1 / 2 + 1 / 3 + 0) / 4, abs=1e-4)
    assert report.auto_answered == 3  # q1, q3, q5
    assert report.auto_share == 0.5
    assert report.auto_precision == pytest.approx(1 / 3, abs=1e-4)
    assert report.unanswerable_auto_rate == 0.5  # q5 of q5, q6
    assert [c.text for c in report.misses] == ["q2", "q3", "q4"]
    assert [c.text for c in report.wrong_auto] == ["q3", "q5"]


def test_the_threshold_decides_what_is_sent() -> None:
    # when
    strict = evaluate(PAIRS, search=_search, threshold=0.85)
    never = evaluate(PAIRS, search=_search, threshold=1.5)

    # then
    assert (strict.auto_answered, strict.auto_precision, strict.unanswerable_auto_rate) == (
        1,
        1.0,
        0.0,
    )
    assert (never.auto_answered, never.auto_precision, never.auto_share) == (0, None, 0.0)


def test_a_label_for_an_article_not_in_the_index_counts_as_unanswerable() -> None:
    # when
    report = evaluate(PAIRS, search=_search, threshold=0.5, known_keys={"b", "c"})

    # then
    assert report.unknown_labels == ("a",)
    assert (report.answerable, report.unanswerable) == (0, 6)
    assert report.auto_precision == 0.0


def test_wilson_lower_bound() -> None:
    # 9 of 10: the 95 % Wilson interval is [0.596, 0.982]
    assert rules.wilson_lower_bound(9, 10) == pytest.approx(0.5958, abs=1e-4)
    assert rules.wilson_lower_bound(0, 0) == 0.0
    assert rules.wilson_lower_bound(100, 100) == pytest.approx(0.9630, abs=1e-4)


def test_the_suggested_threshold_is_the_lowest_that_is_right_often_enough() -> None:
    # given: 60 questions; confidence 0.9: right (40); 0.6: right 8 of 10, the other two
    # have no answer at all; 0.3: right half the time
    outcomes = (
        [(0.9, True, False)] * 40
        + [(0.6, True, False)] * 8
        + [(0.6, False, True)] * 2
        + [(0.3, True, False)] * 5
        + [(0.3, False, False)] * 5
    )

    # when
    points = rules.threshold_points(outcomes, [0.2, 0.5, 0.8])

    # then
    assert [(p.auto_answered, p.auto_correct) for p in points] == [(60, 53), (50, 48), (40, 40)]
    assert [p.unanswerable_auto_rate for p in points] == [1.0, 1.0, 0.0]
    assert points[1].precision_lower_bound == pytest.approx(0.8654, abs=1e-4)  # 48/50
    assert points[2].precision_lower_bound == pytest.approx(0.9124, abs=1e-4)  # 40/40
    assert rules.threshold_suggest(points) == 0.8
    # 0.5 is right often enough for 85 %, but answers both unanswerable questions
    assert rules.threshold_suggest(points, target_precision=0.85) == 0.8
    assert rules.threshold_suggest(points, target_precision=0.85, max_unanswerable_rate=1) == 0.5
    assert rules.threshold_suggest(points[:1]) is None


def test_the_shipped_labelled_set_points_at_existing_articles() -> None:
    # given
    pairs = load_eval_pairs()
    keys = {row["key"] for row in json.loads(SEED_FILE.read_text(encoding="utf-8"))["articles"]}
    answerable = [p for p in pairs if p.expected is not None]

    # then
    assert len(answerable) >= 100
    assert sum(p.expected is None for p in pairs) >= 15
    assert {p.expected for p in answerable} <= keys
    assert keys <= {p.expected for p in answerable}  # every article is asked about
    assert len({p.text for p in pairs}) == len(pairs)
    assert EVAL_FILE.name == "faq_eval.json"


def test_retrieval_on_the_shipped_set_stays_above_its_floor() -> None:
    # given
    shop = shop_index()

    # when
    report = evaluate(
        load_eval_pairs(),
        search=lambda text: shop.search(text, k=3),
        threshold=rules.AUTO_REPLY_THRESHOLD,
        known_keys={a.key for a in shop.articles},
    )

    # then
    assert report.unknown_labels == ()
    assert report.hit_at_3 >= HIT_AT_3_FLOOR, report.misses
    assert report.hit_at_1 >= HIT_AT_1_FLOOR, report.misses
    assert report.auto_precision is not None
    assert report.auto_precision >= AUTO_PRECISION_FLOOR, report.wrong_auto
    # the default threshold is what the rule suggests on the shipped set
    assert report.suggested_threshold == rules.AUTO_REPLY_THRESHOLD
