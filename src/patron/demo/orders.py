"""Orders, their lines, coupons, shipping fees, payment methods and fulfilment times.

Order values follow the Gamma-Gamma spend model (Fader & Hardie 2013): each customer has a
spend rate ``nu ~ Gamma(q, gamma)`` and each order a value ``z ~ Gamma(p, nu)``. The value is
split over 1-4 lines whose products are picked from the customer's favourite categories at a
price near the line's share, so realised merchandise totals track the drawn value. Every total is
exact in cents: ``total = sum(line amounts) - discount + shipping fee``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from patron.demo.catalogue import CATEGORIES, DIGITAL, FRESH, MADE_TO_ORDER, Catalogue
from patron.demo.clock import DAY, HOUR, NA, censor, local_midnight, to_daytime
from patron.demo.geo import DISTRICTS, STORES
from patron.demo.params import BUSINESS_SPEND_MULTIPLIER, GG_GAMMA, GG_P, GG_Q
from patron.demo.people import OFFLINE_STORE, REGISTRATION_CHANNELS, Customers
from patron.demo.timing import PurchaseHistory

I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

STATUSES = ("created", "paid", "shipped", "delivered", "completed", "cancelled", "returned")
CREATED, PAID, SHIPPED, DELIVERED, COMPLETED, CANCELLED, RETURNED = range(7)

METHODS = ("alipay", "wechat_pay", "card", "cod", "pay_later", "voucher", "bank_transfer")
ALIPAY, WECHAT, CARD, COD, PAY_LATER, VOUCHER, BANK_TRANSFER = range(7)
_METHOD_W_INDIVIDUAL = np.array([0.42, 0.38, 0.08, 0.05, 0.05, 0.015, 0.005])
_METHOD_W_BUSINESS = np.array([0.28, 0.18, 0.15, 0.02, 0.05, 0.02, 0.30])
_METHOD_W_CHARGEBACK = np.array([0.0, 0.0, 0.4, 0.25, 0.35, 0.0, 0.0])

#: (carrier, weight, promised transit days, probability of a late delivery)
CARRIERS: tuple[tuple[str, float, int, float], ...] = (
    ("中通快递", 0.25, 3, 0.10),
    ("圆通速递", 0.20, 3, 0.10),
    ("韵达快递", 0.17, 3, 0.11),
    ("顺丰速运", 0.15, 2, 0.04),
    ("京东物流", 0.13, 2, 0.04),
    ("EMS", 0.10, 4, 0.14),
)
_REMOTE = {
    "新疆维吾尔自治区",
    "甘肃省",
    "内蒙古自治区",
    "海南省",
    "黑龙江省",
    "云南省",
    "贵州省",
    "广西壮族自治区",
    "吉林省",
}

#: (code, minimum merchandise total, discount) in cents; ``VIP95`` is 5 % off (at most 50 yuan).
COUPONS: tuple[tuple[str, int, int], ...] = (
    ("XR10", 2900, 1000),
    ("MJ199-20", 19900, 2000),
    ("MJ299-30", 29900, 3000),
    ("MJ599-60", 59900, 6000),
    ("MJ999-100", 99900, 10000),
    ("MJ2999-300", 299900, 30000),
    ("VIP95", 0, 0),
)
NEW_USER, VIP95 = 0, 6

STORE_NAMES = {
    "app": "官方App",
    "wechat_mini_program": "微信小程序商城",
    "official_site": "官方网站",
    "tmall": "天猫旗舰店",
    "jd": "京东旗舰店",
    "douyin": "抖音小店",
}

# Cancellation stage
NOT_CANCELLED, BEFORE_PAYMENT, BEFORE_SHIPPING, AFTER_SHIPPING = range(4)


@dataclass
class Lines:
    order: I64
    line_no: I64
    product: I64
    quantity: I64
    unit_cents: I64
    amount_cents: I64
    start: I64  # per order: index of its first line
    count: I64  # per order: number of lines


@dataclass
class Orders:
    """Orders in chronological order (index = order number - 1) with their lines."""

    ids: list[str]
    customer: I64
    seq: I64  # 0 for a customer's first order
    placed: I64
    paid: I64
    shipped: I64
    delivered: I64
    estimated: I64
    cancelled: I64
    confirmed: I64
    status: I64
    channel: I64  # index into people.REGISTRATION_CHANNELS
    store: list[str]
    ship_district: I64  # -1 when nothing is shipped
    merch: I64
    discount: I64
    shipping: I64
    total: I64
    coupon: I64  # index into COUPONS, -1 without
    method: I64
    carrier: I64
    late: BOOL
    cancel_stage: I64
    bad_payment: BOOL  # chargeback, defaulted pay-later or refused cash on delivery
    virtual: BOOL  # digital goods only: nothing shipped
    offline: BOOL
    lines: Lines

    def __len__(self) -> int:
        return len(self.ids)


def _categorical(rng: np.random.Generator, weights: NDArray[np.float64]) -> I64:
    """One draw per row of a (rows x k) weight matrix."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0]) * cdf[:, -1]
    return (cdf < u[:, None]).sum(axis=1).astype(np.int64)


def _draw(rng: np.random.Generator, p: NDArray[np.float64], size: int) -> I64:
    return rng.choice(p.size, size=size, p=p / p.sum()).astype(np.int64)


def build_orders(
    rng: np.random.Generator,
    history: PurchaseHistory,
    customers: Customers,
    catalogue: Catalogue,
    problems: dict[str, BOOL],
    start: int,
    end: int,
) -> Orders:
    """Turn purchase times into complete orders (lines, money, payment method, fulfilment)."""
    seq = np.arange(history.customer.size) - np.searchsorted(history.customer, history.customer)
    channel = _order_channels(rng, customers.reg_channel[history.customer])
    # Flagship stores are open 10:00-22:00 (Beijing): a visit at night happens the next morning.
    in_store = channel == OFFLINE_STORE
    store_time = np.minimum(to_daytime(rng, history.placed, 10, 22), end)
    placed = np.where(in_store, store_time, history.placed)
    chrono = np.lexsort((history.customer, placed))
    cust = history.customer[chrono]
    placed = placed[chrono]
    channel = channel[chrono]
    seq = seq[chrono].astype(np.int64)
    n = cust.size
    business = customers.is_business[cust]
    offline = channel == OFFLINE_STORE
    value = _order_values(rng, len(customers), cust, business)
    lines = _build_lines(rng, value, cust, business, offline, customers, catalogue)
    merch = np.add.reduceat(lines.amount_cents, lines.start)
    line_cat = catalogue.category[lines.product]
    has_cat = np.zeros((n, len(CATEGORIES)), dtype=bool)
    has_cat[lines.order, line_cat] = True
    virtual = has_cat[:, DIGITAL] & (has_cat.sum(axis=1) == 1)
    shipping = _shipping_fees(rng, merch, offline | virtual, has_cat[:, FRESH])
    coupon, discount = _coupons(rng, merch, seq)
    method = _payment_methods(rng, customers, cust, channel, offline | virtual, problems)
    ship_district = np.where(
        rng.random(n) < 0.9, customers.district[cust], rng.integers(0, len(DISTRICTS), size=n)
    )
    ship_district = np.where(offline | virtual, -1, ship_district)
    carrier = _draw(rng, np.array([c[1] for c in CARRIERS]), n)
    orders = Orders(
        ids=[f"O{i + 1:07d}" for i in range(n)],
        customer=cust,
        seq=seq,
        placed=placed,
        paid=np.full(n, NA),
        shipped=np.full(n, NA),
        delivered=np.full(n, NA),
        estimated=np.full(n, NA),
        cancelled=np.full(n, NA),
        confirmed=np.full(n, NA),
        status=np.zeros(n, dtype=np.int64),
        channel=channel,
        store=_stores(channel, customers.district[cust]),
        ship_district=ship_district,
        merch=merch,
        discount=discount,
        shipping=shipping,
        total=merch - discount + shipping,
        coupon=coupon,
        method=method,
        carrier=carrier,
        late=np.zeros(n, dtype=bool),
        cancel_stage=np.zeros(n, dtype=np.int64),
        bad_payment=np.zeros(n, dtype=bool),
        virtual=virtual,
        offline=offline,
        lines=lines,
    )
    _cancellations(rng, orders, problems)
    _fulfil(rng, orders, has_cat[:, MADE_TO_ORDER], end)
    return orders


def _order_channels(rng: np.random.Generator, preferred: I64) -> I64:
    """Mostly the channel the customer signed up on; store customers also buy in the app."""
    n = preferred.size
    w = np.array([c[2] for c in REGISTRATION_CHANNELS])
    w[OFFLINE_STORE] = 0.0
    alt = _draw(rng, w, n)
    channel = np.where(rng.random(n) < 0.75, preferred, alt)
    in_store = (preferred == OFFLINE_STORE) & (rng.random(n) < 0.6)
    return np.where(preferred == OFFLINE_STORE, np.where(in_store, OFFLINE_STORE, alt), channel)


def _stores(channel: I64, district: I64) -> list[str]:
    out: list[str] = []
    for ch, d in zip(channel.tolist(), district.tolist(), strict=True):
        name = REGISTRATION_CHANNELS[ch][0]
        out.append(STORES[DISTRICTS[d].city] if ch == OFFLINE_STORE else STORE_NAMES[name])
    return out


def _order_values(rng: np.random.Generator, n_customers: int, cust: I64, business: BOOL) -> I64:
    """Gamma-Gamma order values in cents (Fader & Hardie 2013), businesses scaled up."""
    nu = rng.gamma(GG_Q, 1.0 / GG_GAMMA, size=n_customers)
    z = rng.gamma(GG_P, 1.0, size=cust.size) / nu[cust]
    z = np.where(business, z * BUSINESS_SPEND_MULTIPLIER, z)
    return np.maximum(np.round(z * 100), 990).astype(np.int64)


def _build_lines(
    rng: np.random.Generator,
    value: I64,
    cust: I64,
    business: BOOL,
    offline: BOOL,
    customers: Customers,
    catalogue: Catalogue,
) -> Lines:
    n = value.size
    k = (
        np.where(
            business,
            _draw(rng, np.array([0.25, 0.3, 0.25, 0.2]), n),
            _draw(rng, np.array([0.55, 0.28, 0.12, 0.05]), n),
        )
        + 1
    )
    order = np.repeat(np.arange(n), k)
    g = rng.gamma(2.0, 1.0, size=order.size)
    share = g / np.bincount(order, weights=g)[order]
    target = value[order] * share
    q_ind = np.array([1, 2, 3, 4, 5])[
        _draw(rng, np.array([0.82, 0.12, 0.04, 0.01, 0.01]), order.size)
    ]
    q_bus = np.array([1, 2, 3, 5, 10, 20, 50])[
        _draw(rng, np.array([0.3, 0.15, 0.1, 0.15, 0.15, 0.1, 0.05]), order.size)
    ]
    qty = np.where(business[order], q_bus, q_ind).astype(np.int64)
    unit_target = np.maximum(target / qty, 100.0)
    # Category: the customer's taste times the share of its products priced near the target.
    fit = np.stack([_price_fit(catalogue, c, unit_target) for c in range(len(CATEGORIES))], axis=1)
    w = customers.taste[cust[order]] * fit
    w[offline[order], DIGITAL] = 0.0
    w += 1e-12
    cat = _categorical(rng, w)
    product = np.zeros(order.size, dtype=np.int64)
    for c in range(len(CATEGORIES)):
        sel = np.flatnonzero(cat == c)
        if sel.size:
            product[sel] = _near_price(rng, catalogue, c, unit_target[sel])
    return _merge_duplicates(rng, order, product, qty, catalogue, n)


def _price_fit(catalogue: Catalogue, cat: int, target: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of the category's products priced within a factor of two of each target."""
    logp = np.log(catalogue.price_cents[catalogue.in_category(cat)].astype(np.float64))
    lt = np.log(target)
    near = np.searchsorted(logp, lt + np.log(2.0)) - np.searchsorted(logp, lt - np.log(2.0))
    return (near + 0.2) / logp.size


def _near_price(
    rng: np.random.Generator, catalogue: Catalogue, cat: int, target: NDArray[np.float64]
) -> I64:
    """A product of ``cat`` per target price: among the few priced closest, by popularity."""
    members = catalogue.in_category(cat)
    logp = np.log(catalogue.price_cents[members].astype(np.float64))
    pos = np.searchsorted(logp, np.log(target))
    window = np.clip(pos[:, None] + np.arange(-3, 3)[None, :], 0, members.size - 1)
    closeness = np.exp(-((logp[window] - np.log(target)[:, None]) ** 2) / (2 * 0.3**2))
    weights = catalogue.popularity[members][window] * (closeness + 1e-9)
    return members[window[np.arange(target.size), _categorical(rng, weights)]]


def _merge_duplicates(
    rng: np.random.Generator, order: I64, product: I64, qty: I64, catalogue: Catalogue, n: int
) -> Lines:
    """One line per product and order (repeated picks add up their quantities)."""
    key = order * len(catalogue) + product
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    total_qty = np.zeros(uniq.size, dtype=np.int64)
    np.add.at(total_qty, inverse, qty)
    keep = np.sort(first)  # original line order
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(uniq.size)
    qty2 = np.empty(uniq.size, dtype=np.int64)
    qty2[rank] = total_qty
    order2 = order[keep]
    product2 = product[keep]
    count = np.bincount(order2, minlength=n).astype(np.int64)
    start = (np.cumsum(count) - count).astype(np.int64)
    line_no = np.arange(order2.size) - start[order2] + 1
    list_price = catalogue.price_cents[product2]
    promo = rng.random(order2.size) < 0.18
    factor = rng.uniform(0.7, 0.95, size=order2.size)
    promo_price = np.maximum((list_price * factor // 100).astype(np.int64) * 100 - 10, 90)
    unit = np.where(promo & (list_price >= 1000), np.minimum(promo_price, list_price), list_price)
    return Lines(
        order=order2.astype(np.int64),
        line_no=line_no.astype(np.int64),
        product=product2.astype(np.int64),
        quantity=qty2,
        unit_cents=unit.astype(np.int64),
        amount_cents=(unit * qty2).astype(np.int64),
        start=start,
        count=count,
    )


def _shipping_fees(rng: np.random.Generator, merch: I64, not_shipped: BOOL, fresh: BOOL) -> I64:
    """Free over 99 yuan; otherwise 6/8/10 yuan, cold chain 12 yuan under 199 yuan."""
    fee = np.array([600, 800, 1000])[_draw(rng, np.array([0.6, 0.25, 0.15]), merch.size)]
    fee = np.where(merch >= 9900, 0, fee)
    fee = np.where(fresh & (merch < 19900), 1200, fee)
    return np.where(not_shipped, 0, fee).astype(np.int64)


def _coupons(rng: np.random.Generator, merch: I64, seq: I64) -> tuple[I64, I64]:
    """About 15 % of orders redeem a coupon: new-customer coupons, spend thresholds, VIP 5 % off."""
    n = merch.size
    used = rng.random(n) < np.where(seq == 0, 0.25, 0.1)
    thresholds = np.array([c[1] for c in COUPONS[1:VIP95]])
    best = np.searchsorted(thresholds, merch, side="right")  # 0 = none reachable
    code = np.where(best > 0, best, VIP95)
    code = np.where(rng.random(n) < 0.25, VIP95, code)
    code = np.where(
        (seq == 0) & (merch >= COUPONS[NEW_USER][1]) & (rng.random(n) < 0.6), NEW_USER, code
    )
    amount = np.array([c[2] for c in COUPONS])[code]
    amount = np.where(code == VIP95, np.minimum(np.round(merch * 0.05), 5000), amount).astype(
        np.int64
    )
    amount = np.minimum(amount, merch - 100)
    used &= amount > 0
    return np.where(used, code, -1).astype(np.int64), np.where(used, amount, 0).astype(np.int64)


def _payment_methods(
    rng: np.random.Generator,
    customers: Customers,
    cust: I64,
    channel: I64,
    no_cod: BOOL,
    problems: dict[str, BOOL],
) -> I64:
    n_c = len(customers)
    preferred = np.where(
        customers.is_business,
        _draw(rng, _METHOD_W_BUSINESS, n_c),
        _draw(rng, _METHOD_W_INDIVIDUAL, n_c),
    )
    preferred = np.where(problems["chargeback"], _draw(rng, _METHOD_W_CHARGEBACK, n_c), preferred)
    n = cust.size
    other = np.where(
        customers.is_business[cust],
        _draw(rng, _METHOD_W_BUSINESS, n),
        _draw(rng, _METHOD_W_INDIVIDUAL, n),
    )
    risky = problems["chargeback"][cust]
    other = np.where(risky, _draw(rng, _METHOD_W_CHARGEBACK, n), other)
    method = np.where(rng.random(n) < 0.7, preferred[cust], other)
    tmall = channel == 2
    method = np.where(tmall & (method == WECHAT), ALIPAY, method)
    method = np.where(no_cod & (method == COD), np.where(risky, CARD, WECHAT), method)
    return method.astype(np.int64)


def _cancellations(rng: np.random.Generator, orders: Orders, problems: dict[str, BOOL]) -> None:
    """About 5 % of orders are cancelled: before payment, before shipping or after shipping.
    Frequent cancellers cancel most of their orders; chargeback customers default on many."""
    n = len(orders)
    u = rng.random(n)
    stage = np.select(
        [u < 0.014, u < 0.028, u < 0.035], [BEFORE_PAYMENT, BEFORE_SHIPPING, AFTER_SHIPPING], 0
    )
    stage = np.where(orders.offline, NOT_CANCELLED, stage)
    cancellers = problems["frequent_canceller"][orders.customer]
    stage = np.where(cancellers, NOT_CANCELLED, stage)
    risky = problems["chargeback"][orders.customer]
    stage = np.where(risky, NOT_CANCELLED, stage)
    by_customer = _orders_by_customer(orders.customer)
    for c in np.flatnonzero(problems["frequent_canceller"]).tolist():
        own = by_customer.get(c, np.zeros(0, dtype=np.int64))
        own = own[~orders.offline[own]]
        if own.size == 0:
            continue
        m = max(int(np.ceil(0.5 * own.size)), int(rng.binomial(own.size, 0.65)))
        chosen = rng.choice(own, size=min(m, own.size), replace=False)
        stage[chosen] = _draw(rng, np.array([0.25, 0.35, 0.40]), chosen.size) + 1
    bad = risky & (rng.random(n) < 0.5)
    for c in np.flatnonzero(problems["chargeback"]).tolist():
        own = by_customer.get(c, np.zeros(0, dtype=np.int64))
        if own.size and not bad[own].any():
            bad[own[0]] = True  # their first order surely went wrong
    stage = np.where(bad & (orders.method == COD), AFTER_SHIPPING, stage)
    stage = np.where(orders.virtual & (stage == AFTER_SHIPPING), BEFORE_SHIPPING, stage)
    orders.cancel_stage = stage.astype(np.int64)
    orders.bad_payment = bad & np.isin(orders.method, [CARD, PAY_LATER, COD])


def _orders_by_customer(cust: I64) -> dict[int, I64]:
    order = np.argsort(cust, kind="stable")
    keys, starts = np.unique(cust[order], return_index=True)
    groups = np.split(order, starts[1:])
    return {int(k): g.astype(np.int64) for k, g in zip(keys.tolist(), groups, strict=True)}


def _fulfil(rng: np.random.Generator, o: Orders, made_to_order: BOOL, end: int) -> None:
    """Payment, shipping, delivery, confirmation and cancellation times; then the status."""
    n = len(o)
    cod = o.method == COD
    pay_delay = np.clip(rng.lognormal(np.log(45.0), 1.0, size=n), 5, 1500).astype(np.int64)
    pay_delay = np.where(o.offline, rng.integers(20, 120, size=n), pay_delay)
    paid = np.where(cod, NA, o.placed + pay_delay)
    ship_base = np.where(cod, o.placed + 300, o.placed + pay_delay)
    ship_delay = rng.lognormal(np.log(20 * HOUR), 0.6, size=n)
    ship_delay += np.where(made_to_order, rng.uniform(3, 10, size=n) * DAY, 0.0)
    shipped = (ship_base + ship_delay).astype(np.int64)
    remote = np.array([DISTRICTS[d].province in _REMOTE for d in range(len(DISTRICTS))])
    promised = (
        np.array([c[2] for c in CARRIERS])[o.carrier] + remote[np.maximum(o.ship_district, 0)]
    )
    estimated = local_midnight(shipped + promised * DAY) + 21 * HOUR
    late = rng.random(n) < np.array([c[3] for c in CARRIERS])[o.carrier]
    transit = np.where(
        late,
        promised * DAY + rng.exponential(1.5 * DAY, size=n) + 0.3 * DAY,
        promised * DAY * rng.uniform(0.45, 0.95, size=n),
    )
    delivered = to_daytime(rng, (shipped + transit).astype(np.int64))
    handed_over = np.where(o.virtual, o.placed + pay_delay + 60, o.placed + pay_delay)
    local = o.offline | o.virtual
    shipped = np.where(local, NA, shipped)
    estimated = np.where(local, NA, estimated)
    delivered = np.where(local, handed_over, delivered)
    confirmed = np.where(
        local, delivered, delivered + (rng.uniform(1, 10, size=n) * DAY).astype(np.int64)
    )

    stage = o.cancel_stage
    auto = rng.random(n) < 0.6
    c1 = o.placed + np.where(auto, 1800, rng.integers(120, 1700, size=n))
    c2 = ship_base + (rng.uniform(0.05, 0.9, size=n) * ship_delay).astype(np.int64)
    c3 = shipped + (rng.uniform(0.2, 0.9, size=n) * transit).astype(np.int64)
    cancelled = np.select(
        [stage == BEFORE_PAYMENT, stage == BEFORE_SHIPPING, stage == AFTER_SHIPPING],
        [c1, c2, c3],
        NA,
    )
    paid = np.where(stage == BEFORE_PAYMENT, NA, paid)
    before_ship = (stage == BEFORE_PAYMENT) | (stage == BEFORE_SHIPPING)
    shipped = np.where(before_ship, NA, shipped)
    estimated = np.where(before_ship, NA, estimated)
    delivered = np.where(stage != NOT_CANCELLED, NA, delivered)
    confirmed = np.where(stage != NOT_CANCELLED, NA, confirmed)

    o.shipped = censor(shipped, end)
    o.estimated = np.where(o.shipped == NA, NA, estimated)  # a promise: may lie after as_of
    o.delivered = censor(delivered, end)
    o.paid = np.where(cod, o.delivered, censor(paid, end))
    o.cancelled = censor(cancelled, end)
    o.confirmed = censor(np.where(o.delivered == NA, NA, confirmed), end)
    o.late = (o.delivered != NA) & (o.estimated != NA) & (o.delivered > o.estimated)
    status = np.full(n, CREATED, dtype=np.int64)
    status[o.paid != NA] = PAID
    status[o.shipped != NA] = SHIPPED
    status[o.delivered != NA] = DELIVERED
    status[o.confirmed != NA] = COMPLETED
    status[o.cancelled != NA] = CANCELLED
    o.status = status
    # A bad payment needs a payment (or, for cash on delivery, a delivery attempt) before as_of.
    o.bad_payment &= np.where(cod, o.cancelled != NA, o.paid != NA)
