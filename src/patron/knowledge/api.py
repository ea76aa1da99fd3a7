"""REST endpoints of the knowledge base under ``/api/faq``: articles (list, create, read,
change), suggestions for a customer's question with their confidence, feedback on an article,
and the evaluation of retrieval on the shipped labelled questions.

Thin: each endpoint calls one selector or one service. 403 permission, 404 unknown article,
409 a key another article has, 422 invalid input naming the field (``article.category: …``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import BeforeValidator, ConfigDict, Field

from patron.apitext import MAX_ID, NO_NUL, SLUG, TEXT
from patron.customer.api import ErrorOut
from patron.customer.selectors import MAX_PAGE, MAX_PAGE_SIZE
from patron.knowledge import rules, selectors, services
from patron.knowledge.evaluation import EvalReport
from patron.knowledge.models import Article, Feedback
from patron.knowledge.retrieval import MAX_TEXT, Suggestion

router = Router(tags=["knowledge"])

ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
BODY = ConfigDict(extra="forbid")
LanguageIn = Literal["zh", "en"]


def _strict_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _json_integer(value: Any) -> Any:
    """A JSON number (9 or 9.0, as JSON Schema's integer allows), never text or true/false."""
    if isinstance(value, bool | str):
        raise ValueError("expected a JSON integer")
    return value


StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]
Phrasing = Annotated[str, Field(min_length=1, max_length=rules.MAX_QUESTION, pattern=TEXT)]
Tag = Annotated[str, Field(min_length=1, max_length=rules.MAX_TAG, pattern=TEXT)]


def _unless_sent(**constraints: Any) -> Any:
    """A field of a partial update: absent unless sent (``exclude_unset``), never null."""
    return Field(None, **constraints)


# ---------------------------------------------------------------------- articles


class FaqArticleOut(Schema):
    id: int
    key: str
    question: str
    alternatives: list[str]
    answer: str
    language: LanguageIn
    category: str
    tags: list[str]
    is_published: bool
    feedback_helped: int
    feedback_not_helped: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class FaqArticlePageOut(Schema):
    count: int
    page: int
    page_size: int
    num_pages: int
    items: list[FaqArticleOut]


class FaqArticleIn(Schema):
    model_config = BODY

    key: str | None = Field(
        None,
        max_length=rules.MAX_KEY,
        pattern=SLUG,
        description="A stable name (letters, digits, '-', '_'); empty: faq-<id>",
    )
    question: str = Field(min_length=1, max_length=rules.MAX_QUESTION, pattern=TEXT)
    alternatives: list[Phrasing] = Field(
        default_factory=list,
        max_length=rules.MAX_ALTERNATIVES,
        description="Other ways customers ask the question: they are searched like it",
    )
    answer: str = Field(min_length=1, max_length=rules.MAX_ANSWER, pattern=TEXT)
    language: LanguageIn = "zh"
    category: str = Field(min_length=1, max_length=rules.MAX_CATEGORY, pattern=SLUG)
    tags: list[Tag] = Field(default_factory=list, max_length=rules.MAX_TAGS)
    is_published: StrictBool = Field(
        False, description="Published articles are suggested and may be sent automatically"
    )


class FaqArticlePatchIn(Schema):
    """Only the fields sent are changed."""

    model_config = BODY

    key: str = _unless_sent(max_length=rules.MAX_KEY, pattern=SLUG)
    question: str = _unless_sent(min_length=1, max_length=rules.MAX_QUESTION, pattern=TEXT)
    alternatives: list[Phrasing] = _unless_sent(max_length=rules.MAX_ALTERNATIVES)
    answer: str = _unless_sent(min_length=1, max_length=rules.MAX_ANSWER, pattern=TEXT)
    language: LanguageIn = _unless_sent()
    category: str = _unless_sent(min_length=1, max_length=rules.MAX_CATEGORY, pattern=SLUG)
    tags: list[Tag] = _unless_sent(max_length=rules.MAX_TAGS)
    is_published: StrictBool = _unless_sent()


class FaqArticleListParams(Schema):
    q: str = Field("", max_length=selectors.MAX_QUERY, pattern=NO_NUL)
    category: str | None = Field(None, max_length=rules.MAX_CATEGORY, pattern=SLUG)
    language: LanguageIn | None = None
    published: bool | None = None
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


def _article_out(
    article: Article, summary: selectors.FeedbackSummary | None = None
) -> dict[str, Any]:
    summary = summary or selectors.FeedbackSummary()
    return {
        **{
            name: getattr(article, name)
            for name in (
                "key",
                "question",
                "alternatives",
                "answer",
                "language",
                "category",
                "tags",
                "is_published",
                "created_by",
                "created_at",
                "updated_by",
                "updated_at",
            )
        },
        "id": article.pk,
        "feedback_helped": summary.helped,
        "feedback_not_helped": summary.not_helped,
    }


def _one_out(article: Article) -> dict[str, Any]:
    return _article_out(article, selectors.feedback_summaries([article.pk]).get(article.pk))


@router.get(
    "/articles",
    response={200: FaqArticlePageOut, **ERRORS},
    summary="FAQ articles by category; q finds text in the key, question or answer",
)
def list_articles(request: HttpRequest, params: Query[FaqArticleListParams]) -> dict[str, Any]:
    page = selectors.articles_list(
        user=request.user,
        q=params.q,
        category=params.category or "",
        language=params.language,
        is_published=params.published,
        page=params.page,
        page_size=params.page_size,
    )
    summaries = selectors.feedback_summaries(a.pk for a in page.items)
    return {
        "count": page.count,
        "page": page.page,
        "page_size": page.page_size,
        "num_pages": page.num_pages,
        "items": [_article_out(a, summaries.get(a.pk)) for a in page.items],
    }


@router.post(
    "/articles",
    response={201: FaqArticleOut, **ERRORS},
    summary="Write an FAQ article (audited; a draft unless is_published; 409 a key in use)",
)
def create_article(request: HttpRequest, body: FaqArticleIn) -> tuple[int, dict[str, Any]]:
    data = body.model_dump()
    data["key"] = data["key"] or ""
    article = services.article_create(user=request.user, data=data)
    return 201, _article_out(article)


@router.get("/articles/{article_id}", response={200: FaqArticleOut, **ERRORS}, summary="An article")
def get_article(request: HttpRequest, article_id: int) -> dict[str, Any]:
    return _one_out(selectors.article_get(user=request.user, article_id=article_id))


@router.patch(
    "/articles/{article_id}",
    response={200: FaqArticleOut, **ERRORS},
    summary="Change an article's fields, or publish/unpublish it (audited)",
)
def patch_article(request: HttpRequest, article_id: int, body: FaqArticlePatchIn) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    article = services.article_update(user=request.user, article_id=article_id, changes=changes)
    return _one_out(article)


# ---------------------------------------------------------------------- feedback


class FaqFeedbackIn(Schema):
    model_config = BODY

    helped: StrictBool
    ticket_id: Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_json_integer)] | None = (
        Field(None, description="The ticket the article was used on, if any")
    )
    is_auto_reply: StrictBool = Field(False, description="Sent automatically, not by an agent")


class FaqFeedbackOut(Schema):
    id: int
    article_id: int
    ticket_id: int | None
    helped: bool
    is_auto_reply: bool
    recorded_by: str
    at: datetime


def _feedback_out(feedback: Feedback) -> dict[str, Any]:
    return {
        "id": feedback.pk,
        "article_id": feedback.article_id,
        "ticket_id": feedback.ticket_id,
        "helped": feedback.helped,
        "is_auto_reply": feedback.is_auto_reply,
        "recorded_by": feedback.recorded_by,
        "at": feedback.at,
    }


@router.post(
    "/articles/{article_id}/feedback",
    response={201: FaqFeedbackOut, **ERRORS},
    summary="Record whether the article's answer helped (on a ticket, or not)",
)
def record_feedback(
    request: HttpRequest, article_id: int, body: FaqFeedbackIn
) -> tuple[int, dict[str, Any]]:
    feedback = services.feedback_record(
        article_id,
        body.ticket_id,
        body.helped,
        is_auto_reply=body.is_auto_reply,
        user=request.user,
    )
    return 201, _feedback_out(feedback)


# ---------------------------------------------------------------------- suggestions


class FaqSuggestIn(Schema):
    model_config = BODY

    text: str = Field(
        max_length=MAX_TEXT, pattern=NO_NUL, description="The customer's question, as written"
    )
    k: Annotated[int, Field(ge=1, le=selectors.MAX_K), BeforeValidator(_json_integer)] = 3
    language: LanguageIn | None = Field(None, description="Only articles in this language")


class FaqSuggestionOut(Schema):
    article_id: int
    key: str
    question: str
    answer: str
    language: LanguageIn
    score: float = Field(description="BM25 score: comparable only within one question")
    confidence: float = Field(description="0–1: how sure the article is the answer")
    is_auto_reply: bool = Field(description="Would be sent without an agent (best, ≥ threshold)")


class FaqSuggestOut(Schema):
    threshold: float
    suggestions: list[FaqSuggestionOut]


def _suggestion_out(suggestion: Suggestion, *, is_auto_reply: bool) -> dict[str, Any]:
    return {
        "article_id": suggestion.article_id,
        "key": suggestion.key,
        "question": suggestion.question,
        "answer": suggestion.answer,
        "language": suggestion.language,
        "score": suggestion.score,
        "confidence": suggestion.confidence,
        "is_auto_reply": is_auto_reply,
    }


@router.post(
    "/suggest",
    response={200: FaqSuggestOut, **ERRORS},
    summary="The published articles that best answer a customer's question, with confidence",
)
def suggest(request: HttpRequest, body: FaqSuggestIn) -> dict[str, Any]:
    found = selectors.suggest(body.text, k=body.k, language=body.language, user=request.user)
    threshold = selectors.auto_reply_threshold()
    return {
        "threshold": threshold,
        "suggestions": [
            _suggestion_out(
                s,
                is_auto_reply=i == 0 and rules.is_sent_automatically(s.confidence, threshold),
            )
            for i, s in enumerate(found)
        ],
    }


# ---------------------------------------------------------------------- evaluation


class FaqThresholdPointOut(Schema):
    threshold: float
    auto_answered: int
    auto_correct: int
    auto_share: float
    precision: float | None
    precision_lower_bound: float
    unanswerable_auto_rate: float | None


class FaqEvalCaseOut(Schema):
    text: str
    expected: str | None
    ranked: list[str]
    confidence: float
    is_auto_answered: bool


class FaqEvaluationOut(Schema):
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
    unknown_labels: list[str]
    curve: list[FaqThresholdPointOut]
    misses: list[FaqEvalCaseOut]
    wrong_auto: list[FaqEvalCaseOut]


@router.get(
    "/evaluation",
    response={200: FaqEvaluationOut, **ERRORS},
    summary="Retrieval measured on the shipped labelled questions: hit@1, hit@3, MRR, and "
    "automatic replies at the threshold in force",
)
def evaluation(request: HttpRequest) -> EvalReport:
    return selectors.faq_evaluation(user=request.user)
