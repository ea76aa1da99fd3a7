"""Factories of the satisfaction tests: tickets as the service desk leaves them (solved, with
SLA targets and breaches, assigned to an agent of a team)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.core.cache import cache

from patron.customer.models import Customer
from patron.service.models import Team, Ticket

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """The suggestion box counts per address in the cache: each test starts with none."""
    cache.clear()


def make_ticket(customer: Customer, **fields: Any) -> Ticket:
    """A ticket opened on the desk; solved unless ``status`` says otherwise."""
    number = next(_numbers)
    values: dict[str, Any] = {
        "source": "patron",
        "external_id": f"T-{number}",
        "channel": Ticket.Channel.WEB,
        "subject": f"Where is my parcel {number}",
        "status": Ticket.Status.SOLVED,
    }
    values.update(fields)
    return Ticket.objects.create(customer=customer, **values)


def make_team(slug: str, name: str) -> Team:
    return Team.objects.create(slug=slug, name=name)
