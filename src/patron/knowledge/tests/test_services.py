"""Services: writing articles (validated, audited, permission), publishing, feedback, the seed
FAQ, and the automatic-reply decision with its threshold setting."""

from __future__ import annotations

from typing import Any

import pytest

from patron.account.roles import Role
from patron.audit.models import AuditEvent
from patron.conftest import make_user
from patron.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from patron.knowledge import rules, selectors, services
from patron.knowledge.models import Article, Feedback
from patron.knowledge.tests.conftest import make_article

pytestmark = pytest.mark.django_db


def test_create_cleans_the_fields_and_audits() -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER, username="ops-zhao")

    # when
    article = services.article_create(
        user=manager,
        data={
            "question": "  怎么开发票？ ",
            "answer": "结算页选择发票。",
            "category": "invoice",
            "alternatives": ["开发票", " 开发票 ", "补开发票"],
            "tags": ["发票"],
        },
    )

    # then
    article.refresh_from_db()
    assert article.key == f"faq-{article.pk}"
    assert (article.question, article.alternatives) == ("怎么开发票？", ["开发票", "补开发票"])
    assert (article.language, article.is_published) == ("zh", False)
    assert (article.created_by, article.updated_by) == ("ops-zhao", "ops-zhao")
    event = AuditEvent.objects.get(entity_type="knowledge.article", entity_id=str(article.pk))
    assert (event.action, event.actor_label) == ("create", "ops-zhao")
    assert event.changes["question"] == "怎么开发票？"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"question": " ", "answer": "a", "category": "x"}, "article.question: a text is required"),
        ({"question": "q", "answer": "a", "category": "运费"}, "article.category: 1 to 50 letters, digits, '-' or '_'"),
        ({"question": "q", "answer": "a", "category": "x", "language": "fr"}, "article.language: one of zh, en"),
        ({"question": "q", "answer": "a"}, "article.category: required"),
        ({"question": "q", "answer": "a" * 4001, "category": "x"}, "article.answer: at most 4000 characters"),
        ({"question": "q", "answer": "a", "category": "x", "tags": ["ok", ""]}, "article.tags[1]: a text is required"),
        ({"question": "q", "answer": "a", "category": "x", "colour": "red"}, "article.colour: not a field of an article"),
    ],
)  # fmt: skip
def test_invalid_articles_are_refused_naming_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.article_create(user=make_user(Role.ADMINISTRATOR), data=data)
    assert refused.value.message == message
    assert Article.objects.count() == 0


def test_a_key_in_use_is_a_conflict() -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    first = make_article(manager, key="refund-time")
    other = make_article(manager, key="invoice", question="发票", category="invoice")

    # when / then
    with pytest.raises(Conflict):
        make_article(manager, key="refund-time")
    with pytest.raises(Conflict):
        services.article_update(user=manager, article_id=other.pk, changes={"key": first.key})
    assert Article.objects.get(pk=other.pk).key == "invoice"


@pytest.mark.parametrize("role", [Role.SERVICE_AGENT, Role.AUDITOR, Role.MARKETER, Role.ANALYST])
def test_only_managers_and_administrators_write_articles(role: Role) -> None:
    # given
    article = make_article()
    user = make_user(role)

    # when / then
    with pytest.raises(PermissionDenied):
        services.article_create(user=user, data={"question": "q", "answer": "a", "category": "x"})
    with pytest.raises(PermissionDenied):
        services.article_update(user=user, article_id=article.pk, changes={"question": "改"})
    with pytest.raises(PermissionDenied):
        services.article_unpublish(user=user, article_id=article.pk)
    article.refresh_from_db()
    assert (article.question, article.is_published) == ("退款多久到账？", True)


def test_update_audits_old_and_new_values_and_nothing_when_nothing_changed() -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    article = make_article(manager)
    before = AuditEvent.objects.count()

    # when
    services.article_update(
        user=manager,
        article_id=article.pk,
        changes={"question": "退款几天到账？", "language": "zh"},
    )
    services.article_update(user=manager, article_id=article.pk, changes={"language": "zh"})

    # then
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert len(events) == 1
    assert events[0].changes == {"question": {"old": "退款多久到账？", "new": "退款几天到账？"}}


def test_publish_and_unpublish_are_audited_and_idempotent() -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    article = make_article(manager, is_published=False)
    before = AuditEvent.objects.count()

    # when
    services.article_publish(user=manager, article_id=article.pk)
    services.article_publish(user=manager, article_id=article.pk)
    services.article_unpublish(user=manager, article_id=article.pk)

    # then
    summaries = list(AuditEvent.objects.order_by("id")[before:].values_list("summary", flat=True))
    assert summaries == [
        f"FAQ article {article.key!r} published",
        f"FAQ article {article.key!r} unpublished",
    ]
    assert Article.objects.get(pk=article.pk).is_published is False


def test_an_unknown_article_is_not_found() -> None:
    manager = make_user(Role.OPERATIONS_MANAGER)
    with pytest.raises(NotFound):
        services.article_update(user=manager, article_id=999, changes={"question": "q"})
    with pytest.raises(NotFound):
        services.article_publish(user=manager, article_id=999)
    with pytest.raises(NotFound):
        services.feedback_record(999, None, True)


def test_feedback_is_recorded_by_the_system_or_an_agent() -> None:
    # given
    article = make_article()
    agent = make_user(Role.SERVICE_AGENT, username="agent-li")

    # when
    services.feedback_record(article.pk, 42, True, is_auto_reply=True)
    services.feedback_record(article.pk, None, False, user=agent)
    services.feedback_record(article.pk, 43, True, user=agent)

    # then
    rows = list(
        Feedback.objects.order_by("id").values_list(
            "ticket_id", "helped", "is_auto_reply", "recorded_by"
        )
    )
    assert rows == [
        (42, True, True, "system"),
        (None, False, False, "agent-li"),
        (43, True, False, "agent-li"),
    ]
    summary = selectors.feedback_summaries([article.pk])[article.pk]
    assert (summary.helped, summary.not_helped, summary.helped_share) == (2, 1, 2 / 3)


def test_feedback_refuses_bad_input_and_auditors() -> None:
    article = make_article()
    with pytest.raises(ValidationFailed, match="ticket_id"):
        services.feedback_record(article.pk, 0, True)
    with pytest.raises(ValidationFailed, match="helped"):
        services.feedback_record(article.pk, None, "yes")  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        services.feedback_record(article.pk, None, True, user=make_user(Role.AUDITOR))
    assert Feedback.objects.count() == 0


def test_the_seed_is_idempotent_and_keeps_edits(seeded: services.SeedResult) -> None:
    # given
    manager = make_user(Role.OPERATIONS_MANAGER)
    refund = Article.objects.get(key="refund-time")
    services.article_update(user=manager, article_id=refund.pk, changes={"answer": "改过的答案"})

    # when
    again = services.knowledge_seed()

    # then
    assert (seeded.created, seeded.existing) == (43, 0)
    assert (again.created, again.existing) == (0, 43)
    assert Article.objects.get(key="refund-time").answer == "改过的答案"
    assert Article.objects.filter(is_published=True).count() == 43
    assert Article.objects.filter(language="en").count() == 8


def test_decide_auto_reply_respects_the_threshold(
    seeded: services.SeedResult, settings: Any
) -> None:
    # given
    question = "退款什么时候到账"
    best = selectors.suggest(question, k=1)[0]
    assert best.key == "refund-time" and best.confidence >= rules.AUTO_REPLY_THRESHOLD

    # when / then: the default threshold
    assert selectors.auto_reply_threshold() == rules.AUTO_REPLY_THRESHOLD
    assert services.decide_auto_reply(question) == best
    # just above the best confidence: an agent answers
    settings.PATRON_FAQ_AUTO_REPLY_CONFIDENCE = best.confidence + 0.01
    assert services.decide_auto_reply(question) is None
    # at it: sent
    settings.PATRON_FAQ_AUTO_REPLY_CONFIDENCE = str(best.confidence)
    assert services.decide_auto_reply(question) == best
    # above 1: automatic replies are off
    settings.PATRON_FAQ_AUTO_REPLY_CONFIDENCE = 1.5
    assert services.decide_auto_reply(question) is None
    # nonsense: the default, not an error
    settings.PATRON_FAQ_AUTO_REPLY_CONFIDENCE = "high"
    assert selectors.auto_reply_threshold() == rules.AUTO_REPLY_THRESHOLD


def test_no_auto_reply_for_questions_without_an_answer(seeded: services.SeedResult) -> None:
    assert services.decide_auto_reply("") is None
    assert services.decide_auto_reply("你好") is None
    assert services.decide_auto_reply("空气炸锅怎么清洗") is None


def test_the_threshold_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # given
    if hasattr(settings, "PATRON_FAQ_AUTO_REPLY_CONFIDENCE"):
        del settings.PATRON_FAQ_AUTO_REPLY_CONFIDENCE
    monkeypatch.setenv("PATRON_FAQ_AUTO_REPLY_CONFIDENCE", "0.55")

    # then
    assert selectors.auto_reply_threshold() == 0.55
