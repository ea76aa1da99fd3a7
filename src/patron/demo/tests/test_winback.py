"""The demo's win-back programme: made once, replayed as a placebo 90 days before the end of
the history on the risks as of that day, paused, and evaluated on the orders in the windows.

The risks as of the replay's day come from the intelligence pipeline (tested on its own); here
they are given, so that the demo's own logic is checked on a handful of customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from patron.conftest import make_customer, make_order
from patron.demo import winback
from patron.marketing.models import WinbackEnrolment, WinbackProgramme
from patron.marketing.services import CustomerRisk
from patron.outbox.models import Message

pytestmark = pytest.mark.django_db

END = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def test_the_demo_replays_a_placebo_and_shows_a_figure(monkeypatch: Any) -> None:
    # given: 30 customers at risk 90 days before the end, 10 not; some ordered in the window
    customers = [make_customer(name=f"演示{i}") for i in range(40)]
    entered = END - timedelta(days=90)
    for i, person in enumerate(customers[:30]):
        if i % 4 == 0:
            paid = entered + timedelta(days=20)
            make_order(person, external_id=f"SO-D{i}", placed_at=paid, total="150.00", paid_at=paid)
    risks = {
        c.pk: CustomerRisk(0.8 if i < 30 else 0.3, Decimal("2000") if i < 5 else Decimal("100"),
                           "ordinary", entered.date())
        for i, c in enumerate(customers)
    }  # fmt: skip
    asked: list[datetime] = []

    def risks_as_of(cutoff: datetime) -> dict[int, CustomerRisk]:
        asked.append(cutoff)
        return risks

    monkeypatch.setattr(winback, "_risks_as_of", risks_as_of)

    # when
    first = winback.demo_winback(as_of=END, seed=7)
    again = winback.demo_winback(as_of=END, seed=7)

    # then
    assert first == again and asked == [entered]  # made once
    programme = WinbackProgramme.objects.get()
    assert programme.is_active is False
    assert (first.at_risk, first.treatment + first.holdout, first.high_value) == (30, 30, 5)
    assert first.enrolled_at == entered
    assert first.uplift is not None and first.low is not None and first.high is not None
    assert first.low <= first.uplift <= first.high
    assert WinbackEnrolment.objects.count() == 30
    assert not Message.objects.exists()  # a placebo sends nothing
