"""Fixtures of the knowledge tests: a clean index cache, users, and articles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from patron.account.roles import Role
from patron.conftest import make_user
from patron.knowledge import retrieval, services
from patron.knowledge.models import Article


@pytest.fixture(autouse=True)
def _fresh_index() -> Iterator[None]:
    """Each test builds its own index: databases are rolled back between tests."""
    retrieval.index_clear()
    yield
    retrieval.index_clear()


def make_article(user: Any = None, **fields: Any) -> Article:
    """A published article written by an operations manager (fields override the defaults)."""
    data: dict[str, Any] = {
        "question": "退款多久到账？",
        "answer": "审核通过后原路退回，支付宝即时到账，银行卡3–7个工作日。",
        "category": "refunds",
        "alternatives": ["退款什么时候到"],
        "is_published": True,
    }
    data.update(fields)
    return services.article_create(user=user or make_user(Role.OPERATIONS_MANAGER), data=data)


@pytest.fixture
def seeded(db: None) -> services.SeedResult:
    """The shop's whole FAQ, as ``patron knowledge seed`` loads it."""
    return services.knowledge_seed()
