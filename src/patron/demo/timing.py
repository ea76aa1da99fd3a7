"""When customers buy: first purchases after registration, repeat purchases by BG/NBD.

BG/NBD (Fader, Hardie & Lee 2005): while active, a customer's repeat purchases form a Poisson
process with rate ``lambda ~ Gamma(r, alpha)``; after each repeat purchase the customer becomes
inactive for good with probability ``p ~ Beta(a, b)``. The first purchase starts the clock and
cannot end it, exactly as in the paper's likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from patron.demo.clock import DAY, HOUR, shopping_time_of_day
from patron.demo.params import (
    BGNBD_A,
    BGNBD_ALPHA,
    BGNBD_B,
    BGNBD_R,
    CONVERSION_RATE,
    FIRST_PURCHASE_MEAN_DELAY_DAYS,
    FIRST_PURCHASE_SAME_SESSION,
    PREHISTORY_ACTIVE,
    WEEK,
)


@dataclass(frozen=True)
class PurchaseHistory:
    """Order times: ``customer`` / ``placed`` are sorted by (customer, time)."""

    customer: NDArray[np.int64]
    placed: NDArray[np.int64]
    first: NDArray[np.int64]  # per customer: first purchase time, -1 for non-buyers
    n_orders: NDArray[np.int64]  # per customer


def draw_rates(
    rng: np.random.Generator,
    n: int,
    *,
    r: float = BGNBD_R,
    alpha: float = BGNBD_ALPHA,
    a: float = BGNBD_A,
    b: float = BGNBD_B,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-customer purchase rate ``lambda ~ Gamma(r, alpha)`` (per week) and dropout
    probability ``p ~ Beta(a, b)`` (Fader, Hardie & Lee 2005)."""
    return rng.gamma(r, 1.0 / alpha, size=n), rng.beta(a, b, size=n)


def repeat_purchases(
    rng: np.random.Generator,
    horizon_weeks: NDArray[np.float64],
    lam: NDArray[np.float64],
    p: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Repeat purchase times (weeks after the first purchase) within each customer's horizon.

    Vectorised over customers: each round draws the next inter-purchase gap for every customer
    still active; after each purchase a customer drops out with probability ``p``. Returns
    (customer index, time) pairs sorted by customer, then time.
    """
    clock = np.zeros(horizon_weeks.size)
    alive = np.flatnonzero(horizon_weeks > 0)
    who: list[NDArray[np.int64]] = []
    when: list[NDArray[np.float64]] = []
    while alive.size:
        clock[alive] += rng.exponential(1.0, size=alive.size) / lam[alive]
        inside = alive[clock[alive] <= horizon_weeks[alive]]
        who.append(inside)
        when.append(clock[inside].copy())
        alive = inside[rng.random(inside.size) >= p[inside]]
    if not who:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    cust = np.concatenate(who).astype(np.int64)
    t = np.concatenate(when)
    order = np.lexsort((t, cust))
    return cust[order], t[order]


def simulate_repeat_purchases(
    rng: np.random.Generator,
    horizon_weeks: NDArray[np.float64],
    *,
    r: float = BGNBD_R,
    alpha: float = BGNBD_ALPHA,
    a: float = BGNBD_A,
    b: float = BGNBD_B,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """BG/NBD repeat purchases for customers drawn from the given population parameters."""
    lam, p = draw_rates(rng, horizon_weeks.size, r=r, alpha=alpha, a=a, b=b)
    return repeat_purchases(rng, horizon_weeks, lam, p)


def simulate_purchases(
    rng: np.random.Generator, registered: NDArray[np.int64], start: int, end: int
) -> PurchaseHistory:
    """First purchase (if any) after registration, then BG/NBD repeats until ``end``.

    Customers who signed up before the history are (with ``PREHISTORY_ACTIVE``) still active
    at its start; being a Poisson process, their first purchase in it comes after an
    exponential wait with their own rate. The others' first purchase follows sign-up.
    """
    n = registered.size
    lam, p = draw_rates(rng, n)
    origin = np.maximum(registered, start)
    veteran = registered < start
    buyer = rng.random(n) < np.where(veteran, PREHISTORY_ACTIVE, CONVERSION_RATE)
    same_session = (rng.random(n) < FIRST_PURCHASE_SAME_SESSION) & ~veteran
    quick = rng.exponential(40 * 60, size=n)
    later = rng.exponential(FIRST_PURCHASE_MEAN_DELAY_DAYS * DAY, size=n)
    later = np.where(veteran, rng.exponential(1.0, size=n) / lam * WEEK, later)
    first = np.where(same_session, origin + quick, origin + np.minimum(later, 1e10)).astype(
        np.int64
    )
    # Later first purchases happen at shopping hours (same Beijing date), never before sign-up.
    shifted = shopping_time_of_day(rng, first)
    too_early = shifted < origin + 10 * 60
    shifted = np.where(too_early, origin + rng.integers(10 * 60, 4 * HOUR, size=n), shifted)
    first = np.where(same_session, first, shifted)
    buyer &= first <= end
    first = np.where(buyer, first, -1)
    horizon = np.where(buyer, (end - first) / WEEK, 0.0)
    cust, t_weeks = repeat_purchases(rng, horizon, lam, p)
    repeat = first[cust] + (t_weeks * WEEK).astype(np.int64)
    repeat = shopping_time_of_day(rng, repeat)
    repeat = np.minimum(np.maximum(repeat, first[cust] + 60), end)
    buyers = np.flatnonzero(buyer)
    all_cust = np.concatenate([buyers, cust])
    all_t = np.concatenate([first[buyers], repeat])
    order = np.lexsort((all_t, all_cust))
    counts = np.bincount(all_cust, minlength=n).astype(np.int64)
    return PurchaseHistory(
        all_cust[order].astype(np.int64),
        all_t[order].astype(np.int64),
        first.astype(np.int64),
        counts,
    )
