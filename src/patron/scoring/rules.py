"""Plain-words reasons for the purchase-model scores (pure functions, no database)."""

from __future__ import annotations

from patron.intelligence.models.rfm import LABELS


def alive_reason(
    *, purchase_days: int, days_since_last: int, typical_gap_days: float | None
) -> str:
    if purchase_days == 1:
        return f"bought once, {days_since_last} days ago; one purchase says little about what comes next"
    gap = f"about every {typical_gap_days:.0f} days" if typical_gap_days else "repeatedly"
    return (
        f"bought on {purchase_days} different days, {gap}; the last purchase was "
        f"{days_since_last} days ago"
    )


def value_reason(
    *, expected_orders_12m: float, order_value: float, currency: str, repeat: bool
) -> str:
    basis = (
        "their own repeat orders" if repeat else "the shop's typical customer (no repeat order yet)"
    )
    return (
        f"{expected_orders_12m:.1f} expected orders in the next 12 months × {order_value:,.2f} "
        f"{currency} expected per order (from {basis})"
    )


def rfm_reason(
    *,
    days_since_last: int,
    purchase_days: int,
    spend: float,
    currency: str,
    mean_days_since_last: float,
    mean_purchase_days: float,
    mean_spend: float,
) -> str:
    return (
        f"last purchase {days_since_last} days ago (shop average {mean_days_since_last:.0f}); "
        f"bought on {purchase_days} days (average {mean_purchase_days:.1f}); "
        f"spent {spend:,.2f} {currency} (average {mean_spend:,.2f})"
    )


def segment_label(code: str) -> str:
    """The class as the trade names it, Chinese then English: 重要价值客户 Important value."""
    zh, en = LABELS[code]
    return f"{zh} {en}"
