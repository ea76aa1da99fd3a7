"""The service KPIs on a small hand-made set of tickets, every figure computed by hand.

The period is November 2026 in Shanghai: [2026-10-31 16:00 UTC, 2026-11-30 16:00 UTC).

| ticket | agent | team | opened (UTC) | first reply | resolved      | targets | breached | CSAT             |
|--------|-------|------|--------------|-------------|---------------|---------|----------|------------------|
| t1     | alice | T1   | 11-02 02:00  | +10 min     | +4 h          | 30/1440 | –        | 5 (asked, answered) |
| t2     | alice | T1   | 11-03 02:00  | +30 min     | +24 h         | 30/1440 | –        | 4 (asked, answered) |
| t3     | alice | T1   | 11-05 02:00  | +50 min     | +48 h         | 30/1440 | both     | asked, no answer |
| t4     | alice | T2   | 11-10 02:00  | +20 min     | open          | 30/1440 | –        |                  |
| t5     | bob   | T2   | 10-20 02:00  | +60 min (before P) | 11-01 02:00 (+288 h) | none | – | 2 (imported) |
| t6     | bob   | T2   | 11-29 20:00  | +40 min     | 12-01 04:00 (after P) | 30/1440 | reply | |
| t7     | –     | –    | 11-15 02:00  | –           | new           | –       | –        |                  |
| t8     | bob   | T1   | 11-12 02:00  | +5 min      | +1 h          | 30/–    | –        | asked, suppressed |
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from patron.account.roles import Role
from patron.conftest import at, make_customer, make_user
from patron.errors import ValidationFailed
from patron.satisfaction import selectors
from patron.satisfaction.models import CsatRequest
from patron.satisfaction.tests.conftest import make_team, make_ticket
from patron.service.models import Ticket

pytestmark = pytest.mark.django_db

NOVEMBER = {"start": date(2026, 11, 1), "end": date(2026, 11, 30)}
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _request(ticket: Ticket, *, score: int | None = None, suppressed: bool = False) -> None:
    CsatRequest.objects.create(
        ticket=ticket,
        customer=ticket.customer,
        token=f"token-{ticket.pk}",
        sent_at=ticket.solved_at or at("2026-11-20 00:00"),
        is_suppressed=suppressed,
        score=score,
        answered_at=ticket.solved_at if score is not None else None,
    )


@pytest.fixture
def desk() -> dict[str, Any]:
    customer = make_customer()
    alice = make_user(Role.SERVICE_AGENT, username="alice")
    bob = make_user(Role.SERVICE_AGENT, username="bob")
    first_line, logistics = (
        make_team("first-line", "First line"),
        make_team("logistics", "Logistics"),
    )
    targets = {"first_reply_target": 30, "resolution_target": 1440}

    def ticket(
        agent: Any, team: Any, opened: str, reply: int | None, solved: Any, **more: Any
    ) -> Ticket:
        opened_at = at(opened)
        return make_ticket(
            customer,
            assignee=agent,
            team=team,
            opened_at=opened_at,
            first_response_at=opened_at + reply * MINUTE if reply is not None else None,
            solved_at=solved(opened_at) if callable(solved) else solved,
            **more,
        )

    t1 = ticket(
        alice, first_line, "2026-11-02 02:00", 10, lambda o: o + 4 * HOUR, satisfaction=5, **targets
    )
    t2 = ticket(
        alice,
        first_line,
        "2026-11-03 02:00",
        30,
        lambda o: o + 24 * HOUR,
        satisfaction=4,
        **targets,
    )
    t3 = ticket(
        alice,
        first_line,
        "2026-11-05 02:00",
        50,
        lambda o: o + 48 * HOUR,
        first_reply_breached_at=at("2026-11-05 02:30"),
        resolution_breached_at=at("2026-11-06 02:00"),
        **targets,
    )
    ticket(alice, logistics, "2026-11-10 02:00", 20, None, status=Ticket.Status.OPEN, **targets)
    ticket(bob, logistics, "2026-10-20 02:00", 60, at("2026-11-01 02:00"), satisfaction=2)
    ticket(
        bob,
        logistics,
        "2026-11-29 20:00",
        40,
        at("2026-12-01 04:00"),
        first_reply_breached_at=at("2026-11-29 20:30"),
        **targets,
    )
    ticket(None, None, "2026-11-15 02:00", None, None, status=Ticket.Status.NEW)
    t8 = ticket(bob, first_line, "2026-11-12 02:00", 5, lambda o: o + HOUR, first_reply_target=30)
    _request(t1, score=5)
    _request(t2, score=4)
    _request(t3)
    _request(t8, suppressed=True)
    return {"alice": alice, "bob": bob, "first_line": first_line, "logistics": logistics}


def _figures(row: selectors.KpiRow) -> dict[str, Any]:
    return {
        "opened": row.opened,
        "handled": row.handled,
        "frt": (
            row.first_response_count,
            row.first_response_median_minutes,
            row.first_response_mean_minutes,
        ),
        "resolution": (row.resolution_median_hours, row.resolution_mean_hours),
        "resolution_rate": row.resolution_rate,
        "sla": (row.sla_met, row.sla_with_targets, row.sla_attainment),
        "csat": (row.csat_answers, row.csat_average, row.csat_delivered, row.csat_response_rate),
        "backlog": row.backlog,
    }


def test_everyones_kpis_for_the_period(desk: dict[str, Any]) -> None:
    # when
    kpis = selectors.service_kpis(user=make_user(Role.OPERATIONS_MANAGER), **NOVEMBER)
    # then
    assert _figures(kpis.overall) == {
        "opened": 7,  # t1 t2 t3 t4 t6 t7 t8
        "handled": 5,  # t1 t2 t3 t5 t8
        "frt": (6, 25.0, 25.83),  # 5 10 20 30 40 50 minutes
        "resolution": (24.0, 73.0),  # 1 4 24 48 288 hours
        "resolution_rate": pytest.approx(4 / 7),  # t1 t2 t3 t8 of the 7 opened
        "sla": (3, 4, 0.75),  # t1 t2 t8 of t1 t2 t3 t8
        "csat": (3, 3.667, 3, pytest.approx(2 / 3)),  # 5 4 2; asked t1 t2 t3, answered t1 t2
        "backlog": 2,  # t4 t7
    }


def test_kpis_per_agent(desk: dict[str, Any]) -> None:
    # when
    kpis = selectors.service_kpis(user=make_user(Role.SERVICE_AGENT), **NOVEMBER)
    # then
    rows = {row.label: _figures(row) for row in kpis.agents}
    assert list(rows) == ["alice", "bob", "unassigned"]
    assert rows["alice"] == {
        "opened": 4,
        "handled": 3,
        "frt": (4, 25.0, 27.5),  # 10 20 30 50
        "resolution": (24.0, 25.33),  # 4 24 48
        "resolution_rate": 0.75,
        "sla": (2, 3, pytest.approx(2 / 3)),
        "csat": (2, 4.5, 3, pytest.approx(2 / 3)),
        "backlog": 1,
    }
    assert rows["bob"] == {
        "opened": 2,  # t6 t8 (t5 was opened before November)
        "handled": 2,  # t5 t8 (t6 was solved in December)
        "frt": (2, 22.5, 22.5),  # 5 40 (t5's reply was in October)
        "resolution": (144.5, 144.5),  # 1 288
        "resolution_rate": 0.5,
        "sla": (1, 1, 1.0),  # t8 met its only target; t5 has none
        "csat": (1, 2.0, 0, None),  # t8's question was never delivered
        "backlog": 0,
    }
    assert rows["unassigned"] == {
        "opened": 1,
        "handled": 0,
        "frt": (0, None, None),
        "resolution": (None, None),
        "resolution_rate": 0.0,
        "sla": (0, 0, None),
        "csat": (0, None, 0, None),
        "backlog": 1,
    }


def test_kpis_per_team(desk: dict[str, Any]) -> None:
    # when
    kpis = selectors.service_kpis(user=make_user(Role.ANALYST), **NOVEMBER)
    # then
    rows = {row.label: _figures(row) for row in kpis.teams}
    assert list(rows) == ["First line", "Logistics", "no team"]
    assert rows["First line"] == {
        "opened": 4,
        "handled": 4,
        "frt": (4, 20.0, 23.75),  # 5 10 30 50
        "resolution": (14.0, 19.25),  # 1 4 24 48
        "resolution_rate": 1.0,
        "sla": (3, 4, 0.75),
        "csat": (2, 4.5, 3, pytest.approx(2 / 3)),
        "backlog": 0,
    }
    assert rows["Logistics"] == {
        "opened": 2,
        "handled": 1,
        "frt": (2, 30.0, 30.0),  # 20 40
        "resolution": (288.0, 288.0),
        "resolution_rate": 0.0,
        "sla": (0, 0, None),
        "csat": (1, 2.0, 0, None),
        "backlog": 1,
    }


def test_a_period_ending_before_it_starts_is_refused_naming_the_field() -> None:
    # when
    with pytest.raises(ValidationFailed) as refused:
        selectors.service_kpis(
            user=make_user(Role.OPERATIONS_MANAGER), start=date(2026, 11, 30), end=date(2026, 11, 1)
        )
    # then
    assert refused.value.message == "end: 2026-11-01 is before start 2026-11-30"
