"""Behaviour events (browse, search, favourite, add_to_cart, purchase) for the Parquet lake.

Two sources: the shopping session before every online order (its products are viewed, carted
and bought), and browsing sessions of every customer, buyers or not, spread over their time as
customers. Fully vectorised: a default demo has about a million events.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from patron.demo import texts
from patron.demo.catalogue import CATEGORIES, Catalogue
from patron.demo.clock import WEEK, shopping_time_of_day
from patron.demo.orders import Orders

I64 = NDArray[np.int64]

EVENT_TYPES = ("browse", "search", "favourite", "add_to_cart", "purchase")
BROWSE, SEARCH, FAVOURITE, ADD_TO_CART, PURCHASE = range(5)
#: Mean browsing-only sessions per customer-week (gamma-distributed across customers).
BROWSE_SESSIONS_PER_WEEK = 0.12
_SESSION_MIX = np.array([0.72, 0.14, 0.05, 0.09])  # browse, search, favourite, add_to_cart
_QUERIES: list[str] = [q for c in CATEGORIES for q in texts.SEARCH_QUERIES[c.external_id]]
_QUERY_START = np.cumsum([0] + [len(texts.SEARCH_QUERIES[c.external_id]) for c in CATEGORIES])


class _Events:
    """Columns being collected (arrays are concatenated once at the end)."""

    def __init__(self) -> None:
        self.cust: list[I64] = []
        self.kind: list[I64] = []
        self.t: list[I64] = []
        self.item: list[I64] = []
        self.session: list[I64] = []

    def add(self, cust: I64, kind: I64, t: I64, item: I64, session: I64) -> None:
        self.cust.append(cust)
        self.kind.append(kind)
        self.t.append(t)
        self.item.append(item)
        self.session.append(session)


def _products(
    rng: np.random.Generator, taste: NDArray[np.float64], cust: I64, catalogue: Catalogue
) -> I64:
    """A product per event: category by the customer's taste, product by popularity."""
    out = np.zeros(cust.size, dtype=np.int64)
    cats = np.zeros(cust.size, dtype=np.int64)
    for lo in range(0, cust.size, 200_000):
        sub = cust[lo : lo + 200_000]
        cdf = np.cumsum(taste[sub], axis=1)
        u = rng.random(sub.size) * cdf[:, -1]
        cats[lo : lo + sub.size] = (cdf < u[:, None]).sum(axis=1)
    for c in range(len(CATEGORIES)):
        sel = np.flatnonzero(cats == c)
        members = np.flatnonzero(catalogue.category == c)
        pop = catalogue.popularity[members]
        out[sel] = members[rng.choice(members.size, size=sel.size, p=pop / pop.sum())]
    return out


def build_events(
    rng: np.random.Generator,
    o: Orders,
    catalogue: Catalogue,
    taste: NDArray[np.float64],
    registered: I64,
    customer_ids: list[str],
    start: int,
    end: int,
) -> pa.Table:
    ev = _Events()
    n_sessions = _order_sessions(rng, o, catalogue, taste, ev, end)
    _browse_sessions(rng, catalogue, taste, registered, start, end, ev, n_sessions)
    return _table(rng, ev, catalogue, taste, customer_ids, end)


def _order_sessions(
    rng: np.random.Generator,
    o: Orders,
    catalogue: Catalogue,
    taste: NDArray[np.float64],
    ev: _Events,
    end: int,
) -> int:
    online = np.flatnonzero(~o.offline)
    m = online.size
    session = np.arange(m, dtype=np.int64)
    cust = o.customer[online]
    placed = o.placed[online]
    length = np.minimum(rng.lognormal(np.log(15 * 60), 0.7, size=m), 3 * 3600).astype(np.int64) + 30
    begin = placed - length
    # Every line's product is viewed, carted and bought.
    count = o.lines.count[online]
    line_idx = np.repeat(o.lines.start[online], count) + (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    )
    li_sess = np.repeat(session, count)
    li_prod = o.lines.product[line_idx]

    def within(sess: I64) -> I64:
        span = np.maximum(placed[sess] - 5 - begin[sess], 1)
        return begin[sess] + (rng.random(sess.size) * span).astype(np.int64)

    seen, carted = within(li_sess), within(li_sess)  # a product is viewed before it is carted
    viewed = np.minimum(seen, carted)
    ev.add(cust[li_sess], np.full(li_sess.size, BROWSE), viewed, li_prod, li_sess)
    ev.add(
        cust[li_sess],
        np.full(li_sess.size, ADD_TO_CART),
        np.maximum(seen, carted),
        li_prod,
        li_sess,
    )
    ev.add(cust[li_sess], np.full(li_sess.size, PURCHASE), placed[li_sess], li_prod, li_sess)
    fav = rng.random(li_sess.size) < 0.2
    ev.add(
        cust[li_sess[fav]],
        np.full(int(fav.sum()), FAVOURITE),
        within(li_sess[fav]),
        li_prod[fav],
        li_sess[fav],
    )
    # Other products looked at and searches made on the way.
    extra = rng.poisson(3.0, size=m)
    ex_sess = np.repeat(session, extra)
    ev.add(
        cust[ex_sess],
        np.full(ex_sess.size, BROWSE),
        within(ex_sess),
        _products(rng, taste, cust[ex_sess], catalogue),
        ex_sess,
    )
    searches = rng.binomial(2, 0.45, size=m)
    se_sess = np.repeat(session, searches)
    ev.add(
        cust[se_sess],
        np.full(se_sess.size, SEARCH),
        within(se_sess),
        np.full(se_sess.size, -1),
        se_sess,
    )
    return m


def _browse_sessions(
    rng: np.random.Generator,
    catalogue: Catalogue,
    taste: NDArray[np.float64],
    registered: I64,
    start: int,
    end: int,
    ev: _Events,
    first_session: int,
) -> None:
    n = registered.size
    origin = np.maximum(registered, start)
    weeks = (end - origin) / WEEK
    rate = rng.gamma(0.8, BROWSE_SESSIONS_PER_WEEK / 0.8, size=n)
    k = rng.poisson(rate * weeks)
    cust = np.repeat(np.arange(n, dtype=np.int64), k)
    s_start = origin[cust] + (rng.random(cust.size) * (end - origin[cust])).astype(np.int64)
    s_start = np.minimum(shopping_time_of_day(rng, s_start), end - 3600)
    s_start = np.maximum(s_start, origin[cust])
    session = first_session + np.arange(cust.size, dtype=np.int64)
    per = 1 + rng.poisson(2.5, size=cust.size)
    e_sess = np.repeat(np.arange(cust.size), per)
    e_cust = cust[e_sess]
    kind = rng.choice(4, size=e_sess.size, p=_SESSION_MIX).astype(np.int64)
    t = s_start[e_sess] + rng.integers(0, 20 * 60, size=e_sess.size)
    item = _products(rng, taste, e_cust, catalogue)
    item = np.where(kind == SEARCH, -1, item)
    ev.add(e_cust, kind, t, item, session[e_sess])


def _table(
    rng: np.random.Generator,
    ev: _Events,
    catalogue: Catalogue,
    taste: NDArray[np.float64],
    customer_ids: list[str],
    end: int,
) -> pa.Table:
    cust = np.concatenate(ev.cust)
    kind = np.concatenate(ev.kind)
    t = np.minimum(np.concatenate(ev.t), end)
    item = np.concatenate(ev.item)
    session = np.concatenate(ev.session)
    # Micro-second timestamps with a millisecond jitter keep events of one second distinct.
    us = t * 1_000_000 + rng.integers(0, 1000, size=t.size) * 1000
    us = np.minimum(us, end * 1_000_000 + 999_000)
    order = np.lexsort((np.arange(t.size), cust, us))
    cust, kind, us, item, session = cust[order], kind[order], us[order], item[order], session[order]
    # A tenth of plain browsing is of a category page rather than a product.
    category_page = (kind == BROWSE) & (rng.random(kind.size) < 0.1)
    cat = np.where(item >= 0, catalogue.category[np.maximum(item, 0)], -1)
    item = np.where(category_page, -1, item)
    searches = np.flatnonzero(kind == SEARCH)
    s_cat = _products(rng, taste, cust[searches], catalogue)
    s_cat = catalogue.category[s_cat]
    q_lo, q_hi = _QUERY_START[s_cat], _QUERY_START[s_cat + 1]
    query = np.full(kind.size, -1, dtype=np.int64)
    query[searches] = q_lo + (rng.random(searches.size) * (q_hi - q_lo)).astype(np.int64)
    session_keys = rng.integers(0, 2**62, size=int(session.max()) + 1 if session.size else 0)
    session_text = pa.array([f"{k:016x}" for k in session_keys.tolist()], type=pa.string())
    device = _devices(session_keys, cust, session, len(customer_ids))
    return pa.table(
        {
            "customer_external_id": pa.array(customer_ids, type=pa.string()).take(pa.array(cust)),
            "event_type": pa.array(EVENT_TYPES, type=pa.string()).take(pa.array(kind)),
            "occurred_at": pa.array(us, type=pa.timestamp("us", tz="UTC")),
            "item_external_id": _take(catalogue.ids, item),
            "category_external_id": _take([c.external_id for c in CATEGORIES], cat),
            "query": _take(_QUERIES, query),
            "session_id": session_text.take(pa.array(session)),
            "device_id": device,
        }
    )


def _devices(session_keys: I64, cust: I64, session: I64, customers: int) -> pa.Array:
    """A device per session: every customer has a phone, three in ten also a computer, used
    for every other session. Drawn from a generator of its own (seeded by the session keys
    already drawn), so the rest of the demo stays as it was before events carried devices."""
    own = np.random.default_rng(
        int(np.bitwise_xor.reduce(session_keys)) if session_keys.size else 0
    )
    keys = own.integers(0, 2**62, size=(customers, 2))
    second = own.random(customers) < 0.3
    which = np.where(second[cust] & (session % 2 == 1), 1, 0)
    texts = pa.array([f"dev-{k:016x}" for k in keys.ravel().tolist()], type=pa.string())
    return texts.take(pa.array(cust * 2 + which))


def _take(values: list[str], idx: I64) -> pa.Array:
    """``values[idx]`` with nulls where ``idx`` is negative."""
    return pa.array(values, type=pa.string()).take(pa.array(np.maximum(idx, 0), mask=idx < 0))
