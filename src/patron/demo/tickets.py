"""Customer-service tickets: mostly about late parcels, returns and product questions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from patron.demo import texts
from patron.demo.aftersales import Returns
from patron.demo.catalogue import CATEGORIES, Catalogue
from patron.demo.clock import DAY, HOUR, NA, local_hour, local_midnight, shopping_time_of_day
from patron.demo.orders import Orders

I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

CHANNELS = ("web", "chat", "wechat", "phone", "app", "email", "social")
_CHANNEL_W_INDIVIDUAL = np.array([0.08, 0.30, 0.25, 0.15, 0.12, 0.04, 0.06])
_CHANNEL_W_BUSINESS = np.array([0.10, 0.15, 0.10, 0.30, 0.05, 0.28, 0.02])
TICKET_STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
#: Median first-response time by channel, in seconds.
_RESPONSE_MEDIAN = {
    "web": 12 * 60,
    "chat": 90,
    "wechat": 120,
    "phone": 40,
    "app": 150,
    "email": 3 * HOUR,
    "social": 40 * 60,
}
#: Median time from first response to resolution by category, in seconds.
_RESOLVE_MEDIAN = {
    "物流查询": 4 * HOUR,
    "退换货": 2 * DAY,
    "商品咨询": 10 * 60,
    "投诉": 3 * DAY,
    "发票": 1 * DAY,
    "售后维修": 5 * DAY,
    "账户与会员": 1 * HOUR,
    "支付问题": 6 * HOUR,
}
_ROUTINE = (
    ("商品咨询", 0.35),
    ("发票", 0.2),
    ("物流查询", 0.2),
    ("售后维修", 0.08),
    ("支付问题", 0.1),
    ("账户与会员", 0.07),
)
_NO_ORDER = (("商品咨询", 0.5), ("账户与会员", 0.35), ("支付问题", 0.15))


@dataclass
class Tickets:
    customer: I64
    order: I64
    channel: I64
    category: list[str]
    subject: list[str]
    status: I64
    priority: I64
    complaint: BOOL
    opened: I64
    first_response: I64
    resolved: I64
    satisfaction: I64
    ids: list[str]


def _weighted(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    w = np.array([p for _, p in options])
    return options[int(rng.choice(w.size, p=w / w.sum()))][0]


def build_tickets(
    rng: np.random.Generator,
    o: Orders,
    returns: Returns,
    catalogue: Catalogue,
    registered: I64,
    business: BOOL,
    problem: BOOL,
    end: int,
) -> Tickets:
    """About 8 % of customers contact customer service at least once."""
    n_c = registered.size
    trouble = _troubled_orders(o, returns)
    has_orders = np.bincount(o.customer, minlength=n_c) > 0
    has_trouble = np.bincount(o.customer[trouble], minlength=n_c) > 0
    p = np.where(has_orders, 0.045, 0.015) + np.where(has_trouble, 0.10, 0.0)
    p = np.where(problem, 0.35, p)
    who = np.flatnonzero(rng.random(n_c) < p)
    order_idx = np.argsort(o.customer, kind="stable")
    starts = np.searchsorted(o.customer[order_idx], np.arange(n_c + 1))
    rows: dict[str, list[object]] = {k: [] for k in ("cust", "order", "cat", "subject", "opened")}
    for c in who.tolist():
        own = order_idx[starts[c] : starts[c + 1]]
        for _ in range(int(rng.geometric(0.6))):
            _ticket_context(
                rng, o, returns, catalogue, c, own, trouble, int(registered[c]), end, rows
            )
    return _finish(rng, rows, business, problem, end)


def _troubled_orders(o: Orders, returns: Returns) -> BOOL:
    trouble = o.late | (o.cancelled != NA) | o.bad_payment
    trouble[returns.order] = True
    return trouble


def _ticket_context(
    rng: np.random.Generator,
    o: Orders,
    returns: Returns,
    catalogue: Catalogue,
    c: int,
    own: I64,
    trouble: BOOL,
    registered: int,
    end: int,
    rows: dict[str, list[object]],
) -> None:
    if own.size == 0 or rng.random() < 0.15:
        category = _weighted(rng, _NO_ORDER)
        opened = int(registered + rng.random() * max(end - registered, HOUR))
        oi = NA
    else:
        bad = own[trouble[own]]
        oi = int(
            bad[int(rng.integers(bad.size))]
            if bad.size and rng.random() < 0.8
            else own[int(rng.integers(own.size))]
        )
        category, opened = _about_order(rng, o, returns, catalogue, oi)
    opened = int(shopping_time_of_day(rng, np.array([opened]))[0])
    if opened > end or opened < registered:
        return
    order_id = o.ids[oi] if oi != NA else ""
    subject = _pick(rng, texts.TICKET_SUBJECTS[category])
    if "{order}" in subject:
        subject = subject.format(order=order_id) if order_id else subject.format(order="")
    rows["cust"].append(c)
    rows["order"].append(oi)
    rows["cat"].append(category)
    rows["subject"].append(subject)
    rows["opened"].append(opened)


def _about_order(
    rng: np.random.Generator, o: Orders, returns: Returns, catalogue: Catalogue, oi: int
) -> tuple[str, int]:
    if o.late[oi] or (o.shipped[oi] != NA and o.delivered[oi] == NA and o.cancelled[oi] == NA):
        base = int(o.estimated[oi]) if o.estimated[oi] != NA else int(o.shipped[oi])
        return ("物流查询" if rng.random() < 0.85 else "投诉"), base + int(rng.uniform(0, 2) * DAY)
    hit = np.flatnonzero(returns.order == oi)
    if hit.size:
        base = int(returns.requested[hit[0]])
        return ("退换货" if rng.random() < 0.88 else "投诉"), base + int(rng.uniform(-0.5, 3) * DAY)
    if o.cancelled[oi] != NA or o.bad_payment[oi]:
        base = int(o.cancelled[oi]) if o.cancelled[oi] != NA else int(o.placed[oi]) + 3 * DAY
        return _weighted(rng, (("投诉", 0.2), ("支付问题", 0.45), ("退换货", 0.35))), base + int(
            rng.uniform(0, 1) * DAY
        )
    category = _weighted(rng, _ROUTINE)
    cats = {
        CATEGORIES[int(catalogue.category[p])].external_id
        for p in o.lines.product[o.lines.start[oi] : o.lines.start[oi] + o.lines.count[oi]].tolist()
    }
    if category == "售后维修" and not cats & {"CAT04", "CAT05"}:
        category = "商品咨询"
    if category == "商品咨询":
        return category, int(o.placed[oi]) - int(rng.uniform(0, 2) * DAY)
    after = int(o.delivered[oi]) if o.delivered[oi] != NA else int(o.placed[oi])
    return category, after + int(rng.uniform(0.5, 10) * DAY)


def _pick(rng: np.random.Generator, pool: tuple[str, ...]) -> str:
    return pool[int(rng.integers(len(pool)))]


def _finish(
    rng: np.random.Generator, rows: dict[str, list[object]], business: BOOL, problem: BOOL, end: int
) -> Tickets:
    opened = np.asarray(rows["opened"], dtype=np.int64)
    cust = np.asarray(rows["cust"], dtype=np.int64)
    order = np.lexsort((cust, opened))
    opened, cust = opened[order], cust[order]
    n = opened.size
    category = [str(rows["cat"][i]) for i in order.tolist()]
    subject = [str(rows["subject"][i]) for i in order.tolist()]
    linked = np.asarray(rows["order"], dtype=np.int64)[order] if n else np.zeros(0, dtype=np.int64)
    channel = np.where(
        business[cust],
        rng.choice(7, size=n, p=_CHANNEL_W_BUSINESS),
        rng.choice(7, size=n, p=_CHANNEL_W_INDIVIDUAL),
    ).astype(np.int64)
    is_complaint_cat = np.array([c == "投诉" for c in category], dtype=bool)
    complaint = is_complaint_cat | (rng.random(n) < np.where(problem[cust], 0.15, 0.03))
    # Phone lines are open 8:00-22:00: a night call is really made the next morning.
    hour = local_hour(opened)
    night = (hour < 8) | (hour >= 22)
    phone_night = night & (channel == 3)
    opened = np.where(
        phone_night,
        local_midnight(opened + np.where(hour >= 22, DAY, 0))
        + 8 * HOUR
        + rng.integers(0, 2 * HOUR, size=n),
        opened,
    )
    opened = np.minimum(opened, end)
    medians = np.array([_RESPONSE_MEDIAN[CHANNELS[c]] for c in channel.tolist()], dtype=np.float64)
    response = rng.lognormal(np.log(np.maximum(medians, 1.0)), 0.9)
    # Written channels opened at night wait for the morning shift; some days the team is swamped.
    wait_morning = night & ~phone_night & np.isin(channel, [0, 5, 6]) & (rng.random(n) < 0.8)
    morning = (
        local_midnight(opened + np.where(hour >= 22, DAY, 0))
        + 8 * HOUR
        + rng.integers(0, HOUR, size=n)
    )
    response = np.where(wait_morning, np.maximum(morning - opened, response), response)
    response += np.where(rng.random(n) < 0.06, rng.exponential(4 * HOUR, size=n), 0.0)
    first = opened + response.astype(np.int64) + 1
    resolve_med = np.array([_RESOLVE_MEDIAN[c] for c in category], dtype=np.float64)
    resolved = first + rng.lognormal(np.log(resolve_med), 0.9).astype(np.int64)
    status = np.where(
        resolved <= end,
        np.where(end - resolved < 7 * DAY, 4, 5),
        np.where(first > end, 0, rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])),
    )
    first = np.where(first > end, NA, first)
    resolved = np.where(resolved > end, NA, resolved)
    priority = np.where(
        complaint,
        rng.choice([0, 1], size=n, p=[0.3, 0.7]),
        rng.choice([1, 2, 3], size=n, p=[0.1, 0.65, 0.25]),
    )
    score = (
        5.0
        - (response > 2 * HOUR)
        - ((resolved - first) > 5 * DAY)
        - complaint
        - 1.5 * problem[cust]
    )
    score = np.clip(np.round(score + rng.normal(-0.2, 0.6, size=n)), 1, 5).astype(np.int64)
    rated = (resolved != NA) & (rng.random(n) < 0.6)
    return Tickets(
        customer=cust,
        order=linked,
        channel=channel,
        category=category,
        subject=subject,
        status=status.astype(np.int64),
        priority=priority.astype(np.int64),
        complaint=complaint,
        opened=opened,
        first_response=first,
        resolved=resolved,
        satisfaction=np.where(rated, score, NA),
        ids=[f"T{i + 1:06d}" for i in range(n)],
    )
