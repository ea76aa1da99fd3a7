from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from patron.jobs import services
from patron.jobs.tests import sample_tasks

# 2026-11-20 10:00 in Shanghai (UTC+8): the nightly 02:00 slot of today is already due.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Clock:
    """A fixed clock for the scheduler, in a merchant in Shanghai."""
    settings.TIME_ZONE = "Asia/Shanghai"
    fake = Clock(NOW)
    monkeypatch.setattr(services, "clock", fake)
    return fake


@dataclass(frozen=True)
class FakeScoreRun:
    pk: int
    as_of: date
    status: str
    customers: int


@pytest.fixture
def scoring_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the scoring pipeline (the edge of this app) with a recorder."""
    calls: list[dict[str, Any]] = []

    def score_customers(**kwargs: Any) -> FakeScoreRun:
        calls.append(kwargs)
        return FakeScoreRun(pk=41, as_of=kwargs["as_of"], status="completed", customers=1200)

    monkeypatch.setattr("patron.scoring.services.score_customers", score_customers)
    return calls


@pytest.fixture
def sample_calls() -> Iterator[list[dict[str, str]]]:
    sample_tasks.CALLS.clear()
    yield sample_tasks.CALLS
    sample_tasks.CALLS.clear()


def utc(text: str) -> datetime:
    """A UTC instant from ``YYYY-MM-DD HH:MM``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
