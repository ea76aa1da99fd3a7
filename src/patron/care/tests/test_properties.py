"""Care as a property: whatever the customers (grades, birthdays, consent, dedicated agents),
the policy (coupons with little stock or budget, days ahead, visit intervals) and the day,
running care for that day twice does exactly what running it once does — nothing is sent,
issued or opened twice — and no coupon template ever goes beyond its stock."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.account.models import User
from patron.care import services
from patron.care.models import CareTouch
from patron.care.tests import factories
from patron.conftest import make_user
from patron.marketing.models import Coupon
from patron.outbox.models import Message
from patron.service.models import DedicatedAgent, Ticket

DAYS = [
    date(2026, 2, 14),  # three days before the Spring Festival
    date(2026, 2, 17),  # the Spring Festival
    date(2026, 2, 28),  # leaplings' day in a common year
    date(2026, 9, 23),  # Mid-Autumn's window
    date(2026, 12, 30),  # New Year's Day ahead
    date(2028, 2, 29),
]
CUSTOMER = st.fixed_dictionaries(
    {
        "grade": st.sampled_from(["core", "potential", "ordinary", None]),
        "birthday": st.one_of(
            st.none(), st.just("leap"), st.integers(min_value=-1, max_value=1)
        ),  # days from the run's day
        "marketing": st.sampled_from([True, False, None]),
        "dedicated": st.booleans(),
        "since_days": st.integers(min_value=0, max_value=200),
    }
)
POLICY = st.fixed_dictionaries(
    {
        "stock": st.one_of(st.none(), st.integers(min_value=0, max_value=3)),
        "budget": st.sampled_from([None, Decimal("20"), Decimal("45")]),
        "birthday_coupon": st.booleans(),
        "holiday_coupon": st.booleans(),
        "days_ahead": st.integers(min_value=0, max_value=4),
        "interval": st.sampled_from([None, 30, 90]),
    }
)


@pytest.fixture
def people() -> tuple[User, User]:
    return factories.marketer("prop-marketer"), make_user("service_agent", username="prop-agent")


def _state() -> dict[str, Any]:
    return {
        "touches": sorted(
            CareTouch.objects.values_list(
                "customer_id", "kind", "occasion", "outcome", "offer", "coupon_id", "ticket_id"
            )
        ),
        "messages": sorted(Message.objects.values_list("key", "status")),
        "coupons": sorted(Coupon.objects.values_list("code", "customer_id")),
        "tickets": Ticket.objects.count(),
    }


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    customers=st.lists(CUSTOMER, min_size=1, max_size=6),
    policy=POLICY,
    day=st.sampled_from(DAYS),
)
def test_running_a_day_twice_is_running_it_once(
    people: tuple[User, User], customers: list[dict[str, Any]], policy: dict[str, Any], day: date
) -> None:
    marketer, agent = people
    with transaction.atomic():
        # given
        template = factories.coupon_template(stock=policy["stock"], budget=policy["budget"])
        for grade in ("core", "potential", "ordinary"):
            factories.policy(
                grade,
                user=marketer,
                birthday_coupon_template_id=template.pk if policy["birthday_coupon"] else None,
                holiday_coupon_template_id=template.pk if policy["holiday_coupon"] else None,
                holidays=["new_year", "spring_festival", "mid_autumn"],
                holiday_days_ahead=policy["days_ahead"],
                visit_interval_days=policy["interval"],
            )
        for n, spec in enumerate(customers):
            birthday = None
            if spec["birthday"] == "leap":
                birthday = date(1996, 2, 29)
            elif spec["birthday"] is not None:
                birthday = (day + timedelta(days=spec["birthday"])).replace(year=1992)
            made = factories.customer(
                f"客户{n}",
                grade=spec["grade"],
                birthday=birthday,
                marketing=spec["marketing"],
                grade_since=day - timedelta(days=spec["since_days"]),
            )
            if spec["dedicated"]:
                DedicatedAgent.objects.create(customer=made, user=agent)

        # when
        once = services.care_run(day=day)
        after_once = _state()
        twice = services.care_run(day=day)

        # then
        assert twice.done == 0
        assert _state() == after_once
        assert twice.birthday.already == once.birthday.done
        assert twice.holiday.already == once.holiday.done
        if policy["stock"] is not None:
            assert Coupon.objects.filter(template=template).count() <= policy["stock"]
        transaction.set_rollback(True)
