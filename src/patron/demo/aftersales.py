"""Returns / exchanges / repairs / compensations and product reviews."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from patron.demo import texts
from patron.demo.catalogue import CATEGORIES, Catalogue
from patron.demo.clock import DAY, HOUR, NA, shopping_time_of_day, to_daytime
from patron.demo.orders import RETURNED, Orders

I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

RETURN_KINDS = ("return", "exchange", "repair", "compensation")
RETURN, EXCHANGE, REPAIR, COMPENSATION = range(4)
RETURN_STATUSES = (
    "requested",
    "approved",
    "rejected",
    "received",
    "refunded",
    "completed",
    "cancelled",
)
REQUESTED, APPROVED, REJECTED, RECEIVED, REFUNDED, COMPLETED, WITHDRAWN = range(7)
#: Scales the categories' base line return rates so that about 6 % of orders see a return.
RETURN_RATE_SCALE = 0.33
_EXEMPT = np.array([c.exempt for c in CATEGORIES])
_LINE_RATE = np.array([c.return_rate for c in CATEGORIES]) * RETURN_RATE_SCALE
_REPAIRABLE = {"CAT04", "CAT05"}
_WEARABLE = {"CAT01", "CAT02"}


@dataclass
class Returns:
    order: I64
    line_no: I64  # NA: the whole order
    kind: I64
    status: I64
    reason: list[str]
    requested: I64
    resolved: I64
    refund: I64  # NA: no refund
    ids: list[str]


@dataclass
class Reviews:
    customer: I64
    order: I64  # NA: no order
    product: I64
    rating: I64
    title: list[str]
    text: list[str]
    created: I64
    answered: I64
    helpful: I64
    ids: list[str]


def _pick(rng: np.random.Generator, pool: tuple[str, ...]) -> str:
    return pool[int(rng.integers(len(pool)))]


def build_returns(
    rng: np.random.Generator, o: Orders, catalogue: Catalogue, serial: BOOL, end: int
) -> Returns:
    """Draw after-sales requests and mark fully refunded orders as returned."""
    lines = o.lines
    delivered = o.delivered != NA
    line_cat = catalogue.category[lines.product]
    flag = delivered[lines.order] & (rng.random(lines.order.size) < _LINE_RATE[line_cat])
    serial_order = serial[o.customer] & delivered
    _serial_choice(rng, o, serial_order, flag)
    rows: dict[str, list[int]] = {
        k: [] for k in ("order", "line", "kind", "req", "res", "status", "refund")
    }
    reasons: list[str] = []
    n_flag = np.bincount(lines.order[flag], minlength=len(o))
    for oi in np.flatnonzero(n_flag).tolist():
        first = int(lines.start[oi])
        count = int(lines.count[oi])
        picked = [first + j for j in range(count) if flag[first + j]]
        is_serial = bool(serial[o.customer[oi]])
        requested = (
            int(o.delivered[oi])
            + int(rng.exponential(0.6 * DAY) if is_serial else rng.gamma(1.3, 1.8 * DAY))
            + 600
        )
        requested = int(to_daytime(rng, np.array([requested]), 8, 23)[0])
        if is_serial:
            requested = max(min(requested, end), int(o.delivered[oi]))
        elif requested > end:
            continue
        whole = len(picked) == count
        targets = [-1] if whole and count > 1 else picked
        for li in targets:
            cat = CATEGORIES[int(line_cat[first if li < 0 else li])]
            kind, reason, no_reason = _kind_and_reason(
                rng, cat.external_id, cat.exempt, is_serial, li < 0
            )
            resolved = requested + int(rng.lognormal(np.log((3, 5, 8, 1)[kind] * DAY), 0.5))
            status = _return_status(rng, kind, cat.exempt and no_reason, resolved, requested, end)
            refund = NA
            if kind == RETURN and status in (APPROVED, RECEIVED, REFUNDED, COMPLETED):
                refund = _refund(o, oi, li)
            rows["order"].append(oi)
            rows["line"].append(NA if li < 0 else int(lines.line_no[li]))
            rows["kind"].append(kind)
            rows["req"].append(requested)
            rows["res"].append(resolved if status not in (REQUESTED, APPROVED, RECEIVED) else NA)
            rows["status"].append(status)
            rows["refund"].append(refund)
            reasons.append(reason)
            if kind == RETURN and whole and status in (REFUNDED, COMPLETED):
                o.status[oi] = RETURNED
    _compensations(rng, o, rows, reasons, end)
    return _sorted_returns(rows, reasons)


def _serial_choice(rng: np.random.Generator, o: Orders, serial_order: BOOL, flag: BOOL) -> None:
    """Serial returners send back at least half of their delivered orders."""
    lines = o.lines
    cust = o.customer[serial_order]
    idx = np.flatnonzero(serial_order)
    for c in np.unique(cust).tolist():
        own = idx[cust == c]
        m = max(int(np.ceil(0.5 * own.size)), int(rng.binomial(own.size, 0.75)))
        for oi in rng.choice(own, size=min(m, own.size), replace=False).tolist():
            first, count = int(lines.start[oi]), int(lines.count[oi])
            flag[first : first + count] = False
            if rng.random() < 0.6:
                flag[first : first + count] = True
            else:
                flag[first + int(rng.integers(count))] = True


def _kind_and_reason(
    rng: np.random.Generator, cat_id: str, exempt: bool, serial: bool, whole: bool
) -> tuple[int, str, bool]:
    if serial:
        return RETURN, _pick(rng, texts.SERIAL_RETURN_REASONS), True
    u = rng.random()
    if not whole:
        if cat_id in _REPAIRABLE and u < 0.1:
            return REPAIR, _pick(rng, texts.REPAIR_REASONS), False
        if u < (0.3 if cat_id in _WEARABLE else 0.08):
            return EXCHANGE, _pick(rng, texts.EXCHANGE_REASONS), False
    v = rng.random()
    if v < (0.15 if exempt else 0.4):
        return RETURN, _pick(rng, texts.RETURN_NO_REASON), True
    if v < 0.75:
        return RETURN, _pick(rng, texts.RETURN_BY_CATEGORY[cat_id]), False
    return RETURN, _pick(rng, texts.RETURN_QUALITY), False


def _return_status(
    rng: np.random.Generator,
    kind: int,
    exempt_no_reason: bool,
    resolved: int,
    requested: int,
    end: int,
) -> int:
    if resolved > end:
        if end - requested < DAY:
            return REQUESTED
        return APPROVED if kind != RETURN or end - requested < 2 * DAY else RECEIVED
    u = rng.random()
    if exempt_no_reason and u < 0.8:
        return REJECTED  # not eligible for the 7-day no-reason return
    if u < 0.04:
        return REJECTED
    if u < 0.07:
        return WITHDRAWN
    if kind == RETURN:
        return REFUNDED if u < 0.9 else COMPLETED
    return COMPLETED


def _refund(o: Orders, oi: int, li: int) -> int:
    """Refund of a line (less its share of the coupon) or of the whole order (less shipping)."""
    if li < 0:
        return int(o.merch[oi] - o.discount[oi])
    amount = int(o.lines.amount_cents[li])
    return amount - int(o.discount[oi]) * amount // max(int(o.merch[oi]), 1)


def _compensations(
    rng: np.random.Generator, o: Orders, rows: dict[str, list[int]], reasons: list[str], end: int
) -> None:
    """A few late deliveries are compensated with a small refund."""
    for oi in np.flatnonzero(o.late & (rng.random(len(o)) < 0.05)).tolist():
        requested = int(o.delivered[oi]) + int(rng.uniform(0.1, 2.0) * DAY)
        resolved = requested + int(rng.uniform(0.2, 1.0) * DAY)
        if resolved > end:
            continue
        rows["order"].append(oi)
        rows["line"].append(NA)
        rows["kind"].append(COMPENSATION)
        rows["req"].append(requested)
        rows["res"].append(resolved)
        rows["status"].append(COMPLETED)
        rows["refund"].append(min(int(rng.integers(5, 21)) * 100, int(o.total[oi])))
        reasons.append("物流延误，申请补偿")


def _sorted_returns(rows: dict[str, list[int]], reasons: list[str]) -> Returns:
    req = np.asarray(rows["req"], dtype=np.int64)
    order = np.lexsort((np.asarray(rows["order"], dtype=np.int64), req))

    def col(name: str) -> I64:
        return np.asarray(rows[name], dtype=np.int64)[order]

    return Returns(
        order=col("order"),
        line_no=col("line"),
        kind=col("kind"),
        status=col("status"),
        reason=[reasons[i] for i in order.tolist()],
        requested=col("req"),
        resolved=col("res"),
        refund=col("refund"),
        ids=[f"R{i + 1:06d}" for i in range(order.size)],
    )


# --- Reviews -----------------------------------------------------------------------------------
_RATING_P = {
    "normal": np.array([0.02, 0.02, 0.05, 0.18, 0.73]),
    "late": np.array([0.08, 0.08, 0.14, 0.30, 0.40]),
    "returned": np.array([0.25, 0.15, 0.20, 0.20, 0.20]),
}


def build_reviews(
    rng: np.random.Generator,
    o: Orders,
    catalogue: Catalogue,
    returns: Returns,
    business: BOOL,
    malicious: BOOL,
    end: int,
) -> Reviews:
    """About 35 % of delivered orders get a review; malicious reviewers post 1-star bursts."""
    n = len(o)
    returned_line = np.full(n, NA, dtype=np.int64)
    for oi, ln, kind in zip(
        returns.order.tolist(), returns.line_no.tolist(), returns.kind.tolist(), strict=True
    ):
        if kind == RETURN:
            returned_line[oi] = 1 if ln == NA else ln
    p = np.where(o.offline, 0.12, np.where(o.virtual, 0.2, 0.36))
    p = np.where(business[o.customer], 0.15, p)
    chosen = (o.delivered != NA) & ~malicious[o.customer] & (rng.random(n) < p)
    out: dict[str, list[object]] = {
        k: []
        for k in (
            "cust",
            "order",
            "product",
            "rating",
            "title",
            "text",
            "created",
            "answered",
            "helpful",
        )
    }
    for oi in np.flatnonzero(chosen).tolist():
        created = int(o.delivered[oi]) + int(rng.gamma(1.2, 3.0 * DAY)) + HOUR
        created = max(
            int(shopping_time_of_day(rng, np.array([created]))[0]), int(o.delivered[oi]) + 600
        )
        if created > end:
            continue
        mood = "returned" if returned_line[oi] != NA else ("late" if o.late[oi] else "normal")
        rating = int(rng.choice(5, p=_RATING_P[mood])) + 1
        start, count = int(o.lines.start[oi]), int(o.lines.count[oi])
        li = start + (
            int(returned_line[oi]) - 1 if mood == "returned" else int(rng.integers(count))
        )
        product = int(o.lines.product[li])
        cat_id = CATEGORIES[int(catalogue.category[product])].external_id
        _append_review(
            rng,
            out,
            int(o.customer[oi]),
            oi,
            product,
            rating,
            _review_text(rng, rating, cat_id, bool(o.late[oi])),
            created,
            end,
        )
    _malicious_bursts(rng, o, catalogue, malicious, out, end)
    return _sorted_reviews(out)


def _append_review(
    rng: np.random.Generator,
    out: dict[str, list[object]],
    cust: int,
    order: int,
    product: int,
    rating: int,
    text: str,
    created: int,
    end: int,
) -> None:
    reply_p = (0.7, 0.7, 0.4, 0.1, 0.1)[rating - 1]
    answered = created + int(rng.uniform(*texts.MERCHANT_REPLY_DELAY_HOURS) * HOUR)
    out["cust"].append(cust)
    out["order"].append(order)
    out["product"].append(product)
    out["rating"].append(rating)
    out["title"].append(_pick(rng, texts.REVIEW_TITLES[rating]) if rng.random() < 0.4 else "")
    out["text"].append(text)
    out["created"].append(created)
    out["answered"].append(answered if rng.random() < reply_p and answered <= end else NA)
    out["helpful"].append(int(rng.geometric(0.45 if rating <= 2 else 0.75)) - 1)


def _review_text(rng: np.random.Generator, rating: int, cat_id: str, late: bool) -> str:
    good, bad = texts.ASPECTS[cat_id]
    parts = [_pick(rng, texts.REVIEW_OPENINGS[rating])]
    if rating >= 4:
        parts.append(_pick(rng, good))
    elif rating == 3:
        parts.append(_pick(rng, good).removesuffix("。") + "，但是" + _pick(rng, bad))
    else:
        parts.append(_pick(rng, bad))
    if late:
        parts.append(_pick(rng, texts.LOGISTICS_LATE))
    elif rating >= 4 and rng.random() < 0.5:
        parts.append(_pick(rng, texts.LOGISTICS_GOOD))
    parts.append(_pick(rng, texts.REVIEW_CLOSINGS[rating]))
    return "".join(parts)


def _malicious_bursts(
    rng: np.random.Generator,
    o: Orders,
    catalogue: Catalogue,
    malicious: BOOL,
    out: dict[str, list[object]],
    end: int,
) -> None:
    """Bursts of 1-star reviews within an hour or two, also on orders not yet delivered."""
    idx = np.flatnonzero(malicious[o.customer])
    cust_of = o.customer[idx]
    for c in np.unique(cust_of).tolist():
        own = idx[cust_of == c]
        for _ in range(1 + int(own.size >= 6 and rng.random() < 0.5)):
            anchor = int(own[int(rng.integers(own.size))])
            t = min(int(o.placed[anchor]) + int(rng.uniform(1, 20) * HOUR), end - 2 * HOUR)
            before = own[o.placed[own] <= t]
            m = int(rng.integers(3, 6))
            others = before[before != anchor]
            picks = [
                anchor,
                *rng.choice(others, size=min(m - 1, others.size), replace=False).tolist(),
            ]
            picks += [NA] * (m - len(picks))  # no order at hand: review a product page directly
            times = np.sort(t + rng.integers(0, 90 * 60, size=m))
            for oi, when in zip(picks, times.tolist(), strict=True):
                if oi == NA:
                    product = int(rng.integers(len(catalogue)))
                else:
                    li = int(o.lines.start[oi]) + int(rng.integers(int(o.lines.count[oi])))
                    product = int(o.lines.product[li])
                text = _pick(rng, texts.MALICIOUS_REVIEWS)
                _append_review(
                    rng,
                    out,
                    c,
                    int(oi),
                    product,
                    1 if rng.random() < 0.9 else 2,
                    text,
                    int(when),
                    end,
                )


def _sorted_reviews(out: dict[str, list[object]]) -> Reviews:
    created = np.asarray(out["created"], dtype=np.int64)
    order = np.lexsort((np.asarray(out["cust"], dtype=np.int64), created))

    def col(name: str) -> I64:
        return np.asarray(out[name], dtype=np.int64)[order]

    def txt(name: str) -> list[str]:
        return [str(out[name][i]) for i in order.tolist()]

    return Reviews(
        customer=col("cust"),
        order=col("order"),
        product=col("product"),
        rating=col("rating"),
        title=txt("title"),
        text=txt("text"),
        created=col("created"),
        answered=col("answered"),
        helpful=col("helpful"),
        ids=[f"RV{i + 1:07d}" for i in range(order.size)],
    )
