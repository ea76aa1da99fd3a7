"""Finding the FAQ articles that answer a customer's question: BM25 over jieba tokens.

How it works (docs/knowledge.md has the figures and how they were measured):

* **Terms.** Text is NFKC-normalised (full-width letters and digits become ASCII), lower-cased
  and cut by jieba's search mode (``lcut_for_search``: a long word also yields its parts, so
  "退货退款" matches "退货" and "退款"); punctuation, spaces and stop words ("的", "吗", "请问",
  "the", "how" …) are dropped; English words lose plural and -ing/-ed endings; a few spellings
  customers use are mapped to the article's word (``SYNONYMS``: "优惠卷" → "优惠券", "邮费" →
  "运费"). Each Chinese character of a word is a term too (``#寄``): jieba cuts the same
  phrase differently in different sentences ("寄到" / "寄" "到"), and typed-by-ear words share
  characters with the right one. Articles and questions go through the same function.
* **Two indexes** (``bm25s``, Lucene's BM25, k1 = 1.5, b = 0.75): one document per phrasing of
  an article's question (the question and each alternative phrasing), one per answer. An
  article's score is its best phrasing's score plus ``ANSWER_WEIGHT`` × its answer's score:
  the phrasings say what a question is about; the answers add words customers use that no
  phrasing has ("顺丰", "营业执照").
* **Confidence** in [0, 1] that a suggestion is the answer: ``sqrt(coverage × margin)``, the
  geometric mean of

  - ``coverage``: the idf-weighted share of the question's terms the article has (in a
    phrasing: fully; only in the answer: half). A question about something the articles never
    mention ("羽绒服是鹅绒还是鸭绒") matches one word at best and covers little;
  - ``margin = (score − best other article's score) / score``: how clearly the article beats
    the others. Two articles matching equally well ("邮费" of an order or of a return) are a
    guess, however good the match.

  Both are ratios, so the confidence does not depend on the size of the knowledge base the
  way raw BM25 scores do. Only the best suggestion can have a margin; the others get 0.
  ``AUTO_REPLY_THRESHOLD`` (``patron.knowledge.services``) was chosen on the labelled set.
* The index of the published articles is built once per process and rebuilt when the
  articles change (``index_version``: their count, latest ``updated_at`` and highest id).
  jieba's dictionary takes about a second to load: it is loaded on first use, once.

Everything but ``index_version``, ``current_index`` and ``suggest`` (which read the articles)
is pure.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Weight of the answer's score next to the best phrasing's (see the module docstring): hit@1
#: on the labelled set was flat from 0.3 to 0.5 (docs/knowledge.md).
ANSWER_WEIGHT = 0.4
#: Weight of an article's word found only in its answer, for coverage.
ANSWER_COVERAGE = 0.5
MAX_TEXT = 2000  # characters of a question looked at; customers' essays add nothing after it

# Domain words jieba's dictionary cuts apart ("花呗" → "花" "呗").
DOMAIN_WORDS = (
    "花呗",
    "优惠券",
    "运费险",
    "无理由",
    "货到付款",
    "先用后付",
    "云闪付",
    "专票",
    "增值税专用发票",
    "电子发票",
    "价保",
    "退差价",
    "积分商城",
    "顺丰",
    "营业执照",
    "企业认证",
    "转人工",
    "人工客服",
    "销户",
    "三包",
    "送修",
    "漏发",
    "少发",
    "发错",
    "补发",
    "到付",
    "保修",
    "过保",
    "尺码",
    "改地址",
)

#: A word customers use -> the word the articles use (applied to questions and articles).
SYNONYMS = {
    "优惠卷": "优惠券",
    "卷": "券",
    "邮费": "运费",
    "快递费": "运费",
    "包邮": "运费",
    "专用发票": "专票",
    "增值税专用发票": "专票",
    "增票": "专票",
    "到付": "货到付款",
    "销户": "注销",
    "过保": "保修期",
    "质保": "保修",
    "价格保护": "价保",
    "保价": "价保",
    "客服电话": "热线",
    "香港": "港澳台",
    "澳门": "港澳台",
    "台湾": "港澳台",
    "fapiao": "invoice",
    "receipt": "invoice",
    "abroad": "international",
    "overseas": "international",
    "usa": "international",
    "money": "refund",
    "human": "agent",
    "person": "agent",
}

_STOP_WORDS_TEXT = """
    的 了 吗 呢 啊 呀 吧 嘛 哦 哈 么 噢 哇 啦 嗯 呐 滴 地 得 着 过 是 在 我 你 您 他 她 它 我们 你们
    他们 咱们 自己 这 那 这个 那个 这款 那款 这样 那样 就 都 也 还 又 和 与 或 及 跟 请问 请 问 问问
    一下 下 怎么 怎么办 怎么样 怎样 怎么弄 如何 什么 啥 为什么 为啥 咋 咋办 哪 哪里 哪儿 多少 几个
    能 能不能 不能 可以 可不可以 会 不会 有 没有 没 一 个 给 让 把 被 对 从 上 里 中 亲 您好 你好
    谢谢 麻烦 帮 帮忙 一个 就是 现在 已经 但是 可是 然后 所以 因为 如果 的话 吗亲 在吗
    x 要 想 需要
    a an the i me my mine you your yours we our us it its this that these those is are am was
    were be been being do does did done to for of in on at by from with as if or and but so
    can could would should will shall may might must how what when where which who whom why
    please pls plz hi hello thanks thank any some there here just about have has had get got
    not no yes ok okay im dont don t s
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_TOKEN_PART = re.compile(r"[0-9a-z\u3400-\u9fff]")
_CJK = re.compile(r"[\u3400-\u9fff]")
_DOUBLED = re.compile(r"([b-df-hj-np-tv-z])\1$")
_jieba_lock = threading.Lock()
_jieba: Any = None


def _tokenizer() -> Any:
    """jieba's tokenizer, loaded on first use (about a second), once per process."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                with warnings.catch_warnings():
                    # jieba 0.42's regular expressions have invalid escapes: Python warns
                    # each time it compiles them (no bytecode cache in some installs).
                    warnings.simplefilter("ignore", SyntaxWarning)
                    import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in DOMAIN_WORDS:
                    tokenizer.add_word(word, freq=20000)
                _jieba = tokenizer
    return _jieba


def _stem(word: str) -> str:
    """A light English stemmer: plurals, -ing, -ed (enough for short questions)."""
    if not word.isascii() or not word.isalpha() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    for ending in ("ing", "ed"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            stem = word[: -len(ending)]
            return stem[:-1] if _DOUBLED.search(stem) and not stem.endswith("ll") else stem
    return word


def tokenize(text: str) -> list[str]:
    """The words of ``text`` that carry meaning, in order (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text or "")[:MAX_TEXT].lower()
    if not _TOKEN_PART.search(text):
        return []
    tokens = []
    for raw in _tokenizer().lcut_for_search(text):
        word = raw.strip()
        if not word or not _TOKEN_PART.search(word):
            continue
        word = SYNONYMS.get(word, word)
        word = _stem(word)
        word = SYNONYMS.get(word, word)
        if word not in STOP_WORDS:
            tokens.append(word)
    return tokens


def terms(text: str) -> list[str]:
    """What is indexed and searched: the words, then each of their Chinese characters that is
    not a stop word, marked ``#`` so that a character never counts as the word it spells."""
    words = tokenize(text)
    characters = [
        f"#{char}" for word in words for char in word if _CJK.match(char) and char not in STOP_WORDS
    ]
    return words + characters


# ---------------------------------------------------------------------- the index


@dataclass(frozen=True)
class ArticleText:
    """What the index needs of an article."""

    id: int
    key: str
    question: str
    answer: str
    language: str
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suggestion:
    """An article suggested for a question: ``score`` is the raw BM25 score (comparable only
    within one question), ``confidence`` in [0, 1] (see the module docstring)."""

    article_id: int
    key: str
    question: str
    answer: str
    language: str
    score: float
    confidence: float


def confidence(score: float, best_other: float, coverage: float) -> float:
    """``sqrt(coverage × margin)`` (module docstring): 0 for no match, 1 for an article that
    has every word of the question and that no other article matches at all."""
    if score <= 0:
        return 0.0
    margin = min(max((score - max(best_other, 0.0)) / score, 0.0), 1.0)
    return round(math.sqrt(min(max(coverage, 0.0), 1.0) * margin), 4)


def _bm25(documents: list[list[str]]) -> Any:
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    index = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    # An empty document would be dropped by nobody but would shift nothing either; bm25s wants
    # at least one token per document, so an empty one gets a token no question can have.
    index.index([doc or ["\x00"] for doc in documents], show_progress=False)
    return index


class FaqIndex:
    """BM25 over a set of articles (pure: give it the articles)."""

    def __init__(self, articles: Iterable[ArticleText]) -> None:
        self.articles: list[ArticleText] = list(articles)
        phrasings: list[list[str]] = []
        owners: list[int] = []
        for position, article in enumerate(self.articles):
            for text in (article.question, *article.alternatives):
                found = terms(text)
                if found:
                    phrasings.append(found)
                    owners.append(position)
        answers = [terms(article.answer) for article in self.articles]
        self._owners = np.array(owners, dtype=np.int64)
        self._questions = _bm25(phrasings) if phrasings else None
        self._answers = _bm25(answers) if self.articles else None
        self._languages = np.array([a.language for a in self.articles], dtype=object)
        # For coverage: each article's terms (in a phrasing, in the answer) and in how many
        # articles each term occurs.
        self._phrasing_terms: list[frozenset[str]] = [frozenset() for _ in self.articles]
        for found, position in zip(phrasings, owners, strict=True):
            self._phrasing_terms[position] |= frozenset(found)
        self._answer_terms = [frozenset(found) for found in answers]
        self._article_frequency: dict[str, int] = {}
        for in_phrasings, in_answer in zip(self._phrasing_terms, self._answer_terms, strict=True):
            for term in in_phrasings | in_answer:
                self._article_frequency[term] = self._article_frequency.get(term, 0) + 1

    def __len__(self) -> int:
        return len(self.articles)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """Each article's score for the question's terms (``terms(text)``)."""
        total = np.zeros(len(self.articles), dtype=np.float64)
        if not query or not self.articles:
            return total
        unique = list(dict.fromkeys(query))  # a word said twice is not twice as relevant
        if self._questions is not None:
            known = [t for t in unique if t in self._questions.vocab_dict]
            if known:
                per_phrasing = np.asarray(self._questions.get_scores(known), dtype=np.float64)
                np.maximum.at(total, self._owners, per_phrasing)
        if self._answers is not None:
            known = [t for t in unique if t in self._answers.vocab_dict]
            if known:
                per_answer = np.asarray(self._answers.get_scores(known), dtype=np.float64)
                total += ANSWER_WEIGHT * per_answer
        return total

    def idf(self, term: str) -> float:
        """BM25's idf of ``term`` over the articles; a term no article has gets the highest."""
        n = len(self.articles)
        found = self._article_frequency.get(term, 0)
        return math.log(1.0 + (n - found + 0.5) / (found + 0.5))

    def coverage(self, query: Sequence[str], position: int) -> float:
        """The idf-weighted share of the question's terms that the article at ``position``
        has: in a phrasing fully, only in its answer ``ANSWER_COVERAGE``."""
        unique = list(dict.fromkeys(query))
        total = sum(self.idf(t) for t in unique)
        if total <= 0:
            return 0.0
        covered = 0.0
        for term in unique:
            if term in self._phrasing_terms[position]:
                covered += self.idf(term)
            elif term in self._answer_terms[position]:
                covered += ANSWER_COVERAGE * self.idf(term)
        return covered / total

    def search(self, text: str, *, k: int = 3, language: str | None = None) -> list[Suggestion]:
        """The ``k`` best articles for ``text`` (only those that match at all), best first;
        with ``language``, only articles in that language."""
        if k < 1:
            return []
        query = terms(text)
        scores = self.scores(query)
        if language is not None:
            scores = np.where(self._languages == language, scores, 0.0)
        ranked = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
        if not ranked:
            return []
        top = float(scores[ranked[0]])
        runner_up = float(scores[ranked[1]]) if len(ranked) > 1 else 0.0
        suggestions = []
        for position in ranked[:k]:
            article = self.articles[position]
            score = float(scores[position])
            best_other = runner_up if position == ranked[0] else top
            suggestions.append(
                Suggestion(
                    article_id=article.id,
                    key=article.key,
                    question=article.question,
                    answer=article.answer,
                    language=article.language,
                    score=round(score, 4),
                    confidence=confidence(score, best_other, self.coverage(query, position)),
                )
            )
        return suggestions


# ---------------------------------------------------------------------- the articles


_index_lock = threading.Lock()
_cached: tuple[tuple[Any, ...], FaqIndex] | None = None


def index_version() -> tuple[Any, ...]:
    """Changes whenever an article is added, edited, published or unpublished."""
    from django.db.models import Count, Max

    from patron.knowledge.models import Article

    found = Article.objects.aggregate(count=Count("id"), last=Max("updated_at"), top=Max("id"))
    return (found["count"], found["last"], found["top"])


def _published() -> list[ArticleText]:
    from patron.knowledge.models import Article

    return [
        ArticleText(
            id=row.pk,
            key=row.key,
            question=row.question,
            answer=row.answer,
            language=row.language,
            alternatives=tuple(str(a) for a in row.alternatives or ()),
        )
        for row in Article.objects.filter(is_published=True).order_by("pk")
    ]


def current_index() -> FaqIndex:
    """The index of the published articles, rebuilt only when they changed."""
    global _cached
    version = index_version()
    cached = _cached
    if cached is not None and cached[0] == version:
        return cached[1]
    with _index_lock:
        if _cached is not None and _cached[0] == version:
            return _cached[1]
        index = FaqIndex(_published())
        _cached = (version, index)
        return index


def index_clear() -> None:
    """Forget the built index (tests; the version check makes this unnecessary otherwise)."""
    global _cached
    with _index_lock:
        _cached = None


def suggest(text: str, *, k: int = 3, language: str | None = None) -> list[Suggestion]:
    """The ``k`` published articles that best answer ``text``; nothing for blank text."""
    if not (text or "").strip():
        return []
    return current_index().search(text, k=k, language=language)
