"""Writing the knowledge base (articles, feedback, the seed FAQ) and deciding automatic replies.

Every write is one transaction; article writes need ``CHANGE_FAQ`` and are audited with the
fields they changed (``knowledge.article``; edits are not versioned, the audit log is the
history). ``decide_auto_reply`` is what the ticket service calls to answer a customer without
an agent. See docs/knowledge.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from patron.account.roles import CHANGE_FAQ, RECORD_FAQ_FEEDBACK
from patron.account.services import require_permission
from patron.audit.services import AuditEntry, audit_record
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.knowledge import retrieval, rules
from patron.knowledge.models import Article, Feedback
from patron.knowledge.retrieval import Suggestion
from patron.knowledge.selectors import auto_reply_threshold
from patron.workflow import locked

SEED_FILE = Path(__file__).parent / "fixtures" / "faq_zh.json"
MAX_TICKET_ID = 2**63 - 1
_AUDITED = ("key", "question", "alternatives", "answer", "language", "category", "tags")


def _username(user: Any) -> str:
    return user.get_username() if user is not None else ""


def _audit(user: Any, article: Article, action: str, summary: str, changes: dict[str, Any]) -> None:
    audit_record(
        AuditEntry(
            action=action,
            entity_type="knowledge.article",
            entity_id=str(article.pk),
            summary=summary[:300],
            changes=changes,
        ),
        actor=user,
        actor_label="" if user is not None else "system",
    )


def _key_taken(key: str, article_id: int | None = None) -> None:
    taken = Article.objects.filter(key=key)
    if article_id is not None:
        taken = taken.exclude(pk=article_id)
    if taken.exists():
        raise Conflict(f"article.key: {key!r} is taken by another article", details={"key": key})


# ---------------------------------------------------------------------- articles


def article_create(*, user: Any, data: Mapping[str, Any]) -> Article:
    """A new article (a draft unless ``is_published``). Without a ``key`` it is named
    ``faq-<id>``. 422 names the wrong field; a key in use is a conflict (409)."""
    require_permission(user, CHANGE_FAQ)
    values = rules.article_clean(data)
    with transaction.atomic():
        if values["key"]:
            _key_taken(values["key"])
        try:
            with transaction.atomic():
                article = Article.objects.create(
                    **values, created_by=_username(user), updated_by=_username(user)
                )
        except IntegrityError:
            raise Conflict(f"article.key: {values['key']!r} is taken by another article") from None
        if not article.key:
            article.key = f"faq-{article.pk}"
            while Article.objects.filter(key=article.key).exclude(pk=article.pk).exists():
                article.key = f"faq-{article.pk}-{timezone.now():%H%M%S%f}"
            article.save(update_fields=["key"])
        _audit(
            user,
            article,
            "create",
            f"FAQ article {article.key!r} created: {article.question}",
            {name: getattr(article, name) for name in (*_AUDITED, "is_published")},
        )
    return article


def article_update(*, user: Any, article_id: int, changes: Mapping[str, Any]) -> Article:
    """Change the fields given (audited with their old and new values); the index of the
    published articles is rebuilt on the next question."""
    require_permission(user, CHANGE_FAQ)
    values = rules.article_clean(changes, partial=True)
    with transaction.atomic():
        article = locked(Article, article_id, "article")
        if "key" in values:
            _key_taken(values["key"], article.pk)
        changed = {
            name: {"old": getattr(article, name), "new": value}
            for name, value in values.items()
            if getattr(article, name) != value
        }
        if not changed:
            return article
        for name, value in values.items():
            setattr(article, name, value)
        article.updated_by = _username(user)
        try:
            with transaction.atomic():
                article.save()
        except IntegrityError:
            raise Conflict(f"article.key: {article.key!r} is taken by another article") from None
        _audit(
            user,
            article,
            "update",
            f"FAQ article {article.key!r} changed: {', '.join(sorted(changed))}",
            changed,
        )
    return article


def _set_published(user: Any, article_id: int, is_published: bool) -> Article:
    require_permission(user, CHANGE_FAQ)
    with transaction.atomic():
        article = locked(Article, article_id, "article")
        if article.is_published == is_published:
            return article  # publishing twice changes nothing, and is no error
        article.is_published = is_published
        article.updated_by = _username(user)
        article.save()
        _audit(
            user,
            article,
            "update",
            f"FAQ article {article.key!r} {'published' if is_published else 'unpublished'}",
            {"is_published": {"old": not is_published, "new": is_published}},
        )
    return article


def article_publish(*, user: Any, article_id: int) -> Article:
    """Make the article suggestable and sendable automatically (idempotent, audited)."""
    return _set_published(user, article_id, True)


def article_unpublish(*, user: Any, article_id: int) -> Article:
    """Stop suggesting the article (idempotent, audited); its feedback is kept."""
    return _set_published(user, article_id, False)


# ---------------------------------------------------------------------- feedback


def feedback_record(
    article_id: int,
    ticket_id: int | None,
    helped: bool,
    *,
    is_auto_reply: bool = False,
    user: Any = None,
) -> Feedback:
    """Record whether the article, suggested to an agent or sent automatically
    (``is_auto_reply``), helped on ``ticket_id`` (None: not on a ticket). Without ``user`` it is
    the system's record (the ticket service); with one, the user needs the feedback permission.
    Every call is a new record: a customer may say so twice."""
    if user is not None:
        require_permission(user, RECORD_FAQ_FEEDBACK)
    if isinstance(article_id, bool) or not isinstance(article_id, int):
        raise ValidationFailed("article_id: an article's id", details={"field": "article_id"})
    if ticket_id is not None and (
        isinstance(ticket_id, bool)
        or not isinstance(ticket_id, int)
        or not 1 <= ticket_id <= MAX_TICKET_ID
    ):
        raise ValidationFailed("ticket_id: a ticket's id or null", details={"field": "ticket_id"})
    if not isinstance(helped, bool):
        raise ValidationFailed("helped: true or false", details={"field": "helped"})
    with transaction.atomic():
        if not Article.objects.filter(pk=article_id).exists():
            raise NotFound(f"article {article_id} not found", details={"article_id": article_id})
        return Feedback.objects.create(
            article_id=article_id,
            ticket_id=ticket_id,
            helped=helped,
            is_auto_reply=is_auto_reply,
            recorded_by=_username(user) or "system",
        )


# ---------------------------------------------------------------------- automatic replies


def decide_auto_reply(text: str, *, language: str | None = None) -> Suggestion | None:
    """The article to send to the customer without an agent, or None: the best published
    article for ``text`` when its confidence reaches ``auto_reply_threshold()`` (the setting
    ``PATRON_FAQ_AUTO_REPLY_CONFIDENCE``, read at each call). Sends nothing and writes
    nothing: the caller sends the answer and records ``feedback_record(..., is_auto_reply=True)``
    when the customer says whether it helped."""
    threshold = auto_reply_threshold()
    if threshold > 1:
        return None
    suggestions = retrieval.suggest(text, k=1, language=language)
    if not suggestions or not rules.is_sent_automatically(suggestions[0].confidence, threshold):
        return None
    return suggestions[0]


# ---------------------------------------------------------------------- the seed FAQ


@dataclass(frozen=True)
class SeedResult:
    created: int
    existing: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def knowledge_seed(*, path: Path = SEED_FILE) -> SeedResult:
    """Load the shop's FAQ (``fixtures/faq_zh.json``), published. Idempotent: an article whose
    key exists is left as it is (staff may have edited it), so running it again adds only
    articles new to the file. One audit entry for the articles added."""
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = data["articles"]
    created = 0
    with transaction.atomic():
        existing = set(Article.objects.values_list("key", flat=True))
        for row in rows:
            values = rules.article_clean(
                {name: row[name] for name in rules.ARTICLE_FIELDS if name in row}
                | {"is_published": row.get("is_published", True)}
            )
            if values["key"] in existing:
                continue
            Article.objects.create(**values, created_by="seed", updated_by="seed")
            existing.add(values["key"])
            created += 1
        if created:
            audit_record(
                AuditEntry(
                    action="create",
                    entity_type="knowledge.article",
                    summary=f"FAQ seeded: {created} articles added from {path.name}",
                    changes={"created": created, "file": path.name},
                ),
                actor_label="system",
            )
    return SeedResult(created=created, existing=len(rows) - created)
