"""The FAQ pages: who may open them, the live suggestions (htmx), writing, editing and
publishing an article, and the evaluation page."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.account.roles import Role
from patron.conftest import ALL_ROLES, make_user
from patron.knowledge import services
from patron.knowledge.models import Article
from patron.knowledge.tests.conftest import make_article

pytestmark = pytest.mark.django_db

READERS = {"administrator", "operations_manager", "service_agent", "auditor"}
WRITERS = {"administrator", "operations_manager"}


def _client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("role", [*ALL_ROLES, "no_role"])
@pytest.mark.parametrize("page", ["list", "suggest", "article", "new", "evaluation"])
def test_role_page_matrix(role: str, page: str) -> None:
    # given
    article = make_article()
    url = {
        "list": "/service/faq/",
        "suggest": "/service/faq/suggest/?q=退款",
        "article": f"/service/faq/{article.pk}/",
        "new": "/service/faq/new/",
        "evaluation": "/service/faq/evaluation/",
    }[page]
    allowed = WRITERS if page == "new" else READERS

    # when
    response = _client(role).get(url)

    # then
    assert response.status_code == (200 if role in allowed else 403), (role, page)


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get("/service/faq/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_agent_sees_articles_and_live_suggestions(seeded: services.SeedResult) -> None:
    # given
    client = _client(Role.SERVICE_AGENT)

    # when
    page = client.get("/service/faq/?q=退款")
    partial = client.get("/service/faq/suggest/?q=退款什么时候到账", HTTP_HX_REQUEST="true")
    weak = client.get("/service/faq/suggest/?q=空气炸锅怎么清洗", HTTP_HX_REQUEST="true")
    nothing = client.get(
        "/service/faq/suggest/?q=laptop+compatible+with+Mac", HTTP_HX_REQUEST="true"
    )

    # then
    html = page.content.decode()
    assert 'data-testid="faq-table"' in html and 'hx-get="/service/faq/suggest/"' in html
    assert "New article" not in html  # agents read, they do not write
    fragment = partial.content.decode()
    assert "<html" not in fragment
    assert 'data-testid="faq-suggestion-refund-time"' in fragment
    assert 'data-testid="auto-reply"' in fragment
    assert 'data-testid="auto-reply"' not in weak.content.decode()
    assert 'data-testid="faq-no-suggestion"' in nothing.content.decode()


def test_a_manager_writes_edits_and_publishes_an_article() -> None:
    # given
    client = _client(Role.OPERATIONS_MANAGER)

    # when
    created = client.post(
        "/service/faq/new/",
        {
            "question": "可以开发票吗？",
            "alternatives": "开发票\n补开发票\n",
            "answer": "可以，结算页选择发票。",
            "category": "invoice",
            "language": "zh",
            "tags": "发票，报销",
        },
    )
    article = Article.objects.get()
    edited = client.post(
        f"/service/faq/{article.pk}/",
        {
            "action": "save",
            "key": article.key,
            "question": "怎么开发票？",
            "alternatives": "开发票",
            "answer": "结算页选择发票。",
            "category": "invoice",
            "language": "zh",
            "tags": "发票",
        },
    )
    published = client.post(f"/service/faq/{article.pk}/", {"action": "publish"})

    # then
    assert created.status_code == 302 and created["Location"] == f"/service/faq/{article.pk}/"
    assert edited.status_code == published.status_code == 302
    article.refresh_from_db()
    assert (article.question, article.alternatives, article.tags) == (
        "怎么开发票？",
        ["开发票"],
        ["发票"],
    )
    assert article.is_published is True
    assert 'data-testid="published"' in client.get(f"/service/faq/{article.pk}/").content.decode()


def test_a_refused_form_names_the_field_and_keeps_the_input() -> None:
    # when
    response = _client(Role.ADMINISTRATOR).post(
        "/service/faq/new/",
        {"question": "能开发票吗", "answer": "可以", "category": "运费", "language": "zh"},
    )

    # then
    assert response.status_code == 422
    html = response.content.decode()
    assert "article.category" in html and "能开发票吗" in html
    assert Article.objects.count() == 0


def test_an_agent_cannot_change_an_article() -> None:
    # given
    article = make_article()

    # when
    response = _client(Role.SERVICE_AGENT).post(
        f"/service/faq/{article.pk}/", {"action": "unpublish"}
    )

    # then
    assert response.status_code == 403
    assert Article.objects.get(pk=article.pk).is_published is True


def test_the_evaluation_page_shows_the_figures(seeded: services.SeedResult) -> None:
    html = _client(Role.SERVICE_AGENT).get("/service/faq/evaluation/").content.decode()
    assert 'data-testid="hit-at-1"' in html and 'data-testid="threshold-table"' in html
    assert 'data-testid="unknown-labels"' not in html


def test_an_unknown_article_page_is_404() -> None:
    assert _client(Role.SERVICE_AGENT).get("/service/faq/999/").status_code == 404
