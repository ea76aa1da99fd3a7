"""Assemble the import files' columns (contract: docs/import-formats.md) from the drawn data."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from patron.demo.aftersales import RETURN_KINDS, RETURN_STATUSES, Returns, Reviews
from patron.demo.catalogue import CATEGORIES, Catalogue
from patron.demo.clock import NA
from patron.demo.geo import DISTRICTS
from patron.demo.orders import (
    AFTER_SHIPPING,
    BEFORE_PAYMENT,
    CANCELLED,
    CARD,
    CARRIERS,
    COD,
    COUPONS,
    METHODS,
    PAY_LATER,
    RETURNED,
    STATUSES,
    Orders,
)
from patron.demo.output import Column, const, ints, iso_times, money, pick
from patron.demo.people import REGISTRATION_CHANNELS
from patron.demo.tickets import CHANNELS, PRIORITIES, TICKET_STATUSES, Tickets

I64 = NDArray[np.int64]
PAYMENT_STATUSES = ("succeeded", "failed", "refunded", "chargeback", "defaulted", "refused")
SHIPMENT_STATUSES = ("pending", "in_transit", "delivered", "exception", "returned")
_CNY = "CNY"


def categories_columns() -> dict[str, Column]:
    return {
        "external_id": [c.external_id for c in CATEGORIES],
        "name": [c.name for c in CATEGORIES],
        "name_en": [c.name_en for c in CATEGORIES],
        "parent_external_id": [c.parent or "" for c in CATEGORIES],
        "is_no_reason_return_exempt": ["true" if c.exempt else "false" for c in CATEGORIES],
    }


def products_columns(cat: Catalogue) -> dict[str, Column]:
    return {
        "external_id": cat.ids,
        "name": cat.names,
        "category_external_id": [CATEGORIES[c].external_id for c in cat.category.tolist()],
        "price": money(cat.price_cents),
        "currency": const(_CNY, len(cat)),
    }


def orders_columns(o: Orders, customer_ids: list[str]) -> dict[str, Column]:
    n = len(o)
    provinces = [d.province for d in DISTRICTS]
    cities = [d.city for d in DISTRICTS]
    return {
        "external_id": o.ids,
        "customer_external_id": [customer_ids[c] for c in o.customer.tolist()],
        "status": pick(STATUSES, o.status),
        "placed_at": iso_times(o.placed),
        "paid_at": iso_times(o.paid),
        "shipped_at": iso_times(o.shipped),
        "delivered_at": iso_times(o.delivered),
        "estimated_delivery_at": iso_times(o.estimated),
        "cancelled_at": iso_times(o.cancelled),
        "total_amount": money(o.total),
        "discount_amount": money(o.discount),
        "shipping_fee": money(o.shipping),
        "currency": const(_CNY, n),
        "coupon_code": pick([c[0] for c in COUPONS], o.coupon),
        "channel": [REGISTRATION_CHANNELS[c][1] for c in o.channel.tolist()],
        "store": o.store,
        "ship_province": pick(provinces, o.ship_district),
        "ship_city": pick(cities, o.ship_district),
    }


def lines_columns(o: Orders, cat: Catalogue) -> dict[str, Column]:
    lines = o.lines
    return {
        "order_external_id": [o.ids[i] for i in lines.order.tolist()],
        "line_no": ints(lines.line_no),
        "external_id": const("", lines.order.size),  # the default, "<order>:<line_no>"
        "product_external_id": [cat.ids[p] for p in lines.product.tolist()],
        "product_name": [cat.names[p] for p in lines.product.tolist()],
        "quantity": ints(lines.quantity),
        "unit_price": money(lines.unit_cents),
        "amount": money(lines.amount_cents),
        "currency": const(_CNY, lines.order.size),
    }


def payments_columns(rng: np.random.Generator, o: Orders, end: int) -> dict[str, Column]:
    """Payment attempts: failed tries before a success, refunds, chargebacks, COD outcomes."""
    n = len(o)
    fail_u = rng.random(n)
    fail_method = np.array([0, 1, CARD])[rng.integers(0, 3, size=n)]
    fail_gap = rng.integers(60, 600, size=n)
    inst_u = rng.random(n)
    inst = np.array([3, 6, 12])[rng.integers(0, 3, size=n)]
    risky = np.zeros(n, dtype=bool)
    risky[o.bad_payment] = True
    rows: dict[str, list[str]] = {
        k: [] for k in ("order", "method", "status", "amount", "inst", "paid")
    }
    when: list[int] = []

    def add(oi: int, method: int, status: int, t: int) -> None:
        rows["order"].append(o.ids[oi])
        rows["method"].append(METHODS[method])
        rows["status"].append(PAYMENT_STATUSES[status])
        rows["amount"].append(f"{o.total[oi] // 100}.{o.total[oi] % 100:02d}")
        big = (
            method in (CARD, PAY_LATER)
            and o.total[oi] >= 60000
            and status != 1
            and inst_u[oi] < 0.35
        )
        rows["inst"].append(str(inst[oi]) if big else "")
        when.append(t)

    for oi in range(n):
        method, paid, stage = int(o.method[oi]), int(o.paid[oi]), int(o.cancel_stage[oi])
        if method == COD:
            if o.bad_payment[oi]:
                add(oi, COD, 5, NA)
            elif paid != NA:
                add(oi, COD, 0, paid)
            continue
        if paid == NA:
            t = int(o.placed[oi]) + int(fail_gap[oi] // 2)
            if stage == BEFORE_PAYMENT and fail_u[oi] < 0.4 and t <= end:
                add(oi, int(fail_method[oi]), 1, t)
            continue
        if fail_u[oi] < (0.25 if risky[oi] else 0.03):
            add(oi, int(fail_method[oi]), 1, max(int(o.placed[oi]), paid - int(fail_gap[oi])))
        status = 0
        if o.bad_payment[oi]:
            status = 3 if method == CARD else 4
        elif o.status[oi] in (CANCELLED, RETURNED):
            status = 2
        add(oi, method, status, paid)
    k = len(when)
    return {
        "order_external_id": rows["order"],
        "external_id": [f"PAY{i + 1:07d}" for i in range(k)],
        "method": rows["method"],
        "status": rows["status"],
        "amount": rows["amount"],
        "currency": const(_CNY, k),
        "installments": rows["inst"],
        "paid_at": iso_times(np.asarray(when, dtype=np.int64)),
    }


def _tracking(rng: np.random.Generator, carrier: I64) -> list[str]:
    digits = rng.integers(0, 10**13, size=carrier.size).tolist()
    fmt = ("7{:013d}", "YT{:013d}", "46{:013d}", "SF{:013d}", "JDVA{:011d}", "1{:012d}")
    mod = (10**13, 10**13, 10**13, 10**13, 10**11, 10**12)
    return [fmt[c].format(d % mod[c]) for c, d in zip(carrier.tolist(), digits, strict=True)]


def shipments_columns(rng: np.random.Generator, o: Orders, end: int) -> dict[str, Column]:
    idx = np.flatnonzero(o.shipped != NA)
    delivered = o.delivered[idx]
    returned = (o.cancel_stage[idx] == AFTER_SHIPPING) & (o.cancelled[idx] != NA)
    status = np.where(
        returned, 4, np.where(delivered != NA, 2, np.where(o.estimated[idx] < end, 3, 1))
    )
    return {
        "external_id": [f"S{i + 1:07d}" for i in range(idx.size)],
        "order_external_id": [o.ids[i] for i in idx.tolist()],
        "carrier": [CARRIERS[c][0] for c in o.carrier[idx].tolist()],
        "tracking_number": _tracking(rng, o.carrier[idx]),
        "status": pick(SHIPMENT_STATUSES, status),
        "shipped_at": iso_times(o.shipped[idx]),
        "estimated_delivery_at": iso_times(o.estimated[idx]),
        "delivered_at": iso_times(delivered),
    }


def returns_columns(r: Returns, o: Orders) -> dict[str, Column]:
    k = len(r.ids)
    return {
        "external_id": r.ids,
        "order_external_id": [o.ids[i] for i in r.order.tolist()],
        "line_no": ints(r.line_no, r.line_no != NA),
        "kind": pick(RETURN_KINDS, r.kind),
        "status": pick(RETURN_STATUSES, r.status),
        "reason": r.reason,
        "requested_at": iso_times(r.requested),
        "resolved_at": iso_times(r.resolved),
        "refund_amount": money(np.maximum(r.refund, 0), r.refund != NA),
        "currency": const(_CNY, k),
    }


def reviews_columns(
    rv: Reviews, o: Orders, customer_ids: list[str], cat: Catalogue
) -> dict[str, Column]:
    return {
        "external_id": rv.ids,
        "customer_external_id": [customer_ids[c] for c in rv.customer.tolist()],
        "order_external_id": [o.ids[i] if i != NA else "" for i in rv.order.tolist()],
        "product_external_id": [cat.ids[p] for p in rv.product.tolist()],
        "rating": ints(rv.rating),
        "title": rv.title,
        "text": rv.text,
        "created_at": iso_times(rv.created),
        "answered_at": iso_times(rv.answered),
        "helpful_votes": ints(rv.helpful),
    }


def tickets_columns(t: Tickets, o: Orders, customer_ids: list[str]) -> dict[str, Column]:
    return {
        "external_id": t.ids,
        "customer_external_id": [customer_ids[c] for c in t.customer.tolist()],
        "order_external_id": [o.ids[i] if i != NA else "" for i in t.order.tolist()],
        "channel": pick(CHANNELS, t.channel),
        "category": t.category,
        "subject": t.subject,
        "status": pick(TICKET_STATUSES, t.status),
        "priority": pick(PRIORITIES, t.priority),
        "is_complaint": ["true" if c else "false" for c in t.complaint.tolist()],
        "opened_at": iso_times(t.opened),
        "first_response_at": iso_times(t.first_response),
        "resolved_at": iso_times(t.resolved),
        "satisfaction": ints(t.satisfaction, t.satisfaction != NA),
    }
