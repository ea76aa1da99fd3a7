"""Small factories for the marketing tests (plain ORM, no mocks)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from patron.certification.models import Certification, CertificationLevel
from patron.customer.models import Consent, Customer
from patron.loyalty.models import Tier, TierMembership
from patron.marketing.models import CouponTemplate
from patron.scoring.models import CustomerScore, ScoreRun


def score(customer: Customer, **fields: Any) -> CustomerScore:
    run = ScoreRun.objects.first() or ScoreRun.objects.create(
        as_of=date(2026, 1, 1), status="succeeded", started_at=timezone.now()
    )
    return CustomerScore.objects.create(customer=customer, run=run, as_of=run.as_of, **fields)


def consent(customer: Customer, purpose: str, channel: str, granted: bool, days_ago: int) -> None:
    Consent.objects.create(
        source="patron",
        external_id=f"{customer.pk}:{purpose}:{channel}:{days_ago}",
        customer=customer,
        purpose=purpose,
        channel=channel,
        is_granted=granted,
        recorded_at=timezone.now() - timedelta(days=days_ago),
    )


def certify(customer: Customer, code: str = "gold") -> Certification:
    level, _ = CertificationLevel.objects.get_or_create(
        code=code,
        defaults={"name": code, "name_en": code, "applicant_kind": "individual", "rank": 1},
    )
    now = timezone.now()
    return Certification.objects.create(
        customer=customer, level=level, granted_at=now, expires_at=now + timedelta(days=365)
    )


def tier(customer: Customer, code: str = "silver") -> TierMembership:
    found, _ = Tier.objects.get_or_create(
        code=code, defaults={"name": code, "name_en": code, "rank": Tier.objects.count() + 10}
    )
    return TierMembership.objects.create(
        customer=customer, tier=found, valid_from=date(2025, 1, 1), move="join"
    )


def template(**fields: Any) -> CouponTemplate:
    values: dict[str, Any] = {
        "name": "满200减20",
        "kind": "amount_off",
        "value": Decimal("20.00"),
        "min_order_amount": Decimal("200.00"),
        "valid_days": 30,
        "per_customer_limit": 1,
        "stock": 100,
        "budget": None,
    }
    values.update(fields)
    return CouponTemplate.objects.create(**values)
