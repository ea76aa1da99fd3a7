"""Care runs racing each other, each thread on its own database connection (PostgreSQL only:
SQLite serialises writers, so there is no race to lose there). Whatever the interleaving,
every customer is greeted once, every coupon issued once and within the stock, and every
visit opened once."""

from __future__ import annotations

from datetime import date

import pytest

from patron.care import services
from patron.care.models import CareTouch
from patron.care.tests import factories
from patron.conftest import race, require_postgresql
from patron.marketing.models import Coupon
from patron.outbox.models import Message
from patron.service.models import Ticket

THREADS = 4


@pytest.mark.django_db(transaction=True)
def test_parallel_runs_of_one_day_do_everything_once() -> None:
    require_postgresql()
    # given: five core customers born on 7 March whose first visit is due, a coupon with
    # stock for three
    template = factories.coupon_template(stock=3)
    factories.policy("core", birthday_coupon_template_id=template.pk)
    for n in range(5):
        factories.customer(
            f"并发{n}", grade="core", birthday=date(1990, 3, 7), grade_since=date(2025, 11, 1)
        )

    # when
    results = race(*[(lambda: services.care_run(day=date(2026, 3, 7))) for _ in range(THREADS)])

    # then
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.birthday.messaged for r in results) == 5
    assert CareTouch.objects.filter(kind="birthday").count() == 5
    assert Message.objects.filter(template="care.birthday").count() == 5
    assert Coupon.objects.filter(template=template).count() == 3
    assert CareTouch.objects.filter(kind="visit").count() == 5
    assert Ticket.objects.count() == 5
