"""Retrieval: tokens, the index over given articles (no database), and ``suggest`` over the
published articles (rebuilt after an edit)."""

from __future__ import annotations

import functools
import json

import pytest

from patron.account.roles import Role
from patron.conftest import make_user
from patron.knowledge import retrieval, services
from patron.knowledge.retrieval import ArticleText, FaqIndex, confidence, terms, tokenize
from patron.knowledge.services import SEED_FILE
from patron.knowledge.tests.conftest import make_article


@functools.cache
def shop_index() -> FaqIndex:
    """The shop's FAQ (the seed file) as an index, without a database; built once."""
    rows = json.loads(SEED_FILE.read_text(encoding="utf-8"))["articles"]
    return FaqIndex(
        ArticleText(
            id=i,
            key=row["key"],
            question=row["question"],
            answer=row["answer"],
            language=row["language"],
            alternatives=tuple(row["alternatives"]),
        )
        for i, row in enumerate(rows, start=1)
    )


def test_tokens_drop_punctuation_and_stop_words_and_map_synonyms() -> None:
    # "优惠卷" (a common slip) is searched as "优惠券"; jieba's search mode adds "优惠"
    assert tokenize("请问，优惠卷为啥用不了？？") == ["优惠", "优惠券", "用", "不了"]
    assert tokenize("How do I cancel my Orders?") == ["cancel", "order"]
    assert tokenize("ＦＡＰＩＡＯ") == ["invoice"]  # full-width, upper case, mapped
    assert tokenize("   ") == [] and tokenize("？！…") == [] and tokenize("你好") == []


def test_terms_add_the_characters_of_chinese_words() -> None:
    assert terms("寄到香港") == ["寄", "到", "港澳台", "#寄", "#到", "#港", "#澳", "#台"]


@pytest.mark.parametrize(
    ("question", "key"),
    [
        ("钱什么时候能退回到我卡上", "refund-time"),
        ("优惠卷为啥用不了", "coupon-use"),
        ("七天无理由怎么弄啊", "return-7day"),
        ("能开专票不", "invoice-special-vat"),
        ("空调安装要另外收钱吗", "installation"),
    ],
)
def test_a_chinese_paraphrase_finds_its_article(question: str, key: str) -> None:
    assert shop_index().search(question)[0].key == key


def test_english_questions_find_english_articles() -> None:
    # when
    found = shop_index().search("when do I get my refund?", k=3)
    english_only = shop_index().search("how can I pay", language="en")

    # then
    assert found[0].key == "en-refund"
    assert english_only[0].key == "en-payment"
    assert {s.language for s in english_only} == {"en"}


def test_blank_or_meaningless_text_suggests_nothing() -> None:
    assert shop_index().search("") == []
    assert shop_index().search("   \n\t") == []
    assert shop_index().search("？？？") == []
    assert shop_index().search("退款", k=0) == []


def test_suggestions_come_best_first_with_confidence_only_for_the_first() -> None:
    # when
    found = shop_index().search("退款什么时候到账", k=3)

    # then
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    assert 0 < found[0].confidence <= 1
    assert [s.confidence for s in found[1:]] == [0.0, 0.0]


def test_confidence_is_the_geometric_mean_of_coverage_and_margin() -> None:
    assert confidence(4.0, 1.0, 1.0) == pytest.approx(0.866, abs=1e-3)  # sqrt(1 × 0.75)
    assert confidence(4.0, 0.0, 0.25) == 0.5  # sqrt(0.25 × 1)
    assert confidence(4.0, 4.0, 1.0) == 0.0  # a tie is a guess
    assert confidence(0.0, 0.0, 1.0) == 0.0
    assert confidence(2.0, 3.0, 1.0) == 0.0  # not the best


def test_an_empty_index_suggests_nothing() -> None:
    assert FaqIndex([]).search("退款") == []


@pytest.mark.django_db
def test_suggest_reads_only_published_articles() -> None:
    # given
    published = make_article()
    make_article(
        question="发票怎么开？", answer="结算页选择发票。", category="invoice", is_published=False
    )

    # when
    refund = retrieval.suggest("退款多久能到")
    invoice = retrieval.suggest("怎么开发票")

    # then
    assert [s.article_id for s in refund] == [published.pk]
    assert invoice == []
    assert retrieval.suggest("  ") == []


@pytest.mark.django_db
def test_the_index_is_rebuilt_after_an_edit() -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    article = make_article(manager)
    before = retrieval.current_index()
    assert retrieval.current_index() is before  # cached while nothing changes
    assert retrieval.suggest("发票怎么开") == []

    # when
    services.article_update(
        user=manager,
        article_id=article.pk,
        changes={"question": "发票怎么开？", "alternatives": [], "answer": "结算页选择发票。"},
    )

    # then
    assert retrieval.current_index() is not before
    assert [s.article_id for s in retrieval.suggest("发票怎么开")] == [article.pk]
    assert retrieval.suggest("退款多久到账") == []


@pytest.mark.django_db
def test_unpublishing_removes_an_article_from_suggestions() -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    article = make_article(manager)
    assert retrieval.suggest("退款多久到账")

    # when
    services.article_unpublish(user=manager, article_id=article.pk)

    # then
    assert retrieval.suggest("退款多久到账") == []
