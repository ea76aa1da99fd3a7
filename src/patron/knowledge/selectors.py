"""Reading the knowledge base: articles, suggestions for a customer's question, feedback
figures, the automatic-reply threshold in force and the evaluation on the labelled set.

``suggest`` is what the service desk calls (with or without a user: the ticket service asks
on the system's behalf). See docs/knowledge.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from patron.account.roles import VIEW_FAQ
from patron.account.services import require_permission
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE, Page
from patron.errors import NotFound, ValidationFailed
from patron.knowledge import retrieval, rules
from patron.knowledge.evaluation import EvalReport, evaluate, load_eval_pairs
from patron.knowledge.models import Article, Feedback
from patron.knowledge.retrieval import Suggestion

logger = logging.getLogger(__name__)

THRESHOLD_SETTING = "PATRON_FAQ_AUTO_REPLY_CONFIDENCE"
MAX_K = 10
MAX_QUERY = 200


def auto_reply_threshold() -> float:
    """The confidence an automatic reply needs, read at call time: the Django setting
    ``PATRON_FAQ_AUTO_REPLY_CONFIDENCE``, else the environment variable of that name, else
    ``rules.AUTO_REPLY_THRESHOLD``. A number of 0 or more; above 1 turns automatic replies
    off. A value that is not such a number is logged and the default used (a typo in the
    configuration must not stop tickets from being answered by agents)."""
    raw = getattr(settings, THRESHOLD_SETTING, None)
    if raw is None:
        raw = os.environ.get(THRESHOLD_SETTING)
    if raw is None or raw == "":
        return rules.AUTO_REPLY_THRESHOLD
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        logger.warning(
            "%s=%r is not a number of 0 or more: using %s",
            THRESHOLD_SETTING,
            raw,
            rules.AUTO_REPLY_THRESHOLD,
        )
        return rules.AUTO_REPLY_THRESHOLD
    return value


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValidationFailed(f"k: a whole number from 1 to {MAX_K}", details={"field": "k"})


def _check_language(language: str | None) -> None:
    if language is not None and language not in rules.LANGUAGES:
        raise ValidationFailed(
            f"language: one of {', '.join(rules.LANGUAGES)}", details={"field": "language"}
        )


def suggest(
    text: str, *, k: int = 3, language: str | None = None, user: Any = None
) -> list[Suggestion]:
    """The ``k`` published articles that best answer a customer's ``text``, best first, each
    with its confidence in [0, 1] (``patron.knowledge.retrieval``); nothing for blank text.
    With ``user``, the user needs the permission to read the FAQ."""
    if user is not None:
        require_permission(user, VIEW_FAQ)
    _check_k(k)
    _check_language(language)
    return retrieval.suggest(text, k=k, language=language)


# ---------------------------------------------------------------------- articles


def articles_list(
    *,
    user: Any,
    q: str = "",
    category: str = "",
    language: str | None = None,
    is_published: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[Article]:
    """Articles by category and key; ``q`` finds text in the key, question, alternative
    phrasings or answer."""
    require_permission(user, VIEW_FAQ)
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise ValidationFailed(
            f"page_size: from 1 to {MAX_PAGE_SIZE}", details={"field": "page_size"}
        )
    if page < 1 or page > MAX_PAGE:
        raise ValidationFailed(f"page: from 1 to {MAX_PAGE}", details={"field": "page"})
    _check_language(language)
    queryset = Article.objects.order_by("category", "key")
    query = (q or "").strip()[:MAX_QUERY]
    if query:
        queryset = queryset.filter(
            Q(key__icontains=query)
            | Q(question__icontains=query)
            | Q(answer__icontains=query)
            | Q(alternatives__icontains=query)
        )
    if category:
        queryset = queryset.filter(category=category)
    if language:
        queryset = queryset.filter(language=language)
    if is_published is not None:
        queryset = queryset.filter(is_published=is_published)
    start = (page - 1) * page_size
    return Page(
        items=tuple(queryset[start : start + page_size]),
        count=queryset.count(),
        page=page,
        page_size=page_size,
    )


def article_get(*, user: Any, article_id: int) -> Article:
    require_permission(user, VIEW_FAQ)
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        raise NotFound(f"article {article_id} not found", details={"article_id": article_id})
    return article


def categories(*, user: Any) -> list[str]:
    require_permission(user, VIEW_FAQ)
    return sorted(set(Article.objects.values_list("category", flat=True)))


@dataclass(frozen=True)
class FeedbackSummary:
    helped: int = 0
    not_helped: int = 0

    @property
    def total(self) -> int:
        return self.helped + self.not_helped

    @property
    def helped_share(self) -> float | None:
        return self.helped / self.total if self.total else None


def feedback_summaries(article_ids: Iterable[int]) -> dict[int, FeedbackSummary]:
    """How often each article helped and did not (articles without feedback are absent)."""
    rows = (
        Feedback.objects.filter(article_id__in=list(article_ids))
        .values("article_id")
        .annotate(
            n_helped=Count("id", filter=Q(helped=True)),
            n_not_helped=Count("id", filter=Q(helped=False)),
        )
    )
    return {
        row["article_id"]: FeedbackSummary(helped=row["n_helped"], not_helped=row["n_not_helped"])
        for row in rows
    }


# ---------------------------------------------------------------------- evaluation


def faq_evaluation(*, user: Any = None, threshold: float | None = None) -> EvalReport:
    """The shipped labelled questions (``fixtures/faq_eval.json``) run against the published
    articles now, at the threshold in force (``auto_reply_threshold``) unless one is given."""
    if user is not None:
        require_permission(user, VIEW_FAQ)
    index = retrieval.current_index()
    return evaluate(
        load_eval_pairs(),
        search=lambda text: index.search(text, k=3),
        threshold=auto_reply_threshold() if threshold is None else threshold,
        known_keys={article.key for article in index.articles},
    )
