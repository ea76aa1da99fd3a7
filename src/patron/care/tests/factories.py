"""Small factories for the care tests (plain ORM and the real services, no mocks)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from patron.account.models import User
from patron.account.roles import Role
from patron.care import services
from patron.care.models import GradeMeasure
from patron.conftest import make_customer, make_user
from patron.customer.models import Consent, Customer
from patron.marketing.models import CouponTemplate
from patron.scoring.models import CustomerScore, GradeHistory, ScoreRun

_numbers = itertools.count(1)


def _run() -> ScoreRun:
    return ScoreRun.objects.first() or ScoreRun.objects.create(
        as_of=date(2026, 1, 1), status="completed", started_at=timezone.now()
    )


def consent(customer: Customer, *, purpose: str, channel: str, granted: bool) -> None:
    Consent.objects.create(
        source="patron",
        external_id=f"care-test-{next(_numbers)}",
        customer=customer,
        purpose=purpose,
        channel=channel,
        is_granted=granted,
        recorded_at=timezone.now() - timedelta(days=30),
    )


def customer(
    name: str,
    *,
    grade: str | None = "core",
    birthday: date | None = None,
    grade_since: date | None = date(2026, 6, 1),
    marketing: bool | None = True,
    **fields: Any,
) -> Customer:
    """A customer with an e-mail address, ``grade`` (None: not graded yet) held since
    ``grade_since`` (a core customer's first visit falls in the 90 days after it) and, unless
    ``marketing`` is None, a marketing consent on e-mail granted or refused."""
    fields.setdefault("email", f"care{next(_numbers)}@example.com")
    made = make_customer(name=name, birthday=birthday, **fields)
    if grade is not None:
        run = _run()
        CustomerScore.objects.create(customer=made, run=run, as_of=run.as_of, grade=grade)
        if grade_since is not None:
            GradeHistory.objects.create(
                customer=made,
                grade=grade,
                valid_from=grade_since,
                run=run,
                policy_version=1,
            )
    if marketing is not None:
        consent(made, purpose="marketing", channel="email", granted=marketing)
    return made


def marketer(username: str = "") -> User:
    return make_user(Role.MARKETER, username=username or None)


def coupon_template(**fields: Any) -> CouponTemplate:
    values: dict[str, Any] = {
        "name": f"生日券 {next(_numbers)}",
        "kind": "amount_off",
        "value": Decimal("20.00"),
        "min_order_amount": Decimal("200.00"),
        "valid_days": 30,
        "per_customer_limit": None,
        "stock": None,
        "budget": None,
    }
    values.update(fields)
    return CouponTemplate.objects.create(**values)


def policy(grade: str, *, user: User | None = None, **data: Any) -> GradeMeasure:
    """Change ``grade``'s row through the service (as ``user``, default a new marketer)."""
    return services.care_measures_save(user=user or marketer(), grade=grade, data=data)
