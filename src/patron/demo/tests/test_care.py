"""The demo's care: the policy with the merchant's coupons, and the run of the demo's last
day, twice without a difference."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from patron.care.models import CareTouch, GradeMeasure
from patron.care.tests import factories
from patron.demo.care import demo_care
from patron.demo.params import SHANGHAI
from patron.marketing.models import Coupon, CouponTemplate

pytestmark = pytest.mark.django_db

LAST_DAY = datetime(2026, 10, 31, 23, 59, 59, tzinfo=SHANGHAI)


def test_the_demo_sets_the_policy_and_runs_care_for_its_last_day() -> None:
    # given: birthdays on the demo's last day
    factories.customer("核心", grade="core", birthday=date(1985, 10, 31))
    factories.customer("普通", grade="ordinary", birthday=date(1999, 10, 31))
    factories.customer("未同意", grade="potential", birthday=date(1990, 10, 31), marketing=False)

    # when
    first = demo_care(as_of=LAST_DAY)
    again = demo_care(as_of=LAST_DAY)

    # then
    assert first == again
    assert (first.day, first.birthday_greetings, first.not_sent, first.coupons) == (
        "2026-10-31",
        2,
        1,
        2,
    )
    assert CouponTemplate.objects.count() == 3
    ordinary = GradeMeasure.objects.get(grade="ordinary")
    assert ordinary.birthday_coupon_template.name == "升级券 满99减10"  # type: ignore[union-attr]
    assert ordinary.version == 2
    assert sorted(Coupon.objects.values_list("template__name", flat=True)) == [
        "升级券 满99减10",
        "生日礼券 满200减50",
    ]
    assert CareTouch.objects.filter(kind="birthday").count() == 3
