"""Care on the demo merchant: the measures by grade with coupons of the merchant's own (a
birthday coupon per grade, a holiday coupon, a smaller "move up" coupon for ordinary
customers), chosen by the demo's marketer, and the care run of the demo's last day —
birthday greetings through the outbox (with the consent the demo customers gave), holiday
greetings if a festival is near, and the follow-up visits due.

Everything goes through the real services; running it twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from patron.account.models import User
from patron.account.services import user_create
from patron.care import services as care
from patron.care.models import CareTouch
from patron.care.selectors import care_upcoming
from patron.marketing import services as marketing
from patron.marketing.models import CouponTemplate

MARKETER = "demo-marketer"
#: name -> terms: the merchant's care coupons (stock and budget keep them in bounds).
COUPONS: dict[str, dict[str, Any]] = {
    "生日礼券 满200减50": {
        "kind": "amount_off",
        "value": Decimal("50"),
        "min_order_amount": Decimal("200"),
        "valid_days": 30,
        "per_customer_limit": None,
        "stock": 20_000,
        "budget": Decimal("200000"),
    },
    "节日礼券 满300减30": {
        "kind": "amount_off",
        "value": Decimal("30"),
        "min_order_amount": Decimal("300"),
        "valid_days": 14,
        "per_customer_limit": None,
        "stock": 50_000,
        "budget": Decimal("300000"),
    },
    "升级券 满99减10": {
        "kind": "amount_off",
        "value": Decimal("10"),
        "min_order_amount": Decimal("99"),
        "valid_days": 30,
        "per_customer_limit": None,
        "stock": 50_000,
        "budget": Decimal("100000"),
    },
}


@dataclass(frozen=True)
class DemoCare:
    day: str
    birthday_greetings: int
    holiday_greetings: int
    not_sent: int
    coupons: int
    visits: int
    upcoming_days: int


def _marketer() -> User:
    found = User.objects.filter(username=MARKETER).first()
    return found or user_create(username=MARKETER, role="marketer")


def _template(marketer: User, name: str) -> CouponTemplate:
    found = CouponTemplate.objects.filter(name=name).first()
    if found is not None:
        return found
    return marketing.coupon_template_create(user=marketer, data={"name": name, **COUPONS[name]})


def demo_care_policy() -> dict[str, int]:
    """The default measures by grade, with the demo merchant's coupons: core and potential
    customers get the birthday coupon and the holiday coupon; ordinary customers the small
    coupon that invites them to buy again and move up. Grade -> version of the row."""
    marketer = _marketer()
    birthday = _template(marketer, "生日礼券 满200减50")
    holiday = _template(marketer, "节日礼券 满300减30")
    move_up = _template(marketer, "升级券 满99减10")
    offers = {
        "core": (birthday, holiday),
        "potential": (birthday, holiday),
        "ordinary": (move_up, move_up),
    }
    versions = {}
    for grade, (on_birthday, on_holiday) in offers.items():
        row = care.care_measures_save(
            user=marketer,
            grade=grade,
            data={
                "birthday_coupon_template_id": on_birthday.pk,
                "holiday_coupon_template_id": on_holiday.pk,
            },
            note="demo: the merchant's care coupons",
        )
        versions[grade] = row.version
    return versions


def demo_care(*, as_of: datetime) -> DemoCare:
    """Set the policy (``demo_care_policy``) and run care for the demo's last day, ``as_of``
    (its date in the merchant's time zone). Idempotent: a second call finds the day done and
    reports what was done on it."""
    demo_care_policy()
    day = timezone.localdate(as_of) if timezone.is_aware(as_of) else as_of.date()
    care.care_run(day=day)
    done = CareTouch.objects.filter(run_on=day)
    greeted = done.filter(outcome=CareTouch.Outcome.MESSAGED)
    upcoming = care_upcoming(days=30)
    return DemoCare(
        day=day.isoformat(),
        birthday_greetings=greeted.filter(kind=CareTouch.Kind.BIRTHDAY).count(),
        holiday_greetings=greeted.filter(kind=CareTouch.Kind.HOLIDAY).count(),
        not_sent=done.filter(outcome=CareTouch.Outcome.SUPPRESSED).count(),
        coupons=done.filter(offer=CareTouch.Offer.ISSUED).count(),
        visits=done.filter(kind=CareTouch.Kind.VISIT).count(),
        upcoming_days=len({entry.on for entry in upcoming}),
    )
