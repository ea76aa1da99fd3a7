"""Reading scores: the small public face other apps use (customer page, API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from patron.scoring.models import CustomerScore


@dataclass(frozen=True)
class ScoreView:
    as_of: date
    p_alive: float
    expected_orders_90d: float
    expected_order_value: Decimal
    clv_12m: Decimal
    currency: str
    purchase_days: int
    days_since_last_purchase: int
    reasons: dict[str, list[str]]


def score_of_customer(*, customer_id: int) -> ScoreView | None:
    """The customer's latest scores, or None before the first scoring run or without purchases.
    The caller checks that the user may see the customer."""
    row = CustomerScore.objects.filter(customer_id=customer_id).first()
    if row is None:
        return None
    return ScoreView(
        as_of=row.as_of,
        p_alive=row.p_alive,
        expected_orders_90d=row.expected_orders_90d,
        expected_order_value=row.expected_order_value,
        clv_12m=row.clv_12m,
        currency=row.currency,
        purchase_days=row.purchase_days,
        days_since_last_purchase=row.days_since_last_purchase,
        reasons=dict(row.reasons),
    )
