"""Reading scores: the small public face other apps use (customer page, API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from patron.scoring.models import CustomerScore
from patron.scoring.rules import segment_label


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
    rfm_r: int
    rfm_f: int
    rfm_m: int
    rfm_segment: str
    rfm_segment_label: str
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
        rfm_r=row.rfm_r,
        rfm_f=row.rfm_f,
        rfm_m=row.rfm_m,
        rfm_segment=row.rfm_segment,
        rfm_segment_label=segment_label(row.rfm_segment),
        reasons=dict(row.reasons),
    )
