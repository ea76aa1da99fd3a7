"""Knowledge-base pages for the service desk: the FAQ list with a box that shows, as an agent
types a customer's question, the articles that answer it (htmx); writing and editing an
article (publish, unpublish); and the evaluation of retrieval on the labelled questions.

Each view parses the form, calls a selector or a service and renders. A refused form is shown
again with the message naming the field (422) or the conflict (409); a missing permission is
the plain 403 page through ``patron_page``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from patron.account.roles import CHANGE_FAQ, VIEW_FAQ
from patron.account.services import require_permission
from patron.errors import Conflict, ValidationFailed
from patron.knowledge import rules, selectors, services
from patron.knowledge.models import Article
from patron.web.views import patron_page

PAGE_SIZE = 50
SUGGESTIONS = 5


def _page_number(request: HttpRequest) -> int:
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), 100_000)


def _is_htmx(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _suggestions(request: HttpRequest, text: str) -> list[dict[str, Any]]:
    found = selectors.suggest(text, k=SUGGESTIONS, user=request.user) if text.strip() else []
    threshold = selectors.auto_reply_threshold()
    return [
        {
            "suggestion": s,
            "percent": round(s.confidence * 100),
            "is_auto_reply": i == 0 and rules.is_sent_automatically(s.confidence, threshold),
        }
        for i, s in enumerate(found)
    ]


@patron_page
def faq_list(request: HttpRequest) -> HttpResponse:
    """The articles (filtered by text, category, language, published) and the live
    suggestions for what is typed in the box."""
    require_permission(request.user, VIEW_FAQ)
    query = request.GET.get("q", "").strip()[: selectors.MAX_QUERY]
    category = request.GET.get("category", "")
    language = request.GET.get("language", "")
    published = request.GET.get("published", "")
    page = selectors.articles_list(
        user=request.user,
        q=query,
        category=category if rules.SLUG.match(category) else "",
        language=language if language in rules.LANGUAGES else None,
        is_published={"yes": True, "no": False}.get(published),
        page=_page_number(request),
        page_size=PAGE_SIZE,
    )
    summaries = selectors.feedback_summaries(a.pk for a in page.items)
    context = {
        "page": page,
        "rows": [{"article": a, "summary": summaries.get(a.pk)} for a in page.items],
        "filters": {"q": query, "category": category, "language": language, "published": published},
        "categories": selectors.categories(user=request.user),
        "language_choices": Article.Language.choices,
        "may_change": request.user.has_perm(CHANGE_FAQ),
        "suggestions": _suggestions(request, query),
        "threshold": selectors.auto_reply_threshold(),
    }
    return render(request, "knowledge/faq_list.html", context)


@patron_page
def faq_suggest(request: HttpRequest) -> HttpResponse:
    """The suggestions panel alone (htmx, as the agent types)."""
    require_permission(request.user, VIEW_FAQ)
    text = request.GET.get("q", "")[:2000]
    context = {
        "suggestions": _suggestions(request, text),
        "filters": {"q": text.strip()},
        "threshold": selectors.auto_reply_threshold(),
    }
    return render(request, "knowledge/faq_list.html#suggestions", context)


def _form_data(post: QueryDict) -> dict[str, Any]:
    return {
        "key": post.get("key", "").strip(),
        "question": post.get("question", ""),
        "alternatives": _lines(post.get("alternatives", "")),
        "answer": post.get("answer", ""),
        "language": post.get("language", ""),
        "category": post.get("category", "").strip(),
        "tags": [
            t.strip() for t in post.get("tags", "").replace("，", ",").split(",") if t.strip()
        ],
        "is_published": post.get("is_published") == "on",
    }


def _form_values(article: Article | None, post: QueryDict | None = None) -> dict[str, Any]:
    if post is not None:
        return {
            "key": post.get("key", ""),
            "question": post.get("question", ""),
            "alternatives": post.get("alternatives", ""),
            "answer": post.get("answer", ""),
            "language": post.get("language", "zh"),
            "category": post.get("category", ""),
            "tags": post.get("tags", ""),
            "is_published": post.get("is_published") == "on",
        }
    if article is None:
        return {"language": "zh", "is_published": False}
    return {
        "key": article.key,
        "question": article.question,
        "alternatives": "\n".join(article.alternatives or []),
        "answer": article.answer,
        "language": article.language,
        "category": article.category,
        "tags": ", ".join(article.tags or []),
        "is_published": article.is_published,
    }


def _form_page(
    request: HttpRequest,
    *,
    article: Article | None,
    form: dict[str, Any],
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "article": article,
        "form": form,
        "error": error,
        "language_choices": Article.Language.choices,
        "may_change": request.user.has_perm(CHANGE_FAQ),
        "summary": selectors.feedback_summaries([article.pk]).get(article.pk) if article else None,
        "feedback": article.feedback.order_by("-at")[:10] if article else [],
        "limits": {"question": rules.MAX_QUESTION, "answer": rules.MAX_ANSWER},
    }
    return render(request, "knowledge/faq_form.html", context, status=status)


@patron_page
def faq_new(request: HttpRequest) -> HttpResponse:
    require_permission(request.user, CHANGE_FAQ)
    if request.method == "POST":
        data = _form_data(request.POST)
        if not data["key"]:
            data.pop("key")
        try:
            article = services.article_create(user=request.user, data=data)
        except (ValidationFailed, Conflict) as refused:
            return _form_page(
                request,
                article=None,
                form=_form_values(None, request.POST),
                error=refused.message,
                status=refused.status,
            )
        messages.success(request, _("Article %(key)s saved.") % {"key": article.key})
        return redirect("web:faq-edit", article_id=article.pk)
    return _form_page(request, article=None, form=_form_values(None))


@patron_page
def faq_edit(request: HttpRequest, article_id: int) -> HttpResponse:
    """An article: read by anyone who may read the FAQ, changed, published or unpublished by
    those who may change it."""
    article = selectors.article_get(user=request.user, article_id=article_id)
    if request.method == "POST":
        require_permission(request.user, CHANGE_FAQ)
        action = request.POST.get("action", "save")
        try:
            if action == "publish":
                services.article_publish(user=request.user, article_id=article.pk)
                messages.success(request, _("Article published."))
            elif action == "unpublish":
                services.article_unpublish(user=request.user, article_id=article.pk)
                messages.success(request, _("Article unpublished."))
            else:
                services.article_update(
                    user=request.user, article_id=article.pk, changes=_form_data(request.POST)
                )
                messages.success(request, _("Article saved."))
        except (ValidationFailed, Conflict) as refused:
            return _form_page(
                request,
                article=article,
                form=_form_values(article, request.POST),
                error=refused.message,
                status=refused.status,
            )
        return redirect("web:faq-edit", article_id=article.pk)
    return _form_page(request, article=article, form=_form_values(article))


@patron_page
def faq_evaluation(request: HttpRequest) -> HttpResponse:
    """The figures of retrieval and automatic replies on the shipped labelled questions."""
    report = selectors.faq_evaluation(user=request.user)
    context = {
        "report": report,
        "curve": [
            {"point": p, "is_current": abs(p.threshold - report.threshold) < 1e-9}
            for p in report.curve
        ],
    }
    return render(request, "knowledge/faq_evaluation.html", context)
