"""The FAQ API: the role × endpoint matrix, articles end to end, 422 naming the field, 404,
suggestions with confidence, feedback, and the evaluation."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import ALL_ROLES, make_user
from patron.knowledge import rules, services
from patron.knowledge.models import Article, Feedback
from patron.knowledge.tests.conftest import make_article

pytestmark = pytest.mark.django_db

READERS = {"administrator", "operations_manager", "service_agent", "auditor"}
WRITERS = {"administrator", "operations_manager"}
FEEDBACK = {"administrator", "operations_manager", "service_agent"}
NEW = {"question": "能开发票吗？", "answer": "可以，结算页选择发票。", "category": "invoice"}


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "ok"),
    [
        ("get", "/api/faq/articles", None, READERS, 200),
        ("get", "/api/faq/articles/{id}", None, READERS, 200),
        ("post", "/api/faq/articles", NEW, WRITERS, 201),
        ("patch", "/api/faq/articles/{id}", {"is_published": False}, WRITERS, 200),
        ("post", "/api/faq/suggest", {"text": "退款多久到账"}, READERS, 200),
        ("post", "/api/faq/articles/{id}/feedback", {"helped": True}, FEEDBACK, 201),
        ("get", "/api/faq/evaluation", None, READERS, 200),
    ],
)
def test_role_endpoint_matrix(
    role: str, method: str, path: str, body: Any, allowed: set[str], ok: int
) -> None:
    # given
    article = make_article()
    client = _client(role)

    # when
    url = path.format(id=article.pk)
    if body is None:
        response = getattr(client, method)(url)
    else:
        response = getattr(client, method)(url, body, "application/json")

    # then
    assert response.status_code == (ok if role in allowed else 403), (role, response.content)
    if role not in allowed:
        article.refresh_from_db()
        assert article.is_published is True
        assert Article.objects.count() == 1 and Feedback.objects.count() == 0


def test_anonymous_requests_are_refused() -> None:
    assert Client().get("/api/faq/articles").status_code == 401


def test_write_read_list_and_change_an_article() -> None:
    # given
    client = _client(Role.OPERATIONS_MANAGER)

    # when
    created = client.post(
        "/api/faq/articles",
        {**NEW, "key": "invoice-basic", "alternatives": ["怎么开票"], "tags": ["发票"]},
        "application/json",
    )
    article_id = created.json()["id"]
    patched = client.patch(
        f"/api/faq/articles/{article_id}",
        {"is_published": True, "tags": ["发票", "报销"]},
        "application/json",
    )
    listed = client.get("/api/faq/articles?q=发票&category=invoice&language=zh&published=true")
    hidden = client.get("/api/faq/articles?published=false")
    one = client.get(f"/api/faq/articles/{article_id}")

    # then
    assert created.status_code == 201
    assert created.json()["key"] == "invoice-basic"
    assert created.json()["is_published"] is False
    assert patched.status_code == 200
    assert (patched.json()["is_published"], patched.json()["tags"]) == (True, ["发票", "报销"])
    assert [a["id"] for a in listed.json()["items"]] == [article_id]
    assert hidden.json()["count"] == 0
    assert one.json()["alternatives"] == ["怎么开票"]
    assert (one.json()["feedback_helped"], one.json()["feedback_not_helped"]) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW, "category": "运费"}, "category"),
        ({**NEW, "question": "   "}, "question"),
        ({**NEW, "language": "fr"}, "language"),
        ({**NEW, "is_published": "yes"}, "is_published"),
        ({"question": "q", "answer": "a"}, "category"),
        ({**NEW, "colour": "red"}, "colour"),
    ],
)
def test_invalid_articles_are_422_naming_the_field(body: dict[str, Any], field: str) -> None:
    # when
    response = _client(Role.ADMINISTRATOR).post("/api/faq/articles", body, "application/json")

    # then
    assert response.status_code == 422
    assert field in response.json()["message"]
    assert Article.objects.count() == 0


def test_a_taken_key_is_409() -> None:
    make_article(key="refund-time")
    response = _client(Role.ADMINISTRATOR).post(
        "/api/faq/articles", {**NEW, "key": "refund-time"}, "application/json"
    )
    assert response.status_code == 409
    assert response.json()["message"] == "article.key: 'refund-time' is taken by another article"


def test_unknown_articles_are_404() -> None:
    client = _client(Role.ADMINISTRATOR)
    assert client.get("/api/faq/articles/999").status_code == 404
    assert (
        client.patch("/api/faq/articles/999", {"question": "q"}, "application/json").status_code
        == 404
    )
    assert (
        client.post(
            "/api/faq/articles/999/feedback", {"helped": True}, "application/json"
        ).status_code
        == 404
    )
    assert client.get(f"/api/faq/articles/{2**70}").status_code == 404


def test_suggest_returns_confidence_and_marks_the_automatic_reply(seeded: Any) -> None:
    # when
    response = _client(Role.SERVICE_AGENT).post(
        "/api/faq/suggest", {"text": "退款什么时候到账", "k": 2}, "application/json"
    )
    blank = _client(Role.SERVICE_AGENT).post("/api/faq/suggest", {"text": "  "}, "application/json")
    bad_k = _client(Role.SERVICE_AGENT).post(
        "/api/faq/suggest", {"text": "退款", "k": 0}, "application/json"
    )

    # then
    body = response.json()
    assert body["threshold"] == rules.AUTO_REPLY_THRESHOLD
    assert [s["key"] for s in body["suggestions"]][:1] == ["refund-time"]
    assert len(body["suggestions"]) == 2
    first, second = body["suggestions"]
    assert first["confidence"] >= rules.AUTO_REPLY_THRESHOLD and first["is_auto_reply"] is True
    assert (second["confidence"], second["is_auto_reply"]) == (0.0, False)
    assert blank.json()["suggestions"] == []
    assert bad_k.status_code == 422 and "k" in bad_k.json()["message"]


def test_feedback_over_the_api() -> None:
    # given
    article = make_article()

    # when
    response = _client(Role.SERVICE_AGENT).post(
        f"/api/faq/articles/{article.pk}/feedback",
        {"helped": False, "ticket_id": 7, "is_auto_reply": True},
        "application/json",
    )
    bad = _client(Role.SERVICE_AGENT).post(
        f"/api/faq/articles/{article.pk}/feedback",
        {"helped": True, "ticket_id": 0},
        "application/json",
    )

    # then
    assert response.status_code == 201
    assert {k: response.json()[k] for k in ("ticket_id", "helped", "is_auto_reply")} == {
        "ticket_id": 7,
        "helped": False,
        "is_auto_reply": True,
    }
    assert bad.status_code == 422 and "ticket_id" in bad.json()["message"]
    assert Feedback.objects.count() == 1


def test_the_evaluation_on_the_shipped_set(seeded: Any) -> None:
    # when
    body = _client(Role.AUDITOR).get("/api/faq/evaluation").json()

    # then
    assert body["pairs"] >= 115 and body["answerable"] >= 100
    assert body["unknown_labels"] == []
    assert body["hit_at_3"] >= 0.95
    assert body["threshold"] == rules.AUTO_REPLY_THRESHOLD
    assert len(body["curve"]) == 19


def test_the_evaluation_without_the_seed_says_which_labels_are_missing() -> None:
    body = _client(Role.AUDITOR).get("/api/faq/evaluation").json()
    assert body["answerable"] == 0
    assert "refund-time" in body["unknown_labels"]
    assert services.SEED_FILE.exists()
