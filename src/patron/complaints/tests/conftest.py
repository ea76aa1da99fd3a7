"""Factories of the complaint tests: desk tickets made through the ORM (``source="patron"``),
a department, a complaint recorded from a ticket, and one taken to a given stage through the
services (each step an hour after the previous, from a fixed start)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from patron.account.models import User
from patron.account.roles import Role
from patron.complaints import services
from patron.complaints.models import Complaint
from patron.conftest import make_customer, make_user
from patron.customer.models import Customer
from patron.service.models import Team, Ticket

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def make_ticket(customer: Customer, **fields: Any) -> Ticket:
    number = next(_numbers)
    values: dict[str, Any] = {
        "source": "patron",
        "external_id": f"TT-{number}",
        "customer": customer,
        "channel": Ticket.Channel.PHONE,
        "subject": f"投诉：商品与描述严重不符 {number}",
        "opened_at": START,
        "is_complaint": True,
        "priority": Ticket.Priority.HIGH,
        "status": Ticket.Status.OPEN,
    }
    values.update(fields)
    return Ticket.objects.create(**values)


@pytest.fixture
def agent(db: None) -> User:
    return make_user(Role.SERVICE_AGENT, username="agent-zhao")


@pytest.fixture
def customer(db: None) -> Customer:
    return make_customer(name="刘洋", email="liu.yang@example.com")


@pytest.fixture
def team(db: None) -> Team:
    return Team.objects.create(
        slug="quality-test", name="质量与投诉 Quality", is_escalation_target=True
    )


@pytest.fixture
def ticket(customer: Customer) -> Ticket:
    return make_ticket(customer)


@pytest.fixture
def complaint(ticket: Ticket) -> Complaint:
    recorded = services.complaint_record_from_ticket(ticket_id=ticket.pk)
    assert recorded is not None
    return recorded


def at_hour(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def walk(complaint: Complaint, user: User, team: Team, *, to: str) -> Complaint:
    """Take ``complaint`` to stage ``to`` along the happy path, one step per hour."""
    steps: list[tuple[str, Callable[[], Complaint]]] = [
        (
            "investigating",
            lambda: services.complaint_assign(
                user=user, complaint_id=complaint.pk, team_id=team.pk, now=at_hour(1)
            ),
        ),
        (
            "resolution_proposed",
            lambda: services.complaint_propose(
                user=user,
                complaint_id=complaint.pk,
                findings="质检漏检",
                resolution="全额退款并补发新品",
                now=at_hour(2),
            ),
        ),
        (
            "accepted",
            lambda: services.complaint_accept(user=user, complaint_id=complaint.pk, now=at_hour(3)),
        ),
        (
            "follow_up_scheduled",
            lambda: services.complaint_schedule_follow_up(
                user=user, complaint_id=complaint.pk, follow_up_at=at_hour(24), now=at_hour(4)
            ),
        ),
        (
            "follow_up_done",
            lambda: services.complaint_complete_follow_up(
                user=user, complaint_id=complaint.pk, notes="客户满意", now=at_hour(25)
            ),
        ),
        (
            "closed",
            lambda: services.complaint_close(
                user=user, complaint_id=complaint.pk, outcome="已退款", now=at_hour(26)
            ),
        ),
    ]
    current = complaint
    for stage, step in steps:
        if current.stage == to:
            break
        current = step()
        assert current.stage == stage
    assert current.stage == to
    return current
