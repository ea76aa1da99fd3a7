"""Review sentiment from the lexicon: sides, negation, intensity, empty text, English, and the
demo merchant's reviews on the side their rating says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from patron.demo import texts
from patron.intelligence import text
from patron.intelligence.text import sentiment, tokens


def _one(value: str | None) -> float:
    return float(sentiment([value])[0])


@pytest.mark.parametrize(
    "review",
    [
        "非常满意！",
        "好评",
        "物超所值，会回购的。",
        "质量很好，物流很快。",
        "包装很严实，没有破损。",
    ],
)
def test_clearly_positive_reviews_score_above_zero(review: str) -> None:
    assert _one(review) > 0.3


@pytest.mark.parametrize(
    "review",
    [
        "差评！",
        "非常失望，大家别买。",
        "用了一周就坏了。",
        "物流太慢了，比预计晚了好几天。",
        "垃圾店铺，全是骗子！",
    ],
)
def test_clearly_negative_reviews_score_below_zero(review: str) -> None:
    assert _one(review) < -0.3


@pytest.mark.parametrize(
    ("negated", "plain"),
    [("不满意", "满意"), ("不推荐", "推荐"), ("没有异味", "有异味"), ("不新鲜", "新鲜")],
)
def test_a_negator_turns_the_word_after_it(negated: str, plain: str) -> None:
    assert np.sign(_one(negated)) == -np.sign(_one(plain)) != 0


def test_intensifiers_strengthen_and_not_very_is_milder_than_not() -> None:
    assert _one("非常满意") > _one("满意") > _one("有点满意") > 0
    assert _one("不满意") < _one("不太满意") < 0


def test_what_follows_but_weighs_more() -> None:
    # given: the same two halves in both orders
    good_then_bad = _one("面料很舒服，但是洗了一次就起球了。")
    bad_then_good = _one("洗了一次就起球了，但是面料很舒服。")
    # then
    assert good_then_bad < 0 < bad_then_good


def test_empty_missing_and_neutral_texts_score_zero() -> None:
    assert sentiment([None, "", "   ", "第二次购买了", "12345"]).tolist() == [0.0] * 5


def test_basic_english() -> None:
    assert _one("Great product, fast delivery!") > 0.3
    assert _one("Terrible. Arrived broken.") < -0.3
    assert _one("I don't like it") < 0 < _one("I like it")
    assert tokens("Isn't GOOD") == ["is", "not", "good"]


def test_scores_are_floats_in_range_one_per_text() -> None:
    # given
    reviews = ["好评", None, "差评", "好评", "太棒了太棒了太棒了非常满意非常满意推荐推荐"]
    # when
    scores = sentiment(reviews)
    # then
    assert scores.dtype == np.float64 and scores.shape == (5,)
    assert scores[0] == scores[3]
    assert ((scores >= -1) & (scores <= 1)).all()
    assert 0.9 < scores[4] < 1.0


def _demo_reviews(rating: int, *, late: bool) -> list[str]:
    """Every review the demo generator can write for clothes (CAT01) at this rating."""
    good, bad = texts.ASPECTS["CAT01"]
    if rating >= 4:
        middles = list(good)
    elif rating == 3:
        middles = [g.removesuffix("。") + "，但是" + b for g, b in itertools.product(good, bad)]
    else:
        middles = list(bad)
    logistics: tuple[str, ...] = texts.LOGISTICS_LATE if late else ("", *texts.LOGISTICS_GOOD)
    if not late and rating < 4:
        logistics = ("",)
    return [
        "".join(parts)
        for parts in itertools.product(
            texts.REVIEW_OPENINGS[rating], middles, logistics, texts.REVIEW_CLOSINGS[rating]
        )
    ]


@pytest.mark.parametrize("rating", [1, 2, 5])
def test_the_demo_merchants_reviews_score_on_their_ratings_side(rating: int) -> None:
    # given: delivered on time and late
    reviews = _demo_reviews(rating, late=False) + _demo_reviews(rating, late=True)
    # when
    scores = sentiment(reviews)
    # then
    assert (scores > 0).all() if rating == 5 else (scores < 0).all()


def test_four_star_demo_reviews_are_positive_unless_the_parcel_was_late() -> None:
    on_time = sentiment(_demo_reviews(4, late=False))
    late = sentiment(_demo_reviews(4, late=True))
    assert (on_time > 0).all()
    assert late.mean() > 0 > late.min()
    assert sentiment(_demo_reviews(3, late=False)).mean() < on_time.mean()


def test_malicious_demo_reviews_are_mostly_negative() -> None:
    scores = sentiment(list(texts.MALICIOUS_REVIEWS))
    assert (scores < 0).sum() == len(texts.MALICIOUS_REVIEWS) - 1  # "好评返现" bait is not


def test_jieba_loads_once_and_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    # given: a fresh start
    text._tokenizer = None
    # when
    first = _one("非常满意")
    tokenizer = text._jieba()
    second = _one("非常满意")
    # then
    assert first == second
    assert text._jieba() is tokenizer
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")
