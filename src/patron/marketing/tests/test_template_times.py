"""A template's times arrive with any offset the API allows; they are kept in UTC (PostgreSQL
refuses offsets beyond ±15:59, which ISO 8601 allows: found by the API fuzzer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from patron.account.roles import Role
from patron.conftest import make_user
from patron.marketing.services import coupon_template_create

pytestmark = pytest.mark.django_db


def test_a_far_offset_is_stored_as_the_same_instant_in_utc() -> None:
    far = timezone(timedelta(hours=19, minutes=20))
    starts = datetime(2026, 12, 1, 10, 0, tzinfo=far)
    template = coupon_template_create(
        user=make_user(Role.MARKETER),
        data={
            "name": "双十二",
            "kind": "amount_off",
            "value": Decimal("10.00"),
            "valid_from": starts,
            "valid_days": 30,
            "stock": 10,
        },
    )
    template.refresh_from_db()
    assert template.valid_from == starts.astimezone(UTC)
